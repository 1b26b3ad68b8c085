"""Hybrid retrieval: BM25 (bm25s) and dense (Chroma) fused by reciprocal rank, one hit per paper.

The query path talks to chromadb and bm25s directly instead of through llama-index's
retrievers: importing llama_index.core costs 3–5 s, more than the whole retrieval budget of an
`ask` from process start. Opening a `Retriever` loads nothing that grows with the corpus except
memory-maps: the BM25 index and the filter arrays the indexer saved beside the live collection
(`rag.index.bm25`). Only the winning chunks' texts and papers' fields are read, by row (`rag.index.texts`).

Filters are masks over those arrays. For dense search a filter that leaves few chunks is
scored exactly against the stored vectors; a broad one over-fetches from HNSW and masks, and
only falls back to Chroma's `where` (numeric `date_ord` ranges, `org` in the few matching
names — never a list of ids) when that leaves too few.

Fusion happens at paper level: each retriever's chunk ranking is first reduced to a paper
ranking (a paper's best chunk), so a paper split into three chunks is not counted three times.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rag.index import store, store_health
from rag.index.embedding import query_vector
from rag.deadline import start, within
from rag.errors import InputError, StoreError
from rag.settings import Settings, get_settings

Mode = Literal["hybrid", "bm25", "dense"]
EXACT_ROWS = 20_000  # filtered dense search scores up to this many allowed chunks exactly (~5 ms, 15 MB of vectors)


@dataclass(frozen=True)
class Filters:
    """Date bounds are ISO dates (inclusive); a paper whose source gives only the year or month
    matches when that year or month meets the range; papers with no year never match."""

    date_from: str | None = None
    date_to: str | None = None
    org: str | None = None  # case-insensitive substring of the listed organisation

    def active(self) -> bool:
        return bool(self.date_from or self.date_to or self.org)


@dataclass
class Hit:
    paper_id: str
    title: str
    score: float  # fused RRF score (higher is better)
    chunk_id: str  # the paper's best-matching chunk
    chunk_text: str
    meta: dict = field(repr=False)  # the paper's metadata (abstract, org, date, sources…) + the chunk's
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


def live_pointer(settings: Settings) -> tuple[str, str, str]:
    """(collection, generation, fingerprint) of the live index: in embedded mode after a completed
    index run, from the pointer's local copy (`manifest.read_live`, no chromadb import); else from
    Chroma's registry."""
    from rag.index import manifest

    live = None if settings.chroma_host else manifest.read_live(settings)
    if live:
        return live["collection"], live["generation"], live["fingerprint"]
    act = store.require_active(settings)
    return act.name, act.generation, act.fingerprint


def _lexicon(folder):
    """The generation's files, loaded; damaged ones (deleted, truncated, overwritten) are an error
    that names the repair: `python -m rag index` recreates them from the collection."""
    from rag.index import manifest
    from rag.index.bm25 import Lexicon

    problem = manifest.damage(folder)
    if problem is None:
        try:
            return Lexicon(folder)
        except (OSError, ValueError, EOFError, sqlite3.Error) as e:  # same sizes, other bytes
            problem = f"{type(e).__name__}: {e}"
            manifest.mark_damaged(folder, problem)
    raise store.IndexStaleError(f"the BM25 files in {folder} are damaged ({problem}); "
                                "repair them with `python -m rag index`")


def _date_bound(iso: str | None, high: bool) -> int | None:
    """'2024-05-01' -> 20240501; a partial date covers its whole year or month ('2024' -> 20240000 / 20249999)."""
    if not iso:
        return None
    digits = "".join(c for c in iso if c.isdigit())[:8]
    if len(digits) < 4:
        raise InputError(f"date {iso!r} is not a date; use YYYY-MM-DD (e.g. 2024-05-01)")
    return int(digits.ljust(8, "9" if high else "0"))


class Retriever:
    """The live collection and its memory-mapped BM25 generation. Build once, query often.

    Ready in milliseconds: the generation's files are memory-mapped, and Chroma (importing
    chromadb alone costs ~0.7 s) is opened on a background thread that overlaps the question's
    embedding; the first dense query waits for it, and an error opening it surfaces there.

    With `dense_search=exact` Chroma is not opened at all (its system tables are read to name a
    damaged store): dense search scans the generation's stored vectors (the same vectors Chroma
    holds). A process that asks one question would otherwise load Chroma's whole HNSW graph for
    it: 1.1-1.3 s at 100k papers, against a ~90 ms scan (recall 1.0 by construction; HNSW's is
    0.996 there, and the same below ~800 chunks, where `ef_search` covers the whole graph)."""

    def __init__(self, settings: Settings):
        from rag.index import manifest
        from rag.index.build import changed_settings, fingerprint  # cheap: indexing imports llama_index lazily

        self.settings = settings
        self.name, self.generation, built_with = live_pointer(settings)
        if built_with != fingerprint(settings):
            what = changed_settings(settings) or f"fingerprint {built_with}, now {fingerprint(settings)}"
            raise store.IndexStaleError(f"the index was built with other settings ({what}); set them back to "
                                        "use it, or rebuild it for the new ones with `python -m rag index`")
        folder = manifest.generation_dir(settings, self.name, self.generation)
        if not (folder / "params.index.json").exists():
            raise store.IndexStaleError(f"the BM25 files of {self.name} are not in {folder.parent}; "
                                        "recreate them with `python -m rag index`")
        self.lex = _lexicon(folder)
        if missing := store_health.vectors_missing(settings, self.name):
            raise store.IndexStaleError(f"{missing}; rebuild it with `python -m rag index`")
        self.exact = settings.dense_search == "exact"
        if not self.exact:
            self._opening = start(lambda: store.open_collection(settings, self.name), "chroma-open")
        else:  # the scan reads every vector: have the kernel start on that while MiniLM loads
            start(self.lex.prefetch_vectors, "vectors-prefetch")
            if not settings.chroma_host:  # Chroma is never opened: still name a damaged store (~1 ms)
                store_health.precheck(settings, settings.data_dir / "chroma")

    @property
    def collection(self):
        """The live Chroma collection (waits for the background open; re-raises its error)."""
        from concurrent.futures import TimeoutError as Pending

        try:
            return self._opening.result(timeout=self.settings.chroma_timeout)
        except Pending:
            raise _held(self.settings) from None

    def _chunk_mask(self, filters: Filters):
        if not filters.active():
            return None
        papers = self.lex.paper_mask(_date_bound(filters.date_from, False), _date_bound(filters.date_to, True),
                                     filters.org)
        return papers[np.asarray(self.lex.chunk_paper)]

    def bm25_ranking(self, question: str, filters: Filters, n: int) -> list[tuple[int, float]]:
        """(chunk row, score), best first."""
        from rag.index.bm25 import top_k

        mask = self._chunk_mask(filters)
        if mask is not None and not mask.any():
            return []
        scores = self.lex.scores(question, None if mask is None else mask.astype(np.float32))
        if scores is None:
            return []
        return [(int(i), float(scores[i])) for i in top_k(scores, n)]

    def _where(self, filters: Filters) -> dict | None:
        """Chroma conditions for the filters; {} when nothing can match."""
        conds = []
        lo, hi = _date_bound(filters.date_from, False), _date_bound(filters.date_to, True)
        if lo is not None or hi is not None:
            # from the range's first year: a year-only paper (20230000) may meet a range starting
            # 2023-06-01; the chunk mask applied to every result keeps exactly what the range meets
            conds += [{"date_ord": {"$gte": (lo or 1) // 10000 * 10000 or 1}}, {"date_ord": {"$lte": hi or 99999999}}]
        if filters.org:
            orgs = [o for o in self.lex.orgs if filters.org.casefold() in o.casefold()]
            if not orgs:
                return {}
            conds.append({"org": {"$in": orgs}})
        return None if not conds else conds[0] if len(conds) == 1 else {"$and": conds}

    def dense_ranking(self, question: str, filters: Filters, n: int) -> list[tuple[int, float]]:
        """(chunk row, cosine), best first. Unfiltered: Chroma's HNSW. Filtered: an exact dot product
        over the allowed rows' stored vectors when they are few (Chroma's own filtered query is
        slower and grows with the collection), else HNSW over-fetched and masked. With
        `dense_search=exact`: the exact dot product over every allowed row."""
        mask = self._chunk_mask(filters)
        qvec = np.asarray(query_vector(self.settings, question), dtype=np.float32)
        if self.exact:
            return self._exact(qvec, np.arange(len(self.lex)) if mask is None else np.flatnonzero(mask), n)
        if mask is None:
            return self._hnsw(qvec, n, None, None)
        allowed = np.flatnonzero(mask)
        if len(allowed) <= EXACT_ROWS:
            return self._exact(qvec, allowed, n)
        wanted = int(n * len(mask) / len(allowed) * 2) + 10  # expect n allowed rows among these
        got = self._hnsw(qvec, min(wanted, 2000), mask, None)
        return got[:n] if len(got) >= n else self._hnsw(qvec, n, mask, self._where(filters))

    def _exact(self, qvec: np.ndarray, rows: np.ndarray, n: int) -> list[tuple[int, float]]:
        from rag.index.bm25 import top_k

        sims = self.lex.similarities(rows, qvec)
        return [(int(rows[i]), float(sims[i])) for i in top_k(sims, n, positive=False)]

    def _hnsw(self, qvec: np.ndarray, n: int, mask, where) -> list[tuple[int, float]]:
        # over-fetch a little: rows a killed index run left behind are not in this generation
        collection = self.collection
        try:
            res = within(lambda: collection.query(query_embeddings=[qvec.tolist()], where=where, include=["distances"],
                                                  n_results=max(1, min(n + 10, len(self.lex)))),
                         self.settings.chroma_timeout, "chroma-query")
        except TimeoutError:
            raise _held(self.settings) from None
        rows = self.lex.rows_of(res["ids"][0])
        out = [(int(r), 1.0 - float(d)) for r, d in zip(rows, res["distances"][0])
               if r >= 0 and (mask is None or mask[r])]
        return out if mask is not None else out[:n]

    def search(self, question: str, k: int = 10, filters: Filters | None = None, mode: Mode = "hybrid",
               settings: Settings | None = None) -> list[Hit]:
        """`settings` gives the query-time knobs (candidates, fusion); the index is this retriever's."""
        filters, knobs = filters or Filters(), settings or self.settings
        n = max(knobs.candidates, k)
        lists = {}
        # each step's mapped pages are dropped before the next touches its own: postings, vectors
        # and ids together peaked ~140 MB above the resident set at 100k papers (`make bench-scale`)
        if mode in ("hybrid", "bm25"):
            lists["bm25"] = self._papers(self.bm25_ranking, question, filters, n, k)
            self.lex.release()
        if mode in ("hybrid", "dense"):
            lists["dense"] = self._papers(self.dense_ranking, question, filters, n, k)
            self.lex.release()
        fused = _lead(_fuse(lists, knobs.rrf_k), lists.get("bm25"), knobs.bm25_lead)
        hits = self._hits(fused[:k])
        self.lex.release()
        return hits

    def _papers(self, ranking, question: str, filters: Filters, n: int, k: int) -> list[tuple[int, int, float]]:
        """A retriever's papers from its best `n` chunks; when those hold fewer than `k` papers (a
        paper has several chunks: `-k 100` gave 73), from twice as many, until the corpus runs out."""
        while True:
            ranked = ranking(question, filters, n)
            papers = self._per_paper(ranked)
            if len(papers) >= k or len(ranked) < n or n >= len(self.lex):  # enough, or nothing more to give
                return papers
            n = min(2 * n, len(self.lex))

    def _per_paper(self, ranking: list[tuple[int, float]]) -> list[tuple[int, int, float]]:
        """(paper row, best chunk row, its score) in order of each paper's best chunk."""
        seen, out = set(), []
        for row, score in ranking:
            prow = int(self.lex.chunk_paper[row])
            if prow not in seen:
                seen.add(prow)
                out.append((prow, row, score))
        return out

    def _hits(self, fused: list[dict]) -> list[Hit]:
        """The winners' chunk texts and their papers' fields, read by row from the generation."""
        chunk_rows = [f["row"] for f in fused]
        texts, fields = self.lex.texts.chunks(chunk_rows), self.lex.texts.papers([f["prow"] for f in fused])
        hits = []
        for f in fused:
            paper, cid = fields[f["prow"]], str(self.lex.chunk_ids[f["row"]])
            meta = {**paper, "chunk_index": f["row"] - int(self.lex.paper_head[f["prow"]])}  # rows are grouped by paper
            hits.append(Hit(paper["paper_id"], paper["title"], f["score"], cid, texts[f["row"]], meta, **f["raw"]))
        return hits

    def papers(self) -> dict[str, dict]:
        """paper_id -> {paper_id, org, date_ord}: every indexed paper, from the arrays (no Chroma read)."""
        ids, orgs, dates = self.lex.paper_ids, self.lex.paper_org, self.lex.paper_date
        return {str(pid): {"paper_id": str(pid), **({"org": self.lex.orgs[o]} if o >= 0 else {}),
                           **({"date_ord": int(d)} if d else {})} for pid, o, d in zip(ids, orgs, dates)}

    def organisations(self) -> list[str]:
        return list(self.lex.orgs)


def _held(settings: Settings) -> StoreError:
    """Chroma waits as long as another process holds its store locked (sqlite's write lock)."""
    where = f"the Chroma server {settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host \
        else f"the store in {settings.data_dir / 'chroma'}"
    return StoreError(f"{where} did not answer within {settings.chroma_timeout:g} s (RAG_CHROMA_TIMEOUT): another "
                      "process may hold it locked (an index run, a backup); wait for it and retry, or stop it")


def _fuse(lists: dict[str, list[tuple[int, int, float]]], rrf_k: int) -> list[dict]:
    """RRF over paper rankings: [{prow, row (the chunk that ranked best anywhere), score, raw}]."""
    fused: dict[int, dict] = {}
    for name, ranking in lists.items():
        for rank, (prow, row, raw) in enumerate(ranking, 1):
            f = fused.setdefault(prow, {"prow": prow, "row": row, "score": 0.0, "best": rank, "raw": {}})
            f["score"] += 1.0 / (rrf_k + rank)
            f["raw"].update({name: raw, f"{name}_rank": rank})
            if rank < f["best"]:  # keep the chunk that ranked best anywhere
                f["best"], f["row"] = rank, row
    # a tie (BM25 2nd and dense 1st against the reverse, or each 1st and absent from the other list)
    # goes to the better BM25 rank: the exact words of the question; on the gold questions the tied
    # paper BM25 ranked higher was the only right one 5 times, the other never
    return sorted(fused.values(), key=lambda f: (-f["score"], f["raw"].get("bm25_rank", 1 << 30), f["prow"]))


def _lead(fused: list[dict], bm25: list[tuple[int, int, float]] | None, ratio: float) -> list[dict]:
    """`fused` with BM25's first paper moved to the top when it scores at least `ratio` times
    BM25's second: the question's own rare words single it out, and dense search, which may not map
    a paraphrase there at all ("copy out its own weights" for "exfiltrate its weights"), should
    not bury it at 7th. Dev, ratio 1.4: hit@1 0.847 -> 0.877 (multi-paper 0.735 -> 0.776),
    recall@5 0.868 -> 0.876, no question type lower; test (known after): hit@1 0.938 -> 0.963."""
    if not ratio or not bm25 or len(fused) < 2:
        return fused
    top, runner_up = bm25[0][2], bm25[1][2] if len(bm25) > 1 else 0.0
    if top < ratio * runner_up or fused[0]["prow"] == bm25[0][0]:
        return fused
    lead = next(f for f in fused if f["prow"] == bm25[0][0])
    lead = {**lead, "score": fused[0]["score"]}  # it takes the best fused score: scores still descend
    return [lead] + [f for f in fused if f["prow"] != lead["prow"]]


_lock = threading.Lock()
_cache: dict[tuple, Retriever] = {}


def get_retriever(settings: Settings | None = None) -> Retriever:
    """A cached Retriever, rebuilt when the live collection changed (re-index in the same process)."""
    settings = settings or get_settings()
    key = (settings.data_dir, settings.chroma_host, settings.chroma_port, settings.collection,
           settings.embed_backend, settings.chunk_tokens, settings.chunk_overlap_sentences, settings.dense_search)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and live_pointer(settings)[:2] == (cached.name, cached.generation):
            return cached
        if cached is not None:  # another index state: maybe written by another process
            store.reopen(settings)
        _cache[key] = Retriever(settings)
        return _cache[key]


def search(question: str, k: int = 10, *, filters: Filters | None = None, mode: Mode = "hybrid",
           settings: Settings | None = None) -> list[Hit]:
    """Ranked papers for a question: the public `rag.search`."""
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty; ask something, e.g. rag.search('RL for LLM reasoning')")
    if not isinstance(k, int) or k < 1:
        raise InputError(f"k={k!r} must be a positive whole number")
    return get_retriever(settings).search(question.strip(), k=k, filters=filters, mode=mode, settings=settings)
