"""Answering backends that are not what OLLAMA_HOST promises: a web server that is not Ollama,
a server that never answers, one that does not speak HTTP. `auto` falls back with a note;
`--backend ollama` is one line naming the fix (exit 4). Real loopback servers on 127.0.0.1;
the only Ollama is the protocol-faithful fake (tests/ollama_fake.py)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from faultkit import EXIT, QUESTION, assert_error, built, cli_env, raw_server, run, still_answers  # noqa: F401

from ollama_fake import FakeOllama


def _handler(routes: dict):
    """A tiny web server: `routes` maps a path to (status, content type, body); others get 200 HTML,
    like a single-page app or a router's admin page that answers every URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, ctype, body = routes.get(self.path, (200, "text/html", b"<html><body>Welcome</body></html>"))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    return Handler


@contextlib.contextmanager
def web_server(routes: dict | None = None):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(routes or {}))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


NOT_OLLAMA = {  # name -> routes of a web server that is not Ollama
    "catch-all 200 html": {},
    "404 on /api/version": {"/api/version": (404, "text/plain", b"404 page not found")},
    "version json, show html": {"/api/version": (200, "application/json", b'{"version": "1.0"}')},
    "version json, show other json": {"/api/version": (200, "application/json", b'{"version": "1.0"}'),
                                      "/api/show": (200, "application/json", b'{"ok": true}')},
}


@pytest.mark.parametrize("routes", NOT_OLLAMA.values(), ids=NOT_OLLAMA.keys())
def test_auto_falls_back_when_the_server_is_not_ollama(built, routes):
    with web_server(routes) as url:
        proc = run(["ask", QUESTION, "--json"], cli_env(built.data_dir, built.seed_dir, RAG_OLLAMA_HOST=url))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    answer = json.loads(proc.stdout)
    assert answer["backend"] != "ollama"
    assert any("is not Ollama" in n and url in n for n in answer["notes"]), answer["notes"]
    still_answers(built)


def test_backend_ollama_against_a_web_server_names_the_fix(built):
    with web_server() as url:
        proc = run(["ask", QUESTION, "--backend", "ollama"],
                   cli_env(built.data_dir, built.seed_dir, RAG_OLLAMA_HOST=url))
    assert_error(proc, EXIT["backend"], f"the server at {url} is not Ollama", "OLLAMA_HOST", "--backend llamacpp")
    still_answers(built)


def test_backend_ollama_against_a_server_that_does_not_speak_http(built):
    with raw_server(b"SSH-2.0-OpenSSH_9.6\r\n") as port:
        proc = run(["ask", QUESTION, "--backend", "ollama"],
                   cli_env(built.data_dir, built.seed_dir, RAG_OLLAMA_HOST=f"http://127.0.0.1:{port}"))
    assert_error(proc, EXIT["backend"], "is not Ollama", "does not answer in HTTP", "OLLAMA_HOST")
    still_answers(built)


def test_backend_ollama_against_a_server_that_never_answers(built):
    with raw_server(None) as port:
        started = time.monotonic()
        proc = run(["ask", QUESTION, "--backend", "ollama"],
                   cli_env(built.data_dir, built.seed_dir, RAG_OLLAMA_HOST=f"http://127.0.0.1:{port}"), timeout=120)
    assert_error(proc, EXIT["backend"], "not reachable", "timed out")
    assert time.monotonic() - started < 110  # bounded by the probe's timeout, not by ours
    still_answers(built)


def test_auto_still_uses_a_real_ollama(built):
    """The stricter probe must still accept the real protocol (the fake speaks it)."""
    with FakeOllama(reply="Handwritten exams were graded by multimodal models [1].") as fake:
        proc = run(["ask", QUESTION, "--json"], cli_env(built.data_dir, built.seed_dir, RAG_OLLAMA_HOST=fake.url))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["backend"] == "ollama"
    still_answers(built)


def test_backend_ollama_with_the_model_not_pulled(built):
    with FakeOllama(models=["qwen2.5:7b"]) as fake:
        proc = run(["ask", QUESTION, "--backend", "ollama"],
                   cli_env(built.data_dir, built.seed_dir, RAG_OLLAMA_HOST=fake.url))
    assert_error(proc, EXIT["backend"], "ollama pull llama3.2:3b")
    still_answers(built)


def test_auto_with_an_ollama_host_that_is_not_a_url_is_a_setting_error(built):
    """OLLAMA_HOST is shared with other Ollama tools; a malformed one is named, never an InvalidURL traceback."""
    proc = run(["ask", QUESTION], cli_env(built.data_dir, built.seed_dir, RAG_OLLAMA_HOST="",
                                          OLLAMA_HOST="127.0.0.1:11434 x"))
    assert_error(proc, EXIT["input"], "OLLAMA_HOST='127.0.0.1:11434 x'")
    still_answers(built)


def test_backend_ollama_against_a_host_that_trickles_bytes_gives_up_in_seconds(built):
    """A host sending a byte every half second never trips a per-read socket timeout; the probe's
    own deadline must (`--backend auto` runs the same probe before falling back)."""
    with raw_server(b"HTTP/1.1 200 OK\r\nX-Slow: ", trickle=0.5) as port:
        started = time.monotonic()
        proc = run(["ask", QUESTION, "--backend", "ollama"],
                   cli_env(built.data_dir, built.seed_dir, RAG_OLLAMA_HOST=f"http://127.0.0.1:{port}"), timeout=120)
        elapsed = time.monotonic() - started
    assert_error(proc, EXIT["backend"], "not reachable", "no answer within")
    assert elapsed < 60, elapsed
