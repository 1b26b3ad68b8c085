"""What lets the index grow: paged reads, the on-disk layout, numeric dense filters, and the
same dense ranking in every process (explicit HNSW parameters)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import rag
from rag.index import manifest, store
from rag.index.build import CHUNK_KEYS, build_index
from rag.index.embedding import minilm_query
from rag.index.status import index_status
from rag.query.retrieval import Filters, Retriever

ROOT = Path(__file__).resolve().parent.parent


def test_every_whole_collection_read_is_paged(small_settings):
    """With 3 rows per read, status and re-creating the lost BM25 files still see every chunk."""
    settings = small_settings.with_overrides(page_size=3)
    first = build_index(settings)
    col = store.require_active(settings).collection
    seen = [cid for page in store.pages(col, settings, []) for cid in page["ids"]]
    assert len(seen) == len(set(seen)) == col.count() == first.chunks_total > 3 * 10
    shutil.rmtree(manifest.root(settings))  # the local files are gone: only Chroma has the index
    assert (index_status(settings).papers, index_status(settings).chunks) == (13, first.chunks_total)
    report = build_index(settings)
    assert not report.rebuilt and report.chunks_embedded == 0 and report.unchanged == 13
    assert any("from the collection" in n for n in report.notes)
    assert rag.search("grading handwritten exams", k=1, settings=settings)[0].title.startswith("Grading")


def test_chroma_holds_vectors_and_filter_keys_and_the_text_is_stored_once(small_settings):
    build_index(small_settings)
    col = store.require_active(small_settings).collection
    got = col.get(include=["metadatas", "documents"])
    assert got["ids"] and all(d is None for d in got["documents"])  # Chroma would keep each text three times
    for cid, meta in zip(got["ids"], got["metadatas"]):
        assert set(meta) <= set(CHUNK_KEYS) and cid.startswith(f"{meta['paper_id']}:{meta['chunk_index']}~")
    hits = Retriever(small_settings).search("reinforcement learning", k=13)
    later = [h for h in hits if h.meta["chunk_index"] > 0]
    assert later, "some hit's best chunk is not chunk 0"
    for h in hits:  # the chunk's text and its paper's fields come from the generation, by row
        assert h.chunk_id.startswith(f"{h.paper_id}:{h.meta['chunk_index']}~")
        assert h.title == h.meta["title"] and h.meta["sources"]
        assert h.chunk_text.startswith(h.title + "\n") and h.chunk_text.split("\n", 1)[1][:60] in h.abstract


def test_no_op_reindex_reads_only_the_manifest(small_settings):
    build_index(small_settings)
    col = store.require_active(small_settings).collection
    col.get, col.query = None, None  # would raise if the no-op run read the collection
    report = build_index(small_settings)
    assert report.unchanged == 13 and report.chunks_embedded == 0


def test_dense_filters_are_numeric_ranges_not_id_lists(corpus_settings):
    r = Retriever(corpus_settings)
    where = r._where(Filters(date_from="2024-01-01", date_to="2024-12-31"))
    # from the first of the year: a year-only paper (20240000) meets 2024; the chunk mask does the rest
    assert where == {"$and": [{"date_ord": {"$gte": 20240000}}, {"date_ord": {"$lte": 20241231}}]}
    assert r._where(Filters(org="nvidia")) == {"org": {"$in": [o for o in r.organisations() if "nvidia" in o.lower()]}}
    hits = r.search("language model reasoning", k=10, filters=Filters(date_from="2024"), mode="dense")
    assert hits and all(h.meta["date"] >= "2024-01-01" for h in hits)


QUESTIONS = ["asynchronous RL post-training framework", "hallucination after fine-tuning on new knowledge",
             "multilingual benchmarks survey", "curriculum learning for small language models",
             "theory of mind evaluation datasets", "reward models for reasoning", "speculative decoding speedup"]
DENSE_CHILD = """
import json, sys
from rag.settings import Settings
from rag.query.retrieval import Retriever
r = Retriever(Settings(data_dir=sys.argv[1], seed_dir=sys.argv[2], dense_search=sys.argv[4]))
qs = json.loads(sys.argv[3])
print(json.dumps([[str(r.lex.chunk_ids[row]) for row, _ in r.dense_ranking(q, __import__('rag').Filters(), 10)]
                  for q in qs]))
"""


def test_dense_ranking_is_identical_in_fresh_processes_and_exact(corpus_settings):
    """Chroma's HNSW in two fresh processes, the scan of the stored vectors in a third, and a brute
    force over the vectors read back from Chroma: one ranking."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = [json.loads(subprocess.run([sys.executable, "-c", DENSE_CHILD, str(corpus_settings.data_dir),
                                       str(corpus_settings.seed_dir), json.dumps(QUESTIONS), how], cwd=ROOT, env=env,
                                      capture_output=True, text=True, check=True).stdout)
            for how in ("hnsw", "hnsw", "exact")]
    assert runs[0] == runs[1] == runs[2]
    col = store.require_active(corpus_settings).collection  # exact top 10 by brute force over every vector
    ids, vecs = [], []
    for page in store.pages(col, corpus_settings, ["embeddings"]):
        ids += page["ids"]
        vecs.append(np.asarray(page["embeddings"], dtype=np.float32))
    matrix = np.vstack(vecs)
    for q, got in zip(QUESTIONS, runs[0]):
        exact = [ids[i] for i in np.argsort(-(matrix @ minilm_query(q)), kind="stable")[:10]]
        assert got == exact, q


def test_bm25_scores_match_bm25s_and_top_k_is_a_partial_sort(small_settings):
    """Our per-token scoring against bm25s's reference, and top_k against a full sort."""
    from rag.index.bm25 import tokenize, top_k

    build_index(small_settings)
    lex = Retriever(small_settings).lex
    for q in ["grading handwritten exams", "reinforcement learning reasoning reasoning", "zzzz skill extraction"]:
        ids = lex.bm25.get_tokens_ids(tokenize([q], return_ids=False)[0])
        ours = lex.scores(q, None)
        np.testing.assert_allclose(ours, lex.bm25.get_scores_from_ids(ids), rtol=1e-5, atol=1e-6)
        full = [i for i in np.argsort(-ours, kind="stable") if ours[i] > 0][:5]
        assert top_k(ours, 5).tolist() == full
    assert lex.scores("zzzz qqqq", None) is None


def test_filtered_dense_scores_are_the_same_window_by_window(small_settings, monkeypatch):
    """The exact (filtered) dense path reads the vectors one file window at a time, releasing each;
    with windows of 7 rows it still gives every row's plain dot product, in order."""
    from rag.index import bm25

    build_index(small_settings)
    lex = Retriever(small_settings).lex
    monkeypatch.setattr(bm25, "VECTOR_WINDOW", 7)
    rows = np.arange(0, len(lex), 3)
    qvec = minilm_query("grading handwritten exams")
    np.testing.assert_allclose(lex.similarities(rows, qvec), np.asarray(lex.vectors[rows], dtype=np.float32) @ qvec,
                               rtol=1e-6)
    assert lex.similarities(rows[:0], qvec).shape == (0,)
    every = np.arange(len(lex))  # the whole file (the unfiltered scan) is read, not mapped, window by window
    np.testing.assert_allclose(lex.similarities(every, qvec), np.asarray(lex.vectors, dtype=np.float32) @ qvec,
                               rtol=1e-6)


ONE_QUESTION_CHILD = """
import sys
import rag.cli
code = rag.cli.main(sys.argv[1:])
print("chromadb loaded" if "chromadb" in sys.modules else "chromadb not loaded", file=sys.stderr)
sys.exit(code)
"""


def test_one_question_commands_scan_the_vectors_instead_of_loading_chroma(corpus_settings):
    """`rag search` and `rag ask` answer one question and exit: by default (RAG_DENSE_SEARCH=auto)
    they rank by a scan of the generation's vectors and never load Chroma or its graph, and the
    ranking is the one Chroma's HNSW gives."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_DATA_DIR": str(corpus_settings.data_dir),
           "RAG_SEED_DIR": str(corpus_settings.seed_dir), "RAG_LIBRARY_DIR": str(corpus_settings.library_dir)}
    env.pop("RAG_DENSE_SEARCH", None)

    def run(*argv, **extra):
        return subprocess.run([sys.executable, "-c", ONE_QUESTION_CHILD, *argv], cwd=ROOT, env={**env, **extra},
                              capture_output=True, text=True, timeout=300)

    for q in QUESTIONS[:3]:
        auto = run("search", q, "--json", "-k", "8", "--mode", "dense")
        assert auto.returncode == 0 and "chromadb not loaded" in auto.stderr, auto.stderr
        hnsw = run("search", q, "--json", "-k", "8", "--mode", "dense", RAG_DENSE_SEARCH="hnsw")
        assert "chromadb loaded" in hnsw.stderr
        assert [h["paper_id"] for h in json.loads(auto.stdout)] == [h["paper_id"] for h in json.loads(hnsw.stdout)]
    asked = run("ask", QUESTIONS[0] + "?", "--backend", "extractive", "--json")
    assert asked.returncode == 0 and "chromadb not loaded" in asked.stderr, asked.stderr
    assert json.loads(asked.stdout)["citations"]


def test_ids_are_looked_up_without_copying_or_cutting_them(small_settings):
    """rows_of searches the memory-mapped ids in their own width: a longer id is absent, not cut
    to the width and matched against a stored one."""
    build_index(small_settings)
    lex = Retriever(small_settings).lex
    ids = [str(c) for c in lex.chunk_ids]
    row = max(range(len(ids)), key=lambda i: len(ids[i]))  # as wide as the stored ids: + "x" would be cut to it
    longest = ids[row]
    assert len(longest) == lex.sorted_ids.dtype.itemsize // 4
    assert lex.rows_of([longest, longest + "x", longest[:-1], ids[0], "nope"]).tolist() == [row, -1, -1, 0, -1]


def test_a_rebuild_leaves_no_log_for_the_first_query_to_replay(small_settings):
    """Chroma's HNSW segment has seen every record written (its max_seq_id equals the metadata
    segment's), so a new process does not re-insert hundreds of vectors on its first query; and
    the collection is back at Chroma's default threshold for later updates."""
    import sqlite3

    build_index(small_settings)
    col = store.require_active(small_settings).collection
    assert col.configuration["hnsw"]["sync_threshold"] == store.SYNC_THRESHOLD
    db = sqlite3.connect(f"file:{small_settings.data_dir / 'chroma' / 'chroma.sqlite3'}?mode=ro", uri=True)
    seen = dict(db.execute("SELECT s.scope, m.seq_id FROM max_seq_id m JOIN segments s ON s.id = m.segment_id "
                           "WHERE s.collection = ?", (str(col.id),)).fetchall())
    assert seen["VECTOR"] == seen["METADATA"] > 0, seen
    free, pages = (db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("freelist_count", "page_count"))
    assert free <= pages // 4, (free, pages)  # the write log's pages were given back (VACUUM)
