"""Hybrid retrieval: BM25 (bm25s) and dense (Chroma) fused by reciprocal rank, one hit per paper.

The query path talks to chromadb and bm25s directly instead of through llama-index's
retrievers: importing llama_index.core costs 3–5 s, more than the whole retrieval budget of an
`ask` from process start. The BM25 index is built in memory from the documents stored in the
live Chroma collection (~0.1 s for this corpus), so Chroma stays the single source of truth and
server mode needs nothing extra.

Fusion happens at paper level: each retriever's chunk ranking is first reduced to a paper
ranking (a paper's best chunk), so a paper split into three chunks is not counted three times.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rag.index import store
from rag.index.embedding import query_vector
from rag.errors import IndexMissingError, InputError
from rag.settings import Settings, get_settings

Mode = Literal["hybrid", "bm25", "dense"]


@dataclass(frozen=True)
class Filters:
    """Date bounds are ISO dates (inclusive); papers with no known year never match a date filter."""

    date_from: str | None = None
    date_to: str | None = None
    org: str | None = None  # case-insensitive substring of the listed organisation

    def active(self) -> bool:
        return bool(self.date_from or self.date_to or self.org)

    def allows(self, meta: dict) -> bool:
        if self.org and self.org.casefold() not in meta.get("org", "").casefold():
            return False
        if self.date_from or self.date_to:
            d = meta.get("date")
            if not d or (self.date_from and d < self.date_from) or (self.date_to and d > self.date_to):
                return False
        return True


@dataclass
class Hit:
    paper_id: str
    title: str
    score: float  # fused RRF score (higher is better)
    chunk_id: str  # the paper's best-matching chunk
    chunk_text: str
    meta: dict = field(repr=False)  # the chunk's stored metadata (abstract, org, date, sources…)
    dense: float | None = None  # cosine similarity of the best chunk, when dense retrieval saw it
    bm25: float | None = None
    dense_rank: int | None = None
    bm25_rank: int | None = None

    @property
    def abstract(self) -> str:
        return self.meta.get("abstract", "")

    def to_dict(self) -> dict:
        keys = ("org", "authors", "date", "date_raw", "upvotes", "sources", "arxiv_id", "doi", "url", "venue")
        return {"paper_id": self.paper_id, "title": self.title, "score": round(self.score, 5),
                "dense": self.dense, "bm25": self.bm25, "dense_rank": self.dense_rank,
                "bm25_rank": self.bm25_rank, "chunk_id": self.chunk_id,
                **{k: self.meta.get(k) for k in keys}}


def _tokenize(texts: list[str], stemmer) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)


class Retriever:
    """One live collection, its in-memory BM25 index and metadata. Build once, query often."""

    def __init__(self, settings: Settings):
        import bm25s
        import Stemmer

        from rag.index.build import fingerprint  # cheap: indexing imports llama_index lazily

        self.settings = settings
        act = store.require_active(settings)
        if act.fingerprint != fingerprint(settings):
            raise IndexMissingError(f"the index was built with other settings (fingerprint {act.fingerprint}, "
                                    f"now {fingerprint(settings)}); rebuild it with `python -m rag index`")
        self.collection, self.name, self.built_at = act.collection, act.name, act.built_at
        got = self.collection.get(include=["documents", "metadatas"])
        self.ids, self.docs, self.metas = got["ids"], got["documents"], got["metadatas"]
        self.pos = {cid: i for i, cid in enumerate(self.ids)}
        self._stemmer = Stemmer.Stemmer("english")
        self._bm25 = bm25s.BM25()
        self._bm25.index(bm25s.tokenize(self.docs, stopwords="en", stemmer=self._stemmer, show_progress=False),
                         show_progress=False)

    def bm25_ranking(self, question: str, filters: Filters, n: int) -> list[tuple[str, float]]:
        tokens = _tokenize([question], self._stemmer)[0]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        order = np.argsort(-scores, kind="stable")
        out = [(self.ids[i], float(scores[i])) for i in order
               if scores[i] > 0 and (not filters.active() or filters.allows(self.metas[i]))]
        return out[:n]

    def dense_ranking(self, question: str, filters: Filters, n: int) -> list[tuple[str, float]]:
        where = None
        if filters.active():
            allowed = sorted({m["paper_id"] for m in self.metas if filters.allows(m)})
            if not allowed:
                return []
            where = {"paper_id": {"$in": allowed}}
        res = self.collection.query(query_embeddings=[query_vector(self.settings, question)],
                                    n_results=min(n, len(self.ids)), where=where, include=["distances"])
        return [(cid, 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0])]

    def search(self, question: str, k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid") -> list[Hit]:
        filters = filters or Filters()
        n = max(self.settings.candidates, k)
        lists = {}
        if mode in ("hybrid", "bm25"):
            lists["bm25"] = _per_paper(self.bm25_ranking(question, filters, n), self.metas, self.pos)
        if mode in ("hybrid", "dense"):
            lists["dense"] = _per_paper(self.dense_ranking(question, filters, n), self.metas, self.pos)
        return self._fuse(lists)[:k]

    def _fuse(self, lists: dict[str, list[tuple[str, str, float]]]) -> list[Hit]:
        hits: dict[str, Hit] = {}
        best_rank: dict[str, int] = {}
        for name, ranking in lists.items():
            for rank, (pid, cid, raw) in enumerate(ranking, 1):
                meta = self.metas[self.pos[cid]]
                hit = hits.setdefault(pid, Hit(pid, meta["title"], 0.0, cid, "", meta))
                hit.score += 1.0 / (self.settings.rrf_k + rank)
                setattr(hit, name, raw)
                setattr(hit, f"{name}_rank", rank)
                if rank < best_rank.get(pid, 10**9):  # keep the chunk that ranked best anywhere
                    best_rank[pid], hit.chunk_id, hit.meta = rank, cid, meta
        for hit in hits.values():
            hit.chunk_text = self.docs[self.pos[hit.chunk_id]]
        return sorted(hits.values(), key=lambda h: (-h.score, h.paper_id))

    def papers(self) -> dict[str, dict]:
        """paper_id -> metadata of its first chunk: every indexed paper."""
        out: dict[str, dict] = {}
        for m in self.metas:
            out.setdefault(m["paper_id"], m)
        return out


def _per_paper(ranking: list[tuple[str, float]], metas: list[dict], pos: dict) -> list[tuple[str, str, float]]:
    """(paper_id, best chunk id, its score) in order of each paper's best chunk."""
    seen, out = set(), []
    for cid, score in ranking:
        pid = metas[pos[cid]]["paper_id"]
        if pid not in seen:
            seen.add(pid)
            out.append((pid, cid, score))
    return out


_lock = threading.Lock()
_cache: dict[tuple, Retriever] = {}


def get_retriever(settings: Settings | None = None) -> Retriever:
    """A cached Retriever, rebuilt when the live collection changed (re-index in the same process)."""
    settings = settings or get_settings()
    key = (settings.data_dir, settings.chroma_host, settings.chroma_port, settings.collection,
           settings.embed_backend, settings.chunk_tokens, settings.chunk_overlap_sentences)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            act = store.active(store.client(settings), settings)
            if act and act.name == cached.name and act.built_at == cached.built_at:
                return cached
        _cache[key] = Retriever(settings)
        return _cache[key]


def search(question: str, k: int = 10, *, filters: Filters | None = None, mode: Mode = "hybrid",
           settings: Settings | None = None) -> list[Hit]:
    """Ranked papers for a question: the public `rag.search`."""
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty; ask something, e.g. rag.search('RL for LLM reasoning')")
    if not isinstance(k, int) or k < 1:
        raise InputError(f"k={k!r} must be a positive whole number")
    return get_retriever(settings).search(question.strip(), k=k, filters=filters, mode=mode)
