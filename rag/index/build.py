"""Build or update the index from the seed files: crash-safe, exclusive, incremental per paper.

Chunks go into Chroma directly (`collection.upsert` with our own vectors), not through
llama-index's `ChromaVectorStore`: that one stores a `_node_content` JSON copy of every node
(text + metadata, ~2.4 KB a chunk) beside the document, which nothing here reads. Each Chroma
record is a chunk's vector with the few keys filters and joins need (`CHUNK_KEYS`); the chunk
texts and each paper's fields (abstract, title, sources…), stored once per paper, live in the
generation beside it (`rag.index.texts`: Chroma's embedded store keeps a document three times).

What is indexed is described by a manifest beside the collection (`rag.index.manifest`): file
hashes (nothing changed -> stop, without parsing or reading Chroma) and per-paper content hashes
with chunk ids. A chunk id carries its paper's content hash (`<paper>:<n>~<hash>`), so an
update writes a changed paper's new chunks beside the old ones, builds the next BM25 generation,
moves the registry pointer (one write), and only then deletes the old chunks. A journal written
first names both sets, so the next run deletes the orphans of a run killed in between.
A different fingerprint (embedder, chunking) or `rebuild=True` fills a new collection and
switches to it only when complete. Every run holds `rag.index.lock`.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import groupby
from typing import Callable

import numpy as np

from rag.corpus import load_all
from rag.corpus.listing import Paper
from rag.index import bm25, manifest, status, store, store_health
from rag.index.chunking import Chunk, chunk_paper
from rag.index.embedding import embedder_name, fits_window
from rag.index.lock import index_lock
from rag.settings import Settings, get_settings

CHUNKER_VERSION = 6  # bump when chunk text or storage layout changes: forces a rebuild (5: texts out of Chroma, 6: float32 vectors)
BATCH = 512  # chunks per embedding call, Chroma write and progress step (Chroma pays per call)
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


def fingerprint_spec(settings: Settings) -> dict:
    """What an index is built with; a change to any of it needs a rebuild."""
    return {"embedder": embedder_name(settings), "chunk_tokens": settings.chunk_tokens,
            "overlap": settings.chunk_overlap_sentences, "chunker": CHUNKER_VERSION, "hnsw": store.HNSW}


def fingerprint(settings: Settings) -> str:
    return hashlib.sha1(json.dumps(fingerprint_spec(settings), sort_keys=True).encode()).hexdigest()[:16]


# the setting behind each part of the fingerprint; the others change only with this code's version
_SETTING_OF = {"embedder": "RAG_EMBED_BACKEND / RAG_OLLAMA_EMBED_MODEL", "chunk_tokens": "RAG_CHUNK_TOKENS",
               "overlap": "RAG_CHUNK_OVERLAP_SENTENCES"}


def changed_settings(settings: Settings) -> str:
    """How the settings differ from those the live index was built with, setting by setting
    ("RAG_CHUNK_TOKENS: built with 180, now 120"); "" when the index does not record them."""
    built = (manifest.read_live(settings) or {}).get("built_with")
    if not isinstance(built, dict):
        return ""
    now = fingerprint_spec(settings)
    return "; ".join(f"{_SETTING_OF.get(k, f'this version of the code ({k})')}: built with {built.get(k)!r}, "
                     f"now {v!r}" for k, v in now.items() if built.get(k) != v)


_MONTH = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


def date_ord(paper: Paper) -> int | None:
    """yyyymmdd; a source that gives only the year or the month leaves the rest 00 (2023 -> 20230000,
    Mar 2024 -> 20240300), which the date filters read as the whole year or month (`bm25.date_span`)."""
    if paper.date:
        return int(paper.date.replace("-", ""))
    if not paper.year:
        return None
    words = (paper.date_raw or "").lower().split()
    return paper.year * 10000 + (_MONTH.get(words[0][:3], 0) * 100 if len(words) == 2 else 0)


CHUNK_KEYS = ("paper_id", "chunk_index", "org", "date_ord")  # what filters and joins need on every chunk


def paper_fields(paper: Paper, n_chunks: int) -> dict:
    """A paper's stored fields (`rag.index.texts`); None fields are left out, not stored as ''."""
    meta = {"paper_id": paper.paper_id, "title": paper.title, "chunk_index": 0,
            "n_chunks": n_chunks, "content_hash": paper.content_hash, "abstract": paper.abstract,
            "sources": ", ".join(paper.sources), "org": paper.org, "authors": paper.authors,
            "date": paper.date, "date_raw": paper.date_raw, "upvotes": paper.upvotes,
            "date_ord": date_ord(paper),
            "arxiv_id": paper.arxiv_id, "doi": paper.doi, "url": paper.url, "venue": paper.venue, "year": paper.year,
            "kind": paper.kind if paper.kind != "listing" else None}
    return {k: v for k, v in meta.items() if v is not None}


def chunk_metadata(paper: Paper, chunk: Chunk) -> dict:
    """What Chroma stores beside a chunk's vector: flat keys its `where` filters can use."""
    meta = {"paper_id": paper.paper_id, "chunk_index": chunk.index, "org": paper.org, "date_ord": date_ord(paper)}
    return {k: v for k, v in meta.items() if v is not None}


def chunk_id(paper: Paper, chunk: Chunk) -> str:
    """`<paper>:<n>~<content hash>`: new content gets new ids, so replacements never overwrite."""
    return f"{chunk.chunk_id}~{paper.content_hash[:8]}"


def _chunks(papers: list[Paper], settings: Settings) -> list[tuple[Paper, Chunk, int]]:
    out = []
    for p in papers:
        chunks = chunk_paper(p, settings.chunk_tokens, settings.chunk_overlap_sentences, fits_window)
        out += [(p, c, len(chunks)) for c in chunks]
    return out


def _rows(items: list[tuple[Paper, Chunk, int]], papers: list[Paper]) -> tuple[bm25.Rows, dict[str, list]]:
    """The BM25/array rows and the manifest's paper table for every chunk of `papers`."""
    rows = bm25.Rows([chunk_id(p, c) for p, c, _ in items], [c.embed_text(p.title) for p, c, _ in items],
                     [p.paper_id for p, _, _ in items], [c.index == 0 for _, c, _ in items],
                     {p.paper_id: date_ord(p) or 0 for p in papers}, {p.paper_id: p.org for p in papers},
                     {p.paper_id: paper_fields(p, n) for p, c, n in items if c.index == 0})
    table: dict[str, list] = {p.paper_id: [p.content_hash, []] for p in papers}
    for cid, pid in zip(rows.chunk_ids, rows.paper_ids):
        table[pid][1].append(cid)
    return rows, table


def _embedder(settings: Settings, embed_model):
    """texts -> vectors. The default ONNX path skips llama-index (a multi-second import)."""
    if embed_model is not None:
        return embed_model.get_text_embedding_batch
    if settings.embed_backend == "onnx":
        from rag.index.embedding import get_minilm

        return lambda texts: get_minilm().embed(texts, batch_size=settings.embed_batch)
    from rag.index.llama_embedding import embed_model_for, ollama_embed

    model = embed_model_for(settings)
    return lambda texts: ollama_embed(settings, model.get_text_embedding_batch, texts)


def _write(collection, items: list[tuple[Paper, Chunk, int]], settings: Settings, embed_model,
           progress: Progress | None) -> np.ndarray:
    """Embed and upsert chunks, returning their vectors; the Chroma write of one batch overlaps
    the embedding of the next (a second thread: ONNX and SQLite/HNSW each leave a core idle otherwise)."""
    if not items:
        return np.zeros((0, 0), dtype=bm25.VECTOR_DTYPE)
    embed, pending, out = _embedder(settings, embed_model), None, []
    with ThreadPoolExecutor(max_workers=1) as writer:
        for start in range(0, len(items), BATCH):
            part = items[start:start + BATCH]
            texts = [c.embed_text(p.title) for p, c, _ in part]
            vectors = np.asarray(embed(texts), dtype=np.float32)
            out.append(vectors.astype(bm25.VECTOR_DTYPE, copy=False))
            if pending is not None:
                pending.result()
            pending = writer.submit(collection.upsert, ids=[chunk_id(p, c) for p, c, _ in part],
                                    embeddings=vectors, metadatas=[chunk_metadata(p, c) for p, c, _ in part])
            if progress:
                progress(start + len(part), len(items))
        pending.result()
    return np.vstack(out)


def _publish(cl, settings: Settings, collection: str, rows: bm25.Rows, vectors, man: manifest.Manifest) -> str:
    """Save a new generation (BM25 + arrays + manifest) and point the registry at it."""
    gen = manifest.new_generation()
    target = manifest.generation_dir(settings, collection, gen)
    target.parent.mkdir(parents=True, exist_ok=True)
    bm25.save(rows, vectors, target)
    man.save(target)
    store.activate(cl, settings, collection, gen)
    return gen


def _rebuild(cl, settings, fp, papers, files, embed_model, progress, report: IndexReport) -> None:
    manifest.live_path(settings).unlink(missing_ok=True)  # until the switch, no run may skip the cleanup
    items = _chunks(papers, settings)
    col = store.new_collection(cl, settings, fp, len(items))
    vectors = _write(col, items, settings, embed_model, progress)
    store.settled(col)
    report.chunks_embedded = len(items)
    rows, table = _rows(items, papers)
    gen = _publish(cl, settings, col.name, rows, vectors, manifest.Manifest(fp, files, table))
    report.added, report.collection = len(papers), col.name
    _cleanup(cl, settings, col.name, {gen})
    if note := store.compact(settings):
        report.notes.append(note)


def _update(cl, act: store.Active, old: manifest.Manifest, papers, files, settings, embed_model, progress,
            report: IndexReport) -> None:
    current = {p.paper_id for p in papers}
    todo = [p for p in papers if (old.papers.get(p.paper_id) or [None])[0] != p.content_hash]
    report.updated = sum(p.paper_id in old.papers for p in todo)
    report.added = len(todo) - report.updated
    report.unchanged = len(papers) - len(todo)
    gone = [pid for pid in old.papers if pid not in current]
    report.removed = len(gone)
    stale = [cid for p in todo if p.paper_id in old.papers for cid in old.papers[p.paper_id][1]]
    stale += [cid for pid in gone for cid in old.papers[pid][1]]
    if not todo and not gone:  # only file bytes changed (e.g. reordered): record the new hashes
        old.files = files
        old.save(manifest.generation_dir(settings, act.name, act.generation))
        return
    items = _chunks(papers, settings)
    rows, table = _rows(items, papers)
    gen = manifest.new_generation()
    manifest.write_journal(settings, act.name, [c for p in todo for c in table[p.paper_id][1]], stale, gen)
    changed = {p.paper_id for p in todo}
    new = _write(act.collection, [it for it in items if it[0].paper_id in changed], settings, embed_model, progress)
    report.chunks_embedded = len(new)
    target = manifest.generation_dir(settings, act.name, gen)
    bm25.save(rows, _vectors(settings, act, rows, changed, new), target)
    manifest.Manifest(old.fingerprint, files, table).save(target)
    store.activate(cl, settings, act.name, gen)
    store.delete_ids(act.collection, settings, stale)
    manifest.journal_path(settings, act.name).unlink(missing_ok=True)
    _cleanup(cl, settings, act.name, {gen, act.generation})


def _vectors(settings: Settings, act: store.Active, rows: bm25.Rows, changed: set[str], new: np.ndarray):
    """The next generation's vectors: new ones for changed papers, the live generation's for the rest."""
    old = bm25.Lexicon(manifest.generation_dir(settings, act.name, act.generation))
    is_new = np.array([pid in changed for pid in rows.paper_ids], dtype=bool)
    out = np.zeros((len(rows.chunk_ids), old.vectors.shape[1]), dtype=bm25.VECTOR_DTYPE)
    if len(new):
        out[is_new] = new
    keep = np.flatnonzero(~is_new)
    out[keep] = old.vectors[old.rows_of([rows.chunk_ids[i] for i in keep])]
    return out


def _recover(settings: Settings, act: store.Active) -> None:
    """Finish or undo an update that was killed: delete whichever chunk set is not live."""
    journal = manifest.read_journal(settings, act.name)
    if journal is None:
        return
    orphans = journal["delete"] if act.generation == journal["to"] else journal["add"]
    store.delete_ids(act.collection, settings, orphans)
    manifest.journal_path(settings, act.name).unlink(missing_ok=True)


def _adopt(cl, settings: Settings, act: store.Active) -> manifest.Manifest | None:
    """Recreate the local files of a live collection (built on another machine in server mode, or
    local files lost): ids and vectors come from Chroma, read in pages; texts from the local corpus,
    chunked again. A paper is adopted when Chroma holds exactly the chunks it has here; any other is
    listed with no content hash, so the update that follows redoes or removes it. No embedding.
    None when nothing can be adopted (the caller rebuilds)."""
    local = load_all(settings)
    table: dict[str, list] = {}
    vectors: dict[str, np.ndarray] = {}
    for page in store.pages(act.collection, settings, ["metadatas", "embeddings"]):
        for cid, m, vec in zip(page["ids"], page["metadatas"], page["embeddings"]):
            table.setdefault(m["paper_id"], ["", []])[1].append(cid)
            vectors[cid] = vec
    items = []
    for _, group in groupby(_chunks(local, settings), key=lambda it: it[0].paper_id):
        group = list(group)
        p = group[0][0]
        if p.paper_id in table and {chunk_id(p, c) for _, c, _ in group} == set(table[p.paper_id][1]):
            table[p.paper_id][0] = p.content_hash
            items += group
    if not items:
        return None
    rows, _ = _rows(items, [p for p in local if table.get(p.paper_id, [""])[0]])
    man = manifest.Manifest(act.fingerprint, {}, table)
    _publish(cl, settings, act.name, rows, np.asarray([vectors[c] for c in rows.chunk_ids], dtype=bm25.VECTOR_DTYPE), man)
    return man


def _cleanup(cl, settings: Settings, keep: str, generations: set[str]) -> None:
    store.drop_others(cl, settings, keep)
    store.remove_orphans(settings)
    manifest.prune(settings, keep, generations)


def _live_manifest(settings: Settings, act: store.Active | None, report: IndexReport | None = None
                   ) -> manifest.Manifest | None:
    """The live generation's manifest; None when its files are gone or damaged (the caller then
    recreates them from the collection, `_adopt`)."""
    if act is None or not act.generation:
        return None
    folder = manifest.generation_dir(settings, act.name, act.generation)
    if not (folder / "params.index.json").exists():
        return None
    if problem := manifest.damage(folder):
        if report is not None:
            report.notes.append(f"the local BM25 files were damaged ({problem})")
        return None
    return manifest.Manifest.load(folder)


def build_index(settings: Settings | None = None, *, rebuild: bool = False, embed_model=None,
                progress: Progress | None = None) -> IndexReport:
    """Make the live index match the seed files. Returns what changed."""
    settings = settings or get_settings()
    t0 = time.perf_counter()
    with index_lock(settings):
        report = _build_locked(settings, rebuild, embed_model, progress)
    report.seconds = time.perf_counter() - t0
    return report


def _unchanged(settings: Settings, fp: str) -> IndexReport | None:
    """The no-op run, decided from local files alone (no chromadb import, no corpus parsing):
    embedded mode, the last switch completed, no update in flight, and every seed file as recorded."""
    live = manifest.read_live(settings)
    if settings.chroma_host or not live or live["fingerprint"] != fp:
        return None
    store_health.precheck(settings, settings.data_dir / "chroma")  # ~1 ms: a damaged store is never "unchanged"
    if manifest.read_journal(settings, live["collection"]) is not None:
        return None
    old = manifest.Manifest.load(manifest.generation_dir(settings, live["collection"], live["generation"]))
    if old is None or old.files != manifest.file_hashes(settings.seed_dir, settings.library_dir) \
            or status.problem(settings, live["collection"], live["generation"]):
        return None
    return IndexReport(papers=len(old.papers), unchanged=len(old.papers), chunks_total=old.n_chunks,
                       fingerprint=fp, collection=live["collection"])


def _build_locked(settings: Settings, rebuild: bool, embed_model, progress) -> IndexReport:
    fp = fingerprint(settings)
    if not rebuild and (report := _unchanged(settings, fp)) is not None:
        return report
    cl = store.client(settings)
    act = store.active(cl, settings)
    if act is not None:
        _recover(settings, act)
    report = IndexReport(fingerprint=fp)
    old, files = _live_manifest(settings, act, report), manifest.file_hashes(settings.seed_dir, settings.library_dir)
    if act is not None and not rebuild and (missing := store_health.vectors_missing(settings, act.name)):
        rebuild, report.reason = True, missing  # its vectors are gone: only embedding again restores them
    if not rebuild and act is not None and act.fingerprint == fp and old is None:
        old = _adopt(cl, settings, act)
        if old is not None:
            act = store.active(cl, settings)
            report.notes.append(f"rebuilt the local BM25 files of {act.name} from the collection")
    if not rebuild and act is not None and act.fingerprint == fp and old is not None and old.files == files:
        report.papers = report.unchanged = len(old.papers)  # nothing changed: no parsing, no Chroma reads
        report.chunks_total, report.collection = old.n_chunks, act.name
        _cleanup(cl, settings, act.name, {act.generation})
        # the next no-op is local
        manifest.write_live(settings, act.name, act.generation, act.fingerprint, fingerprint_spec(settings))
        return report
    papers = load_all(settings)
    report.papers = len(papers)
    if rebuild or act is None or act.fingerprint != fp or old is None:
        report.rebuilt = True
        report.reason = report.reason or ("--rebuild" if rebuild else "no index yet" if act is None
                                          else f"settings changed ({changed_settings(settings) or f'fingerprint {act.fingerprint} -> {fp}'})")
        _rebuild(cl, settings, fp, papers, files, embed_model, progress, report)
    else:
        _update(cl, act, old, papers, files, settings, embed_model, progress, report)
        report.collection = act.name
    act = store.active(cl, settings)
    live = _live_manifest(settings, act)
    report.chunks_total = live.n_chunks if live else 0
    manifest.write_live(settings, act.name, act.generation, act.fingerprint, fingerprint_spec(settings))  # done
    return report
