"""What the live index holds: papers, chunks, fingerprint, when it was built."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from rag.index import store
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

    @property
    def stale(self) -> bool:
        return self.exists and self.fingerprint != self.current_fingerprint

    def to_dict(self) -> dict:
        return {**asdict(self), "stale": self.stale}


def index_status(settings: Settings | None = None) -> IndexStatus:
    from rag.index.build import fingerprint

    settings = settings or get_settings()
    where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(settings.data_dir)
    act = store.active(store.client(settings), settings)
    if act is None:
        return IndexStatus(False, where, current_fingerprint=fingerprint(settings))
    metas = act.collection.get(include=["metadatas"])["metadatas"]
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(act.built_at)) if act.built_at else ""
    return IndexStatus(True, where, len({m["paper_id"] for m in metas}), len(metas), act.fingerprint,
                       fingerprint(settings), act.name, built)
