"""Indexing: idempotent updates, fingerprint rebuilds, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from rag.index import store
from rag.index.build import build_index
from rag.index.llama_embedding import MiniLMEmbedding
from rag.index.embedding import MiniLM
from rag.query.retrieval import search
from rag.index.status import index_status

from conftest import ROOT


@pytest.fixture
def embedder():
    """A real MiniLM engine of its own, so its counter sees only this test's work."""
    return MiniLMEmbedding(engine=MiniLM())


def test_second_run_embeds_nothing(small_settings, embedder):
    first = build_index(small_settings, embed_model=embedder)
    assert first.rebuilt and first.added == 13 and first.chunks_embedded == first.chunks_total > 13
    before = embedder.engine.texts_embedded
    second = build_index(small_settings, embed_model=embedder)
    assert embedder.engine.texts_embedded == before  # not one embedding call
    assert (second.added, second.updated, second.removed, second.unchanged) == (0, 0, 0, 13)
    assert not second.rebuilt and second.collection == first.collection


def test_changed_paper_is_replaced_and_removed_file_deleted(small_settings, small_seeds, embedder):
    build_index(small_settings, embed_model=embedder)
    f = small_seeds / "001_e9ec3acac07436bd.txt"
    text = f.read_text()
    assert "manual grading" in text  # a paper listed only in this file
    f.write_text(text.replace("manual grading", "grading by hand by a tired teaching assistant"))
    before = embedder.engine.texts_embedded
    report = build_index(small_settings, embed_model=embedder)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 0, 12)
    assert 0 < embedder.engine.texts_embedded - before <= 3  # only that paper's chunks
    hit = search("grading handwritten exams", k=1, settings=small_settings)[0]
    assert "tired teaching assistant" in hit.abstract

    (small_seeds / "001_e9ec3acac07436bd.txt").unlink()
    report = build_index(small_settings, embed_model=embedder)
    assert report.removed == 5 and report.unchanged == 8 and report.chunks_embedded == 0
    assert index_status(small_settings).papers == 8


def test_an_index_under_a_longer_prefix_survives_the_shorter_ones_runs(small_settings, embedder):
    """RAG_COLLECTION=papers_v2 beside the default `papers` in one store: each run cleans up only
    its own collections and BM25 folders (papers_v2_… starts with papers_)."""
    v2 = small_settings.with_overrides(collection="papers_v2")
    build_index(v2, embed_model=embedder)
    build_index(small_settings, embed_model=embedder)
    build_index(small_settings, embed_model=embedder, rebuild=True)  # the clean-up of old collections runs
    build_index(v2.with_overrides(chunk_tokens=120), embed_model=embedder)  # and v2's own, after a change
    for s in (small_settings, v2.with_overrides(chunk_tokens=120)):
        assert index_status(s).papers == 13 and search("grading exams", k=1, settings=s)


def test_fingerprint_change_rebuilds(small_settings, embedder):
    first = build_index(small_settings, embed_model=embedder)
    changed = small_settings.with_overrides(chunk_tokens=120)
    report = build_index(changed, embed_model=embedder)
    assert report.rebuilt and "RAG_CHUNK_TOKENS: built with 180, now 120" in report.reason
    assert report.collection != first.collection and report.chunks_total > first.chunks_total
    # the old collection is gone; searching with the old settings asks for a re-index
    names = [getattr(c, "name", c) for c in store.client(small_settings).list_collections()]
    assert first.collection not in names
    with pytest.raises(Exception, match="rebuild it"):
        search("anything at all", settings=small_settings.with_overrides(data_dir=small_settings.data_dir))


def test_search_before_any_index_names_the_fix(small_settings):
    with pytest.raises(Exception, match="python -m rag index"):
        search("reasoning", settings=small_settings)


KILL_SCRIPT = """
import os, sys
from rag.index.build import build_index
from rag.settings import Settings
s = Settings(data_dir=sys.argv[1], seed_dir=sys.argv[2])
def progress(done, total):
    print(f"progress {done}/{total}", flush=True)
build_index(s, rebuild=True, progress=progress)
print("finished", flush=True)
"""


def test_killed_rebuild_leaves_previous_index_usable(tmp_path, corpus_settings):
    """Rebuild the full corpus in a subprocess, kill -9 it after its first batch is written."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(corpus_settings.data_dir, data)
    settings = corpus_settings.with_overrides(data_dir=data)
    before = index_status(settings)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(data), str(settings.seed_dir)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    line = proc.stdout.readline()  # blocks until one batch of chunks is in the new collection
    assert line.startswith("progress"), line
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    after = index_status(settings)
    assert (after.collection, after.chunks) == (before.collection, before.chunks)
    hits = search("asynchronous streaming RL framework for post-training", k=3, settings=settings)
    assert hits[0].title.startswith("AsyncFlow")
    # the next run cleans up the half-built collection
    build_index(settings)
    names = [getattr(c, "name", c) for c in store.client(settings).list_collections()]
    assert sorted(n for n in names if not n.endswith("__registry")) == [before.collection]
