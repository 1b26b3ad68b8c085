"""A loopback fake of the Ollama server, for tests that cannot install the real one.

``FakeOllama`` speaks Ollama's real REST API (the part the RAG backend uses) on 127.0.0.1,
so the unmodified ``ollama`` client and llama-index's ``Ollama`` LLM can be pointed at it.
Every JSON body is built from the ``ollama`` client's own pydantic types (``ChatResponse``,
``Message``, ``ListResponse``, ``ShowResponse``) dumped with ``model_dump(mode="json",
exclude_none=True, by_alias=True)``, so the wire format is exactly what the client parses.
HTTP/1.1 with keep-alive; streamed chats are chunked NDJSON, as real Ollama sends them.

Endpoints: ``GET|HEAD /`` ("Ollama is running"), ``GET /api/version``, ``GET /api/tags``,
``POST /api/show`` (``{"model": ...}``; older clients send ``"name"``) and ``POST /api/chat``
(``"stream"`` defaults to true, as in Ollama); any other path gets Gin's plain-text 404.

Behaviour comes from constructor keywords, also plain attributes tests may change between
requests: ``models``, ``reply`` (text, or a callable taking the request JSON),
``prompt_eval_count`` (None: chars/4 + 10, capped at ``options.num_ctx`` as Ollama truncates;
an int: reported as is), ``fail_status``/``fail_message``, ``delay``, ``chunk_delay``,
``finish`` (False: a streamed chat ends cleanly without its final ``done`` line, as a server
stopped mid-answer does), ``stream_error`` (a message sent as an ``{"error": …}`` line after the
first piece of a streamed chat, as Ollama does when its runner dies mid-answer), ``context_length`` (/api/show's "llama.context_length"), ``version`` and ``embedding_dim`` (length of
the ``/api/embed`` vectors: 64 by default, 384 to match Ollama's all-minilm).

    with FakeOllama(reply="Hi [1].") as fake:
        ollama.Client(host=fake.url).chat(model="llama3.2:3b", messages=[...])
        assert fake.chat_requests[0]["options"]["num_ctx"] == 8192
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import ollama
from ollama._types import ModelDetails

DEFAULT_REPLY = "The paper examined over 2,000 benchmarks [1]."
_MODIFIED = datetime(2025, 1, 1, tzinfo=timezone.utc)
_DETAILS = ModelDetails(parent_model="", format="gguf", family="llama", families=["llama"],
                        parameter_size="3.2B", quantization_level="Q4_K_M")
_TEMPLATE = "{{ range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>{{ .Content }}"
_PARAMETERS = 'stop                           "<|eot_id|>"'


def not_found_message(model: str) -> str:
    """The 404 error text for a model that has not been pulled."""
    return f"model '{model}' not found, try pulling it first"


def _canonical(name: str) -> str:  # Ollama treats "llama3.2" as "llama3.2:latest"
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _dump(obj: Any) -> dict:  # by_alias: ShowResponse.modelinfo is "model_info" on the wire
    return obj.model_dump(mode="json", exclude_none=True, by_alias=True)


def word_vector(text: str, dim: int = 64) -> list[float]:
    """A deterministic stand-in embedding: each word adds weight to a hashed slot, so texts that
    share words are close and texts that do not are far (a constant vector would make ranking
    tests meaningless)."""
    vec = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % dim] += 1.0
    norm = sum(v * v for v in vec) ** 0.5 or 1.0
    return [v / norm for v in vec]


def split_reply(text: str) -> list[str]:
    """Word-sized stream pieces (each keeps its trailing whitespace); they join back to text."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p]


class FakeOllama:
    """A fake Ollama server on a free loopback port, running in a daemon thread."""

    def __init__(self, *, models: list[str] | None = None,
                 reply: str | Callable[[dict], str] = DEFAULT_REPLY,
                 prompt_eval_count: int | None = None, fail_status: int | None = None,
                 fail_message: str = "llama runner process has terminated: exit status 2",
                 delay: float = 0.0, chunk_delay: float = 0.0, context_length: int = 8192,
                 version: str = "0.12.0", embedding_dim: int = 64, finish: bool = True,
                 stream_error: str | None = None) -> None:
        self.models = list(models) if models is not None else ["llama3.2:3b"]
        self.reply, self.prompt_eval_count = reply, prompt_eval_count
        self.fail_status, self.fail_message = fail_status, fail_message
        self.delay, self.chunk_delay = delay, chunk_delay
        self.context_length, self.version = context_length, version
        self.embedding_dim, self.finish, self.stream_error = embedding_dim, finish, stream_error
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, JSON body or None)
        self._stop, self._lock = threading.Event(), threading.Lock()
        self._conns: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="FakeOllama", daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeOllama:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, wake sleeping handlers and drop open (keep-alive) connections."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    @property
    def chat_requests(self) -> list[dict]:
        """JSON bodies of the /api/chat requests received, oldest first."""
        return [body for _, path, body in self.requests if path == "/api/chat"]

    # --- response bodies, all built from the ollama client's own types -------------
    def has_model(self, name: str) -> bool:
        return _canonical(name) in {_canonical(m) for m in self.models}

    def tags(self) -> dict:
        items = [ollama.ListResponse.Model(
            model=m, modified_at=_MODIFIED, digest=hashlib.sha256(m.encode()).hexdigest(),
            size=2_019_393_189, details=_DETAILS) for m in self.models]
        body = _dump(ollama.ListResponse(models=items))
        for item in body["models"]:  # real Ollama also sends "name" (older clients read it)
            item["name"] = item["model"]
        return body

    def show(self) -> dict:
        return _dump(ollama.ShowResponse(
            modified_at=_MODIFIED, template=_TEMPLATE, parameters=_PARAMETERS, license="LLAMA 3.2",
            details=_DETAILS, capabilities=["completion", "tools"],
            model_info={"general.architecture": "llama", "general.parameter_count": 3212749888,
                        "llama.context_length": self.context_length,
                        "llama.embedding_length": 3072}))

    def stats(self, request: dict, text: str) -> dict:
        """The timing/count fields Ollama puts on the final (done) chat response."""
        count = self.prompt_eval_count
        if count is None:
            chars = sum(len(str(m.get("content") or "")) for m in request.get("messages") or [])
            count = chars // 4 + 10
            num_ctx = (request.get("options") or {}).get("num_ctx")
            if isinstance(num_ctx, int) and num_ctx > 0:
                count = min(count, num_ctx)
        evals = max(1, len(text) // 4)
        load, prompt_ns, eval_ns = 12_000_000, count * 250_000, evals * 20_000_000
        return dict(total_duration=load + prompt_ns + eval_ns + 1_000_000, load_duration=load,
                    prompt_eval_count=count, prompt_eval_duration=prompt_ns,
                    eval_count=evals, eval_duration=eval_ns)

    def chat_chunk(self, model: str, content: str, **final: Any) -> dict:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return _dump(ollama.ChatResponse(model=model, created_at=now, done=bool(final),
                                         message=ollama.Message(role="assistant", content=content),
                                         **final))


class _Server(ThreadingHTTPServer):
    daemon_threads, block_on_close = True, False  # close() wakes handlers, never waits on them
    fake: FakeOllama

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up are expected; stay quiet


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as Go's net/http (real Ollama) sets by default. Without it the body, written
    # after the headers, waits for the client's delayed ACK: ~40 ms on every response.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:  # track the socket so close() can drop it; ignore gone clients
        fake = self.server.fake
        with fake._lock:
            fake._conns.add(self.connection)
        try:
            with contextlib.suppress(OSError):
                if not fake._stop.is_set():  # accepted just as close() ran: drop it
                    super().handle()
        finally:
            with fake._lock:
                fake._conns.discard(self.connection)

    def _send(self, status: int, body: bytes, ctype: str, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

    def _write_line(self, obj: dict) -> None:  # one NDJSON line as one HTTP chunk
        data = json.dumps(obj).encode() + b"\n"
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _route(self, method: str, body: Any) -> None:
        fake = self.server.fake
        fake.requests.append((method, self.path, body))
        if method in ("GET", "HEAD") and self.path == "/":
            head = method == "HEAD"
            return self._send(200, b"Ollama is running", "text/plain; charset=utf-8", head)
        if method == "GET" and self.path == "/api/version":
            return self._json(200, {"version": fake.version})
        if method == "GET" and self.path == "/api/tags":
            return self._json(200, fake.tags())
        if method == "POST" and self.path in ("/api/show", "/api/chat", "/api/embed"):
            if not isinstance(body, dict):
                return self._json(400, {"error": "missing request body"})
            name = body.get("model") or body.get("name") or ""
            if not name:
                return self._json(400, {"error": "model is required"})
            if not fake.has_model(name):
                return self._json(404, {"error": not_found_message(name)})
            if self.path == "/api/show":
                return self._json(200, fake.show())
            if self.path == "/api/embed":
                return self._embed(body, name)
            return self._chat(body, name)
        self._send(404, b"404 page not found", "text/plain")

    def do_HEAD(self) -> None:
        self._route("HEAD", None)

    def do_GET(self) -> None:
        self._route("GET", None)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None  # answered 400 "missing request body" by _route
        self._route("POST", body)

    # --- /api/embed ----------------------------------------------------------------
    def _embed(self, request: dict, model: str) -> None:
        texts = request.get("input") or []
        texts = [texts] if isinstance(texts, str) else list(texts)
        reply = ollama.EmbedResponse(model=model, embeddings=[word_vector(t, self.server.fake.embedding_dim) for t in texts],
                                     prompt_eval_count=sum(len(t.split()) for t in texts))
        self._json(200, _dump(reply))

    # --- /api/chat -----------------------------------------------------------------
    def _chat(self, request: dict, model: str) -> None:
        fake = self.server.fake
        if fake.delay and fake._stop.wait(fake.delay):
            self.close_connection = True  # closed while "thinking": hang up, answer nothing
            return
        if fake.fail_status:
            return self._json(fake.fail_status, {"error": fake.fail_message})
        text = fake.reply(request) if callable(fake.reply) else fake.reply
        final = dict(done_reason="stop", **fake.stats(request, text))
        if request.get("stream", True) is False:
            return self._json(200, fake.chat_chunk(model, text, **final))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in split_reply(text):
            self._write_line(fake.chat_chunk(model, piece))
            if fake.stream_error:  # no done line follows an error
                self._write_line({"error": fake.stream_error})
                self.wfile.write(b"0\r\n\r\n")
                return
            if fake.chunk_delay and fake._stop.wait(fake.chunk_delay):
                self.close_connection = True  # closed mid-stream: cut the response short
                return
        if fake.finish:
            self._write_line(fake.chat_chunk(model, "", **final))
        self.wfile.write(b"0\r\n\r\n")
