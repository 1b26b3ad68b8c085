"""Opening the store: a data dir that is a file, a read-only store, a corrupted chroma.sqlite3, a
Chroma server that never answers. One StoreError line (exit 3) saying how to recover; `index
--rebuild` recovers from corruption by moving the broken store aside (kept, byte for byte);
the page starts anyway and shows the error. Real chromadb, real files, real sockets."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from faultkit import (EXIT, EXPECTED, QUESTION, ROOT, assert_error, built, cli_env, raw_server, run,  # noqa: F401
                      still_answers, without_root_override)


def _truncate(db: Path) -> None:
    db.write_bytes(db.read_bytes()[:5000])


def _garbage(db: Path) -> None:
    db.write_bytes(random.Random(0).randbytes(db.stat().st_size))


def _overwrite_pages(db: Path) -> None:  # the header survives: chromadb opens it, then panics in Rust
    data, rng = bytearray(db.read_bytes()), random.Random(1)
    for offset in range(8192, len(data), 16384):
        data[offset:offset + 1024] = rng.randbytes(len(data[offset:offset + 1024]))
    db.write_bytes(bytes(data))


CORRUPTIONS = {"truncated": _truncate, "garbage": _garbage, "pages overwritten": _overwrite_pages}


@pytest.fixture
def copy_of(built, tmp_path):
    """A private copy of the module's index, to damage."""
    shutil.copytree(built.data_dir, tmp_path / "data")
    return tmp_path / "data"


def _corrupt(data: Path, how: str) -> bytes:
    db = data / "chroma" / "chroma.sqlite3"
    CORRUPTIONS[how](db)
    return db.read_bytes()


# --- the data folder itself ------------------------------------------------------------------------

def test_data_dir_that_is_a_file(built, tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("my notes")
    proc = run(["search", QUESTION], cli_env(afile, built.seed_dir))
    assert_error(proc, EXIT["store"], f"RAG_DATA_DIR='{afile}' is not a folder", "point RAG_DATA_DIR at a folder")
    assert afile.read_text() == "my notes"
    still_answers(built)


def test_data_dir_below_a_file(built, tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("my notes")
    proc = run(["index"], cli_env(afile / "rag", built.seed_dir))
    assert_error(proc, EXIT["store"], "is not a folder")
    assert afile.read_text() == "my notes"
    still_answers(built)


# --- a corrupted chroma.sqlite3 --------------------------------------------------------------------

@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize("args", [["search", QUESTION], ["status"], ["index"]], ids=lambda a: a[0])
def test_corrupted_store_says_how_to_recover_and_is_left_alone(built, copy_of, how, args):
    damaged = _corrupt(copy_of, how)
    proc = run(args, cli_env(copy_of, built.seed_dir))
    assert_error(proc, EXIT["store"], "is corrupted", "python -m rag index --rebuild", "kept, not deleted")
    assert "panicked" not in proc.stderr  # chromadb's Rust panic text stays out of the user's terminal
    assert (copy_of / "chroma" / "chroma.sqlite3").read_bytes() == damaged  # nothing was changed or lost
    still_answers(built)


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_rebuild_recovers_and_keeps_the_broken_store(built, copy_of, how):
    damaged = _corrupt(copy_of, how)
    proc = run(["index", "--rebuild"], cli_env(copy_of, built.seed_dir))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    aside = [p for p in copy_of.iterdir() if p.name.startswith("chroma.broken-")]
    assert len(aside) == 1 and str(aside[0]) in proc.stderr  # it says where the broken store went
    assert (aside[0] / "chroma.sqlite3").read_bytes() == damaged  # kept byte for byte
    still_answers(built.with_overrides(data_dir=copy_of))
    proc = run(["index", "--rebuild"], cli_env(copy_of, built.seed_dir))  # a healthy store is not moved
    assert proc.returncode == 0 and "moved it to" not in proc.stderr
    assert len([p for p in copy_of.iterdir() if p.name.startswith("chroma.broken-")]) == 1


def test_api_and_page_on_a_corrupted_store(built, copy_of):
    """The API raises StoreCorrupted; the page's status shows it with the way out; its Re-index
    button (rebuild ticked) recovers like the CLI."""
    import warnings

    import rag
    from ui.app import ChatPage

    _corrupt(copy_of, "garbage")
    settings = built.with_overrides(data_dir=copy_of)
    with pytest.raises(rag.StoreCorrupted, match="--rebuild"):
        rag.search(QUESTION, settings=settings)
    page = ChatPage(settings)
    assert "is corrupted" in page.status() and "Rebuild from scratch" in page.status()
    page.build()  # the page lays itself out on a broken store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status, report = page.reindex(True, progress=lambda *a, **k: None)
    assert "moved it to" in report and "<dt>Papers</dt><dd>13</dd>" in status, report
    still_answers(settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_page_starts_on_a_corrupted_store_and_shows_the_error(built, copy_of):
    _corrupt(copy_of, "truncated")
    port = _free_port()
    env = cli_env(copy_of, built.seed_dir, RAG_UI_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "ui"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        page, deadline = None, time.monotonic() + 150
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5).read().decode()
            time.sleep(0.5)
        assert page is not None, f"the page did not start (exit {proc.poll()})"
        assert "is corrupted" in page and "--rebuild" in page  # the status panel carries the error
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "starting the page anyway" in out and "Traceback" not in out, out[-3000:]
    still_answers(built)


# --- a read-only store ------------------------------------------------------------------------------

@pytest.fixture
def read_only(copy_of):
    for path in [copy_of, *copy_of.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    yield copy_of
    for path in [copy_of, *copy_of.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


@pytest.mark.parametrize("args", [["search", QUESTION], ["index", "--rebuild"]], ids=lambda a: " ".join(a[:2]))
def test_read_only_store_names_the_fix_and_moves_nothing(built, read_only, args):
    """Chroma must write even to read: what opens it (an index run; a search by its graph, as the
    page and the API do) names the fix."""
    before = sorted(p.name for p in read_only.iterdir())
    proc = run(args, cli_env(read_only, built.seed_dir, RAG_DENSE_SEARCH="hnsw"), prefix=without_root_override())
    assert_error(proc, EXIT["store"], "is read-only", "chmod -R u+w", "RAG_DATA_DIR")
    assert sorted(p.name for p in read_only.iterdir()) == before
    still_answers(built)


def test_one_question_commands_answer_from_a_read_only_store(built, read_only):
    """`rag search` / `rag ask` (RAG_DENSE_SEARCH=auto) scan the index's own files and never open
    Chroma, so a read-only copy of an index answers, and nothing in it changes."""
    before = {p: p.read_bytes() for p in read_only.rglob("*") if p.is_file()}
    proc = run(["search", QUESTION, "-k", "1"], cli_env(read_only, built.seed_dir), prefix=without_root_override())
    assert proc.returncode == 0 and EXPECTED in proc.stdout, proc.stderr[-2000:]
    asked = run(["ask", QUESTION + "?", "--backend", "extractive"], cli_env(read_only, built.seed_dir),
                prefix=without_root_override())
    assert asked.returncode == 0 and EXPECTED in asked.stdout, asked.stderr[-2000:]
    assert {p: p.read_bytes() for p in read_only.rglob("*") if p.is_file()} == before


def test_read_only_empty_data_dir(built, tmp_path):
    empty = tmp_path / "ro"
    empty.mkdir(mode=0o555)
    proc = run(["index"], cli_env(empty, built.seed_dir), prefix=without_root_override())
    empty.chmod(0o755)
    assert_error(proc, EXIT["store"], "is read-only", "RAG_DATA_DIR")
    still_answers(built)


# --- a Chroma server that is not one, or never answers -----------------------------------------------

def test_chroma_server_that_never_answers_times_out(built, tmp_path):
    with raw_server(None) as port:
        started = time.monotonic()
        proc = run(["search", QUESTION], cli_env(tmp_path, built.seed_dir, RAG_CHROMA_HOST="127.0.0.1",
                                                 RAG_CHROMA_PORT=str(port), RAG_CHROMA_TIMEOUT="1"), timeout=120)
        elapsed = time.monotonic() - started
    assert_error(proc, EXIT["store"], f"127.0.0.1:{port} did not answer within 1 s", "RAG_CHROMA_TIMEOUT")
    assert elapsed < 100
    still_answers(built)


def test_chroma_host_that_is_a_plain_web_server(built, tmp_path):
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        proc = run(["status"], cli_env(tmp_path, built.seed_dir, RAG_CHROMA_HOST="127.0.0.1",
                                       RAG_CHROMA_PORT=str(server.server_address[1])))
    finally:
        server.shutdown()
        server.server_close()
    assert_error(proc, EXIT["store"], "is not a Chroma 1.x server", "HTTP 404")
    still_answers(built)


def test_chroma_server_that_answers_the_heartbeat_then_hangs(built, tmp_path):
    """chromadb's client makes requests while it is built, with no timeout: bounded too."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class HeartbeatOnly(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/api/v2/heartbeat":
                release.wait(120)  # hangs like a wedged server
                return
            body = b'{"nanosecond heartbeat": 1}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), HeartbeatOnly)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        proc = run(["search", QUESTION], cli_env(tmp_path, built.seed_dir, RAG_CHROMA_HOST="127.0.0.1",
                                                 RAG_CHROMA_PORT=str(server.server_address[1]),
                                                 RAG_CHROMA_TIMEOUT="2"), timeout=120)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert_error(proc, EXIT["store"], "did not answer within 2 s")
    still_answers(built)
