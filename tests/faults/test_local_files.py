"""The index's own files damaged under it: a file of the live BM25 generation deleted, truncated
or overwritten; the collection's HNSW graph deleted or truncated; a full disk. Each read command
says what is wrong and how to repair it (one error line, exit 3), `status` names the problem, and
the repair it names works. Real index, real Chroma, real files (a real tmpfs for the full disk)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from faultkit import EXIT, EXPECTED, QUESTION, assert_error, built, cli_env, run  # noqa: F401


@pytest.fixture
def copy_of(built, tmp_path):
    """A private copy of the module's index, to damage."""
    shutil.copytree(built.data_dir, tmp_path / "data")
    return tmp_path / "data"


def _generation(data: Path) -> Path:
    live = [g for g in (data / "bm25").glob("*/g*") if g.is_dir()]
    assert len(live) == 1, live
    return live[0]


def _graph(data: Path) -> Path:
    """The HNSW folder of the live collection: chroma/<its vector segment's id>/."""
    collection = _generation(data).parent.name
    with contextlib.closing(sqlite3.connect(data / "chroma" / "chroma.sqlite3")) as con:
        (segment,) = con.execute("SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
                                 "WHERE c.name = ? AND s.scope = 'VECTOR'", (collection,)).fetchone()
    return data / "chroma" / segment


def _overwrite_same_size(path: Path) -> None:
    path.write_bytes(b"x" * path.stat().st_size)


DAMAGE = {
    "texts deleted": lambda g: (g / "texts.sqlite").unlink(),
    "vectors truncated": lambda g: (g / "vectors.npy").write_bytes(b""),
    "vocabulary overwritten, other size": lambda g: (g / "vocab.index.json").write_text("garbage"),
    "vocabulary overwritten, same size": lambda g: _overwrite_same_size(g / "vocab.index.json"),
    "manifest of the wrong shape": lambda g: (g / "manifest.json").write_text(
        json.dumps({**json.loads((g / "manifest.json").read_text()), "sizes": [1, 2]})),
}


def _answers(env) -> None:
    proc = run(["search", QUESTION, "-k", "1"], env)
    assert proc.returncode == 0 and EXPECTED in proc.stdout, proc.stderr[-2000:]


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_bm25_files_are_named_and_index_repairs_them(built, copy_of, how):
    env = cli_env(copy_of, built.seed_dir)
    DAMAGE[how](_generation(copy_of))
    assert_error(run(["search", QUESTION], env), EXIT["store"], "damaged", "python -m rag index")
    status = run(["status"], env)
    assert status.returncode == EXIT["store"] and "python -m rag index" in status.stderr, status.stderr
    repaired = run(["index"], env)
    assert repaired.returncode == 0 and "unchanged" in repaired.stderr, repaired.stderr[-2000:]
    assert "chunks embedded" in repaired.stderr and " 0 chunks embedded" in repaired.stderr  # from Chroma, no embedding
    _answers(env)
    assert run(["status"], env).returncode == 0


@pytest.mark.parametrize("name", ["live pointer", "journal"])
def test_pointer_or_journal_of_the_wrong_shape_is_set_aside_not_a_crash(built, copy_of, name):
    """Valid JSON of another shape (edited by hand): read as absent, so searches fall back to
    Chroma's own pointer and an index run rewrites or ignores the file."""
    env = cli_env(copy_of, built.seed_dir)
    generation = _generation(copy_of)
    path = generation.parent.parent / "papers.live.json" if name == "live pointer" else generation.parent / "journal.json"
    path.write_text('["papers", "g1"]')  # truthy, of no known shape
    _answers(env)
    indexed = run(["index"], env)
    assert indexed.returncode == 0 and " 0 chunks embedded" in indexed.stderr, indexed.stderr[-2000:]
    _answers(env)
    assert run(["status"], env).returncode == 0


def test_deleted_vector_graph_is_named_and_index_rebuilds_it(built, copy_of):
    env = cli_env(copy_of, built.seed_dir)
    shutil.rmtree(_graph(copy_of))
    assert_error(run(["search", QUESTION], env), EXIT["store"], "vector index", "is missing", "python -m rag index")
    assert run(["status"], env).returncode == EXIT["store"]
    repaired = run(["index"], env)
    assert repaired.returncode == 0 and "rebuilt" in repaired.stderr, repaired.stderr[-2000:]
    _answers(env)


def test_truncated_vector_graph_says_rebuild_and_rebuild_recovers(built, copy_of):
    env = cli_env(copy_of, built.seed_dir)
    graph = _graph(copy_of) / "data_level0.bin"
    graph.write_bytes(graph.read_bytes()[:1000])
    _answers(env)  # a one-question command scans the index's own vectors: the graph is not read
    assert_error(run(["search", QUESTION], {**env, "RAG_DENSE_SEARCH": "hnsw"}), EXIT["store"], "is corrupted",
                 "python -m rag index --rebuild")
    rebuilt = run(["index", "--rebuild"], env)
    assert rebuilt.returncode == 0 and "moved it to" in rebuilt.stderr, rebuilt.stderr[-2000:]
    _answers(env)


def test_rebuilds_leave_one_vector_graph_on_disk(built, copy_of):
    """chromadb leaves a deleted collection's HNSW folder behind; the index run removes it."""
    env = cli_env(copy_of, built.seed_dir)
    for _ in range(2):
        assert run(["index", "--rebuild"], env).returncode == 0
    graphs = [d for d in (copy_of / "chroma").iterdir() if d.is_dir()]
    assert graphs == [_graph(copy_of)]
    _answers(env)


@pytest.fixture
def tiny_disk(tmp_path):
    """A real disk with 300 KB free, half of what the 13-paper index needs: a 2 MB tmpfs, mostly
    filled (needs root and mount; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    (mount / "filler").write_bytes(bytes(shutil.disk_usage(mount).free - 300 * 1024))
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_says_so_and_does_not_send_to_a_rebuild(built, tiny_disk):
    proc = run(["index"], cli_env(tiny_disk / "rag", built.seed_dir))
    message = assert_error(proc, EXIT["store"], "is full", "free some space")
    assert "--rebuild" not in message


def test_a_store_another_process_holds_locked_is_an_error_after_the_timeout_not_a_hang(built, copy_of):
    """sqlite's write lock (an index run, a backup tool) makes chromadb wait forever; a search by
    Chroma's graph (the page's, the API's) gives up after RAG_CHROMA_TIMEOUT, names the cause, and
    the process exits at once. A one-question command does not open Chroma and answers."""
    import sys
    import time

    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time\n"
                               "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                               "c.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(120)",
                               str(copy_of / "chroma" / "chroma.sqlite3")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        _answers(cli_env(copy_of, built.seed_dir, RAG_CHROMA_TIMEOUT="3"))
        started = time.monotonic()
        proc = run(["search", QUESTION], cli_env(copy_of, built.seed_dir, RAG_CHROMA_TIMEOUT="3",
                                                 RAG_DENSE_SEARCH="hnsw"), timeout=100)
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert_error(proc, EXIT["store"], "did not answer within 3 s", "locked", "RAG_CHROMA_TIMEOUT")
    assert elapsed < 40, elapsed
    _answers(cli_env(copy_of, built.seed_dir))  # released: it answers again
