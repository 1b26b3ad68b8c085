"""Build or update the Chroma index from the seed files.

Nodes go into Chroma through llama-index's `ChromaVectorStore`, with embeddings computed by a
llama-index `BaseEmbedding`. We do not use `IngestionPipeline`'s docstore to skip unchanged
documents: the truth about what is indexed is Chroma itself (also in server mode), so we diff
against the content hashes stored in each chunk's metadata instead of a second store that
could drift from it.

Updates are per paper: unchanged papers are not embedded again, changed ones are replaced,
removed ones deleted. A different fingerprint (embedder, chunking) or `rebuild=True` builds a
new collection and switches to it only when complete (see `rag.store`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from rag.index import store
from rag.index.chunking import Chunk, chunk_paper
from rag.corpus import load_all
from rag.corpus.listing import Paper
from rag.index.embedding import embedder_name
from rag.settings import Settings, get_settings

CHUNKER_VERSION = 3  # bump when chunk text or metadata layout changes: forces a rebuild
Progress = Callable[[int, int], None]


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    papers: int = 0
    rebuilt: bool = False
    reason: str = ""
    fingerprint: str = ""
    collection: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def fingerprint(settings: Settings) -> str:
    spec = {"embedder": embedder_name(settings), "chunk_tokens": settings.chunk_tokens,
            "overlap": settings.chunk_overlap_sentences, "chunker": CHUNKER_VERSION}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def chunk_metadata(paper: Paper, chunk: Chunk, n_chunks: int) -> dict:
    """Flat metadata Chroma can filter on; None fields are left out, not stored as ''."""
    meta = {"paper_id": paper.paper_id, "title": paper.title, "chunk_index": chunk.index,
            "n_chunks": n_chunks, "content_hash": paper.content_hash, "abstract": paper.abstract,
            "sources": ", ".join(paper.sources), "org": paper.org, "authors": paper.authors,
            "date": paper.date, "date_raw": paper.date_raw, "upvotes": paper.upvotes,
            "date_ord": int(paper.date.replace("-", "")) if paper.date else None,
            "arxiv_id": paper.arxiv_id, "doi": paper.doi, "url": paper.url, "venue": paper.venue, "year": paper.year,
            "kind": paper.kind if paper.kind != "listing" else None}
    return {k: v for k, v in meta.items() if v is not None}


def _nodes(papers: list[Paper], settings: Settings):
    from llama_index.core.schema import TextNode

    nodes = []
    for p in papers:
        chunks = chunk_paper(p, settings.chunk_tokens, settings.chunk_overlap_sentences)
        for c in chunks:
            meta = chunk_metadata(p, c, len(chunks))
            nodes.append(TextNode(id_=c.chunk_id, text=c.embed_text(p.title), metadata=meta,
                                  excluded_embed_metadata_keys=list(meta), excluded_llm_metadata_keys=list(meta)))
    return nodes


def _write(collection, papers: list[Paper], settings: Settings, embed_model, progress: Progress | None) -> int:
    """Embed and add the papers' chunks in batches; returns the number of chunks written."""
    from llama_index.core.schema import MetadataMode
    from llama_index.vector_stores.chroma import ChromaVectorStore

    if embed_model is None:  # built only when there is something to embed: a no-op run skips
        from rag.index.llama_embedding import embed_model_for  # llama_index's multi-second import

        embed_model = embed_model_for(settings)
    vector_store = ChromaVectorStore(chroma_collection=collection)
    nodes, batch = _nodes(papers, settings), 128  # chunks per Chroma write and progress step
    for start in range(0, len(nodes), batch):
        part = nodes[start:start + batch]
        vectors = embed_model.get_text_embedding_batch([n.get_content(MetadataMode.EMBED) for n in part])
        for node, vec in zip(part, vectors):
            node.embedding = vec
        vector_store.add(part)
        if progress:
            progress(start + len(part), len(nodes))
    return len(nodes)


def _indexed_state(collection) -> dict[str, tuple[str, int, list[str]]]:
    """paper_id -> (content_hash, expected chunk count, chunk ids present)."""
    got = collection.get(include=["metadatas"])
    state: dict[str, tuple[str, int, list[str]]] = {}
    for cid, meta in zip(got["ids"], got["metadatas"]):
        h, n, ids = state.get(meta["paper_id"], (meta.get("content_hash", ""), int(meta.get("n_chunks", 0)), []))
        ids.append(cid)
        state[meta["paper_id"]] = (h, n, ids)
    return state


def _update(act: store.Active, papers: list[Paper], settings, embed_model, progress, report: IndexReport) -> None:
    state = _indexed_state(act.collection)
    current = {p.paper_id for p in papers}
    stale_ids, todo = [], []
    for p in papers:
        old = state.get(p.paper_id)
        if old and old[0] == p.content_hash and old[1] == len(old[2]):
            report.unchanged += 1
            continue
        # a paper half-written by a killed run has fewer chunks than it says: redo it
        report.updated += bool(old)
        report.added += not old
        stale_ids += old[2] if old else []
        todo.append(p)
    removed = [pid for pid in state if pid not in current]
    report.removed = len(removed)
    stale_ids += [cid for pid in removed for cid in state[pid][2]]
    if stale_ids:
        act.collection.delete(ids=stale_ids)
    report.chunks_embedded = _write(act.collection, todo, settings, embed_model, progress) if todo else 0
    if stale_ids or todo:
        store.touch(act.collection)


def build_index(settings: Settings | None = None, *, rebuild: bool = False, embed_model=None,
                progress: Progress | None = None) -> IndexReport:
    """Make the live index match the seed files. Returns what changed."""
    settings = settings or get_settings()
    t0 = time.perf_counter()
    papers = load_all(settings)
    cl, fp = store.client(settings), fingerprint(settings)
    act = store.active(cl, settings)
    report = IndexReport(papers=len(papers), fingerprint=fp)
    if rebuild or act is None or act.fingerprint != fp:
        report.rebuilt = True
        report.reason = ("--rebuild" if rebuild else "no index yet" if act is None
                         else f"fingerprint changed ({act.fingerprint} -> {fp})")
        col = store.new_collection(cl, settings, fp)
        report.chunks_embedded = _write(col, papers, settings, embed_model, progress)
        report.added = len(papers)
        store.activate(cl, settings, col.name)
        report.collection = col.name
    else:
        _update(act, papers, settings, embed_model, progress, report)
        store.drop_others(cl, settings, act.name)
        report.collection = act.name
    report.chunks_total = store.active(cl, settings).collection.count()
    report.seconds = time.perf_counter() - t0
    return report
