"""What the live index holds: papers, chunks, fingerprint, when it was built.

Counts come from the generation's memory-mapped arrays (no collection read); only when those
local files are missing (a collection built on another machine) are the rows counted in pages."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from rag.index import manifest, store, store_health
from rag.settings import Settings, get_settings


@dataclass
class IndexStatus:
    exists: bool
    where: str
    papers: int = 0
    chunks: int = 0
    fingerprint: str = ""
    current_fingerprint: str = ""
    collection: str = ""
    built_at: str = ""
    problem: str = ""  # damaged or missing files: searches fail (or would be wrong) until an index run
    changed: str = ""  # stale: which settings differ from those it was built with (`build.changed_settings`)

    @property
    def stale(self) -> bool:
        return self.exists and self.fingerprint != self.current_fingerprint

    def to_dict(self) -> dict:
        return {**asdict(self), "stale": self.stale}


def index_status(settings: Settings | None = None) -> IndexStatus:
    from rag.index.build import changed_settings, fingerprint

    settings = settings or get_settings()
    where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(settings.data_dir)
    act = store.active(store.client(settings), settings)
    if act is None:
        return IndexStatus(False, where, current_fingerprint=fingerprint(settings))
    papers, chunks = _counts(settings, act)
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(act.built_at)) if act.built_at else ""
    st = IndexStatus(True, where, papers, chunks, act.fingerprint, fingerprint(settings), act.name, built,
                     problem(settings, act.name, act.generation) or "")
    st.changed = changed_settings(settings) if st.stale else ""
    return st


def problem(settings: Settings, collection: str, generation: str) -> str | None:
    """What an index run must repair, or None: the local files (`manifest.damage`), the vectors in
    Chroma (`store_health.vectors_missing`). A stat per file and one read-only query: cheap enough
    for `status` and for the no-op index run."""
    folder = manifest.generation_dir(settings, collection, generation)
    local = manifest.damage(folder) if folder.is_dir() else f"the BM25 files are not in {folder.parent}"
    return local or store_health.vectors_missing(settings, collection)


def _counts(settings: Settings, act: store.Active) -> tuple[int, int]:
    folder = manifest.generation_dir(settings, act.name, act.generation)
    try:
        return (len(np.load(folder / "paper_ids.npy", mmap_mode="r")),
                len(np.load(folder / "chunk_ids.npy", mmap_mode="r")))
    except (OSError, ValueError):
        papers, chunks = set(), 0
        for page in store.pages(act.collection, settings, ["metadatas"]):
            papers.update(m["paper_id"] for m in page["metadatas"])
            chunks += len(page["ids"])
        return len(papers), chunks
