"""Where an index's local files live, and the manifest that makes a no-op re-index cheap.

    <data_dir>/bm25/<collection>/<generation>/   bm25s index + arrays (rag.index.bm25) + manifest.json
    <data_dir>/bm25/<collection>/journal.json    intent of an update in progress (crash recovery)
    <data_dir>/bm25/<prefix>.live.json           local copy of the registry pointer (embedded mode)

Kept on the local disk in both modes (a Chroma server holds only vectors, documents and
metadata), keyed by the collection's name. The live (collection, generation) pair is named by
the registry in Chroma (`rag.index.store`); a generation folder is complete before the registry
names it, and the previous one is kept so a reader that just opened it keeps working.

The manifest records per-file content hashes (a re-index with no file changed stops there,
without parsing the corpus or reading Chroma), per-paper content hashes with their chunk
ids (what an incremental update diffs against). Beside it, `sizes.json` holds the size of every
file of the generation, the manifest's own included (`damage`: a file deleted, truncated or
overwritten is noticed with a stat, not a read; every process start runs it, and at 100k papers
validating the 10 MB manifest for it took 0.4 s). It is
written by us rather than by llama-index's docstore because it must switch atomically with the
BM25 arrays it describes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from rag.corpus.reading import shown_name
from rag.index import store
from rag.settings import Settings

MANIFEST = "manifest.json"
SIZES = "sizes.json"  # file of the generation -> bytes when it was written, the manifest included
DAMAGED = "DAMAGED"  # left by a reader that found a file unreadable at its recorded size (`mark_damaged`)


def root(settings: Settings) -> Path:
    return settings.data_dir / "bm25"


def collection_dir(settings: Settings, collection: str) -> Path:
    return root(settings) / collection


def generation_dir(settings: Settings, collection: str, generation: str) -> Path:
    return collection_dir(settings, collection) / generation


def new_generation() -> str:
    return f"g{time.time_ns()}"


def file_hashes(*folders: Path) -> dict[str, str]:
    """sha1 of every file under the corpus folders (the seeds, the user's library): any file a
    corpus reader might use. Keys carry the folder's position, so the same name in both differs.
    Hidden files (the library's `.lock`) are bookkeeping, not corpus; files are hashed streaming."""
    out = {}
    for i, folder in enumerate(folders):
        base = Path(folder)
        for f in sorted(base.rglob("*")) if base.is_dir() else []:
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(base).parts):
                with open(f, "rb") as fh:
                    key = shown_name(f"{i}/{f.relative_to(base)}")  # storable in the JSON manifest
                    out[key] = hashlib.file_digest(fh, "sha1").hexdigest()
    return out


@dataclass
class Manifest:
    fingerprint: str
    files: dict[str, str] = field(default_factory=dict)
    papers: dict[str, list] = field(default_factory=dict)  # paper id -> [content hash, [chunk ids]]

    @property
    def n_chunks(self) -> int:
        return sum(len(v[1]) for v in self.papers.values())

    def save(self, folder: Path) -> None:
        """The manifest, then the sizes of the generation's files (so a crash between the two
        leaves the generation damaged, and `python -m rag index` recreates it)."""
        write_atomic(folder / MANIFEST, json.dumps(asdict(self), separators=(",", ":")))
        sizes = {f.name: f.stat().st_size for f in sorted(folder.iterdir())
                 if f.is_file() and f.name not in (SIZES, DAMAGED)}
        write_atomic(folder / SIZES, json.dumps(sizes))

    @classmethod
    def load(cls, folder: Path) -> "Manifest | None":
        """None when missing, unreadable, or of the wrong shape (edited by hand: `sizes` a list…)."""
        try:
            return _checked(cls, (folder / MANIFEST).read_text())
        except OSError:
            return None


class _Journal(TypedDict):
    add: list[str]
    delete: list[str]
    to: str


class _Live(TypedDict):
    collection: str
    generation: str
    fingerprint: str


def _checked(shape, text: str):
    """`text` parsed as JSON of `shape` (pydantic, strict: no coercion), else None. The index's own
    small files are read with it, so a damaged one counts as missing, never as a crash."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(shape).validate_json(text, strict=True)
    except ValidationError:
        return None


def damage(folder: Path) -> str | None:
    """What is wrong with a generation's files (deleted, truncated, overwritten), or None. A stat
    per file: the no-op re-index and every process start can afford it."""
    if (marker := folder / DAMAGED).is_file():
        return marker.read_text(errors="replace").strip() or f"{marker} says so"
    try:
        sizes = _checked(dict[str, int], (folder / SIZES).read_text())
    except OSError:
        sizes = None
    if sizes is None or MANIFEST not in sizes:
        return f"{folder / SIZES} is missing or unreadable"
    for name, size in sizes.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != size:
            return f"{path} has {path.stat().st_size} bytes, {size} when it was written"
    return None


def mark_damaged(folder: Path, problem: str) -> None:
    """Record that a file of this generation could not be read although its size is as written
    (overwritten in place): the next `python -m rag index` then recreates the generation instead
    of calling it unchanged. Best effort: a read-only folder keeps the error message only."""
    try:
        (folder / DAMAGED).write_text(problem)
    except OSError:
        pass


def write_atomic(path: Path, text: str) -> None:
    """Write a small file so that a reader (or a crash) sees the old or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def journal_path(settings: Settings, collection: str) -> Path:
    return collection_dir(settings, collection) / "journal.json"


def write_journal(settings: Settings, collection: str, add: list[str], delete: list[str], to_gen: str) -> None:
    collection_dir(settings, collection).mkdir(parents=True, exist_ok=True)
    write_atomic(journal_path(settings, collection), json.dumps({"add": add, "delete": delete, "to": to_gen}))


def read_journal(settings: Settings, collection: str) -> dict | None:
    """The killed update's chunk ids; None also for a damaged journal (its orphans, if any, are
    rows no generation lists: searches skip them)."""
    try:
        return _checked(_Journal, journal_path(settings, collection).read_text())
    except OSError:
        return None


def live_path(settings: Settings) -> Path:
    return root(settings) / f"{settings.collection}.live.json"


def read_live(settings: Settings) -> dict | None:
    """The pointer as of the last completed switch, read without opening Chroma. It is removed
    before a switch and written after it, so a crash in between leaves none (never a wrong one)."""
    try:
        text = live_path(settings).read_text()
    except OSError:
        return None
    return json.loads(text) if _checked(_Live, text) is not None else None  # built_with: any shape


def write_live(settings: Settings, collection: str, generation: str, fingerprint: str, built_with: dict) -> None:
    """`built_with` (the fingerprint's parts) lets a stale-index error name the setting that changed."""
    write_atomic(live_path(settings), json.dumps({"collection": collection, "generation": generation,
                                                  "fingerprint": fingerprint, "built_with": built_with}))


def prune(settings: Settings, keep_collection: str, keep_generations: set[str]) -> None:
    """Delete local folders of other collections and of generations no longer needed."""
    base = root(settings)
    for col in base.iterdir() if base.is_dir() else []:
        if not col.is_dir():
            continue
        if col.name != keep_collection:
            if store.owned_by(settings, col.name):  # another prefix's folders are not ours to delete
                shutil.rmtree(col, ignore_errors=True)
            continue
        for gen in col.iterdir():
            if gen.is_dir() and gen.name not in keep_generations:
                shutil.rmtree(gen, ignore_errors=True)
