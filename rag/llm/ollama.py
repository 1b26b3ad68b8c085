"""Ollama, through llama-index's `Ollama` LLM (which uses the official `ollama` client).

`probe` checks reachability and that the model is pulled with two tiny stdlib HTTP calls, so
`--backend auto` on a machine without Ollama falls back in milliseconds without importing the
client libraries. The context window (`num_ctx`) and the request timeout are always set
explicitly: Ollama's default window silently truncates long prompts, and llama-index's 30 s
timeout is too short on CPU. After each answer, Ollama's own `prompt_eval_count` is compared
with the window: a prompt Ollama cut short is an error, not an answer.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Iterator

from rag.deadline import within
from rag.index.chunking import count_tokens
from rag.errors import BackendError, BackendUnavailable, ContextOverflow
from rag.llm.base import Usage
from rag.settings import Settings

PROBE_TIMEOUT = 2.0


def _not_reachable(host: str, why: object) -> str:
    if "SSL" in str(why) and host.startswith("https://"):  # https:// to a plain-HTTP port (Ollama's default)
        return (f"Ollama at {host} does not speak HTTPS ({why}); use http:// in OLLAMA_HOST, as `ollama serve` "
                "listens on plain HTTP")
    return f"Ollama is not reachable at {host} ({why}) — start it with `ollama serve`, or use --backend llamacpp"


def _not_pulled(model: str, host: str) -> str:
    return f"model {model!r} is not pulled on the Ollama server at {host} — run `ollama pull {model}`"


def _not_ollama(host: str, why: str) -> str:
    return (f"the server at {host} is not Ollama ({why}) — point OLLAMA_HOST at an Ollama server "
            "(`ollama serve` listens on http://127.0.0.1:11434), or use --backend llamacpp")


def _fetch(url: str, body: dict | None = None):
    """GET (or POST `body`) and parse the JSON reply; None when the reply is not JSON. Reads at
    most 1 MB: whatever answers at OLLAMA_HOST may be any web server."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})

    def read() -> bytes:
        with urllib.request.urlopen(req, timeout=PROBE_TIMEOUT) as response:
            return response.read(1 << 20)

    # the socket timeout is per read: a host trickling bytes would hold `--backend auto` forever
    raw = within(read, 2 * PROBE_TIMEOUT, "ollama-probe")
    try:
        return json.loads(raw)
    except ValueError:
        return None


# Everything urllib can raise for a host that is down or slow. A server that answers but not in
# HTTP raises http.client.HTTPException (BadStatusLine…), which is not an OSError.
_UNREACHABLE = (urllib.error.URLError, OSError, ValueError)


def probe(settings: Settings) -> str | None:
    """None when the server at OLLAMA_HOST speaks Ollama's API and has the model; otherwise the
    problem and its fix. Any web server answers HTTP 200 somewhere, so the replies are checked:
    /api/version must be JSON with a "version", /api/show must describe the model."""
    host, model = settings.ollama_host, settings.ollama_model
    try:
        version = _fetch(f"{host}/api/version")
    except urllib.error.HTTPError as e:
        return _not_ollama(host, f"HTTP {e.code} on /api/version")
    except http.client.HTTPException as e:
        return _not_ollama(host, f"it does not answer in HTTP: {type(e).__name__}")
    except _UNREACHABLE as e:
        return _not_reachable(host, getattr(e, "reason", e))
    if not isinstance(version, dict) or not isinstance(version.get("version"), str):
        return _not_ollama(host, "/api/version did not answer with Ollama's JSON")
    try:
        shown = _fetch(f"{host}/api/show", {"model": model})
    except urllib.error.HTTPError as e:
        return _not_pulled(model, host) if e.code == 404 else f"Ollama at {host} answered HTTP {e.code} to /api/show"
    except http.client.HTTPException as e:
        return _not_ollama(host, f"it does not answer in HTTP: {type(e).__name__}")
    except _UNREACHABLE as e:
        return _not_reachable(host, getattr(e, "reason", e))
    if not isinstance(shown, dict) or not {"details", "model_info", "modelfile", "template"} & set(shown):
        return _not_ollama(host, "/api/show did not describe the model")
    return None


class OllamaBackend:
    name = "ollama"
    small = False

    def __init__(self, settings: Settings):
        from llama_index.llms.ollama import Ollama

        self.settings = settings
        self.model = settings.ollama_model
        self.context_window = settings.ollama_num_ctx
        self.usage = Usage()
        self._llm = Ollama(model=settings.ollama_model, base_url=settings.ollama_host, temperature=0.0,
                           request_timeout=settings.ollama_timeout, context_window=settings.ollama_num_ctx,
                           additional_kwargs={"num_predict": settings.max_answer_tokens, "seed": 0})

    @classmethod
    def connect(cls, settings: Settings) -> "OllamaBackend":
        problem = probe(settings)
        if problem:
            raise BackendUnavailable(problem)
        return cls(settings)

    def count_tokens(self, text: str) -> int:
        return count_tokens(text)  # cl100k estimate; the guard below tolerates tokenizer differences

    def _prepare(self, messages: list[dict], max_tokens: int) -> tuple[list, int]:
        from llama_index.core.llms import ChatMessage

        sent = sum(self.count_tokens(m["content"]) for m in messages)
        if sent + max_tokens > self.context_window:
            raise ContextOverflow(f"the prompt (~{sent} tokens) plus {max_tokens} answer tokens exceeds "
                                  f"num_ctx={self.context_window}; raise RAG_OLLAMA_NUM_CTX or lower RAG_OLLAMA_EVIDENCE_TOKENS")
        self._llm.additional_kwargs["num_predict"] = max_tokens
        self.usage = Usage()
        return [ChatMessage(role=m["role"], content=m["content"]) for m in messages], sent

    def stream(self, messages: list[dict], max_tokens: int) -> Iterator[str]:
        chat, sent = self._prepare(messages, max_tokens)
        last = None
        try:
            for last in self._llm.stream_chat(chat):
                if last.delta:
                    yield last.delta
        except Exception as e:  # noqa: BLE001 - mapped to errors that name the fix
            raise self._explain(e) from None
        self._finish(last.raw if last is not None else None, sent, max_tokens, streamed=True)

    def complete(self, messages: list[dict], max_tokens: int) -> str:
        chat, sent = self._prepare(messages, max_tokens)
        try:
            response = self._llm.chat(chat)
        except Exception as e:  # noqa: BLE001
            raise self._explain(e) from None
        self._finish(response.raw, sent, max_tokens)
        return response.message.content or ""

    def _finish(self, raw, sent: int, max_tokens: int, streamed: bool = False) -> None:
        raw = dict(raw or {})
        if streamed and raw.get("done") is not True:  # the connection closed cleanly, mid-answer
            raise BackendError(f"Ollama at {self.settings.ollama_host} stopped before its answer was done; ask again, "
                               "and check `ollama serve`'s log if it keeps happening")
        cached = raw.get("prompt_eval_cached_count") or 0
        counted = raw.get("prompt_eval_count")
        self.usage = Usage(None if counted is None else counted + cached, raw.get("eval_count"))
        self._guard(sent, max_tokens)

    def _guard(self, sent: int, max_tokens: int) -> None:
        """Ollama cuts a prompt that does not fit num_ctx and says nothing; its prompt count then
        fills the window. (A count far below what was sent is a cached prefix: Ollama before
        0.30.2 counted only the tokens it evaluated anew, ollama/ollama#16428.)"""
        got = self.usage.prompt_tokens
        if got is not None and got + max_tokens > self.context_window:
            raise ContextOverflow(f"Ollama counted {got} prompt tokens (~{sent} by our estimate), which with "
                                  f"{max_tokens} for the answer do not fit num_ctx={self.context_window}: it cut the "
                                  "prompt; raise RAG_OLLAMA_NUM_CTX or lower RAG_OLLAMA_EVIDENCE_TOKENS")

    def _explain(self, e: Exception) -> BackendError:
        import httpx
        import ollama

        host, model = self.settings.ollama_host, self.model
        if isinstance(e, ollama.ResponseError):
            if e.status_code == 404:
                return BackendUnavailable(_not_pulled(model, host))
            if e.status_code == -1:  # the client's mark for an {"error"} line inside a 200 stream
                return BackendError(f"Ollama at {host} failed mid-answer: {e.error}; check `ollama serve`'s log, "
                                    "or use --backend llamacpp")
            return BackendError(f"Ollama at {host} failed with HTTP {e.status_code}: {e.error}; "
                                "check `ollama serve`'s log, or use --backend llamacpp")
        if isinstance(e, httpx.TimeoutException):
            return BackendError(f"Ollama at {host} did not answer within {self.settings.ollama_timeout:g} s; "
                                "raise RAG_OLLAMA_TIMEOUT or use a smaller model")
        if isinstance(e, (httpx.ConnectError, ConnectionError)):
            return BackendUnavailable(_not_reachable(host, e))
        return BackendError(f"Ollama at {host} failed: {type(e).__name__}: {e}")
