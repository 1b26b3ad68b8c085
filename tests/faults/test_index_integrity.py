"""Index integrity under faults: real index processes killed with SIGKILL at chosen moments,
two index runs at once, and read commands after a settings change. Both store modes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rag.index import store
from rag.index.build import build_index
from rag.index.status import index_status
from rag.query.retrieval import Retriever, search

ROOT = Path(__file__).resolve().parents[2]
CHANGED = "manual grading"  # a phrase in a paper listed only in 001_…
REPLACED = "grading by hand by a tired teaching assistant"

# The child runs a real index update and stops (sleeps) at one moment so the parent can SIGKILL it there.
CHILD = """
import os, sys, time
from rag.index import build, store
from rag.index.build import build_index
where = os.environ["KILL_AT"]
def hold(name):
    print("at " + name, flush=True)
    time.sleep(120)
def wrap(module, attr, name):
    original = getattr(module, attr)
    def stop_first(*a, **k):
        hold(name)
        return original(*a, **k)
    setattr(module, attr, stop_first)
progress = None
if where == "write":
    progress = lambda done, total: hold("write")
elif where == "switch":
    wrap(store, "activate", "switch")
elif where == "delete":
    wrap(store, "delete_ids", "delete")
elif where == "cleanup":
    wrap(store, "drop_others", "cleanup")
build_index(rebuild=os.environ.get("REBUILD") == "1", progress=progress)
print("finished", flush=True)
"""


def _env(settings, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False", RAG_DATA_DIR=str(settings.data_dir),
               RAG_SEED_DIR=str(settings.seed_dir), RAG_OLLAMA_HOST="http://127.0.0.1:9", **extra)
    if settings.chroma_host:
        env.update(RAG_CHROMA_HOST=settings.chroma_host, RAG_CHROMA_PORT=str(settings.chroma_port))
    return env


def _kill_at(settings, where: str, rebuild: bool = False) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=_env(settings, KILL_AT=where, REBUILD="1" if rebuild else "0"))
    line = proc.stdout.readline()
    assert line.strip() == f"at {where}", line
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _assert_complete(settings, n_papers: int) -> None:
    """Every paper is searchable, every chunk the generation names exists, and nothing else."""
    r = Retriever(settings)
    assert len(r.lex.paper_ids) == n_papers
    ids = [str(c) for c in r.lex.chunk_ids]
    assert len(store.get_by_ids(r.collection, settings, ids, [])) == len(ids)
    for pid in r.lex.paper_ids:
        head = str(r.lex.chunk_ids[r.lex.paper_head[list(r.lex.paper_ids).index(pid)]])
        assert head.startswith(f"{pid}:0~")
    hit = search("grading handwritten engineering exams", k=1, settings=settings)[0]
    assert hit.title.startswith("Grading Handwritten") and hit.abstract


def _edit(seeds: Path) -> None:
    f = seeds / "001_e9ec3acac07436bd.txt"
    f.write_text(f.read_text().replace(CHANGED, REPLACED))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["embedded", "server"])
def mode_settings(request, small_settings, tmp_path):
    if request.param == "embedded":
        yield small_settings
        return
    port = _free_port()
    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "srv"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, "chroma run did not come up"
            time.sleep(0.3)
    yield small_settings.with_overrides(chroma_host="127.0.0.1", chroma_port=port)
    proc.terminate()
    proc.wait(timeout=20)


@pytest.mark.parametrize("where", ["write", "switch", "delete"])
def test_killed_incremental_update_loses_nothing(mode_settings, small_seeds, where):
    build_index(mode_settings)
    _edit(small_seeds)
    _kill_at(mode_settings, where)
    _assert_complete(mode_settings, 13)  # the killed run's paper is still there, old or new
    abstract = search("grading handwritten engineering exams", k=1, settings=mode_settings)[0].abstract
    assert (REPLACED in abstract) == (where == "delete")  # the switch is the commit point
    report = build_index(mode_settings)  # the next run recovers and finishes the job
    assert (report.updated, report.unchanged) == ((0, 13) if where == "delete" else (1, 12))
    _assert_complete(mode_settings, 13)
    r = Retriever(mode_settings)
    assert r.collection.count() == len(r.lex.chunk_ids)  # the orphans of the killed run are gone
    assert REPLACED in search("grading handwritten engineering exams", k=1, settings=mode_settings)[0].abstract


@pytest.mark.parametrize("where", ["write", "cleanup"])
def test_killed_rebuild_leaves_a_complete_index(mode_settings, where):
    first = build_index(mode_settings)
    _kill_at(mode_settings, where, rebuild=True)
    after = index_status(mode_settings)
    assert (after.collection == first.collection) == (where == "write")
    _assert_complete(mode_settings, 13)
    report = build_index(mode_settings)
    assert report.unchanged == 13 and report.chunks_embedded == 0
    names = [getattr(c, "name", c) for c in store.client(mode_settings).list_collections()]
    assert sorted(n for n in names if not n.endswith("__registry")) == [report.collection]


def test_second_index_run_is_refused_while_one_runs(small_settings):
    build_index(small_settings)
    holder = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env=_env(small_settings, KILL_AT="write", REBUILD="1"))
    try:
        assert holder.stdout.readline().strip() == "at write"
        second = subprocess.run([sys.executable, "-m", "rag", "index", "--rebuild"], capture_output=True,
                                text=True, cwd=ROOT, env=_env(small_settings), timeout=120)
        assert second.returncode == 3
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "another `python -m rag index` is running" in lines[0], second.stderr
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    _assert_complete(small_settings, 13)
    assert build_index(small_settings).unchanged == 13  # the kernel released the dead holder's lock


@pytest.mark.parametrize("command", [["search", "grading exams"], ["ask", "grading exams", "--backend", "extractive"]])
def test_read_command_after_settings_change_does_not_rebuild(small_settings, command):
    first = build_index(small_settings)
    run = subprocess.run([sys.executable, "-m", "rag", *command], capture_output=True, text=True, cwd=ROOT,
                         env=_env(small_settings, RAG_CHUNK_TOKENS="120"), timeout=120)
    assert run.returncode == 3
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "python -m rag index" in lines[0] and "other settings" in lines[0], run.stderr
    assert "RAG_CHUNK_TOKENS" in lines[0] and "RAG_EMBED_BACKEND" not in lines[0]  # the one that changed
    after = index_status(small_settings)
    assert (after.collection, after.fingerprint) == (first.collection, first.fingerprint)
