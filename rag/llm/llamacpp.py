"""The embedded model: llama.cpp in-process through the prebuilt `xllamacpp` wheel.

Why xllamacpp and not llama-cpp-python: the latter ships only an sdist, compiles for ~11 min,
and a native build dies with "Illegal instruction" on Intel AMX machines (GUIDE.md, issue 8).
xllamacpp is a manylinux wheel built for AVX2, with llama.cpp's own server code behind a
Python API: OpenAI-shaped request dicts, streaming through a callback, the model's own GGUF
Jinja chat template. Which GGUF is used comes from rag.llm.models (RAG_LLAMACPP_MODEL, or any
file at RAG_LLAMACPP_MODEL_PATH); before a model is loaded here, rag.llm.probe has run it once
in a child process, so a runtime that crashes on this CPU is reported instead of killing us.

One server per (model, settings) per process, shared; a lock serialises answers because
`usage` belongs to the backend. The server also opens an HTTP port on 127.0.0.1 (its design);
we use it only for /tokenize, and guard it with a random API key so nobody else can.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import secrets
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from rag.errors import BackendError, BackendUnavailable, ContextOverflow
from rag.llm import models as mf
from rag.llm.base import Usage
from rag.settings import Settings

SMALL_STOP = ("\n\n",)  # a 135M model wanders into new paragraphs of invented text; a blank line ends it
SMALL_BYTES = 300 << 20  # a GGUF of another model below this size is treated as a small model
_DONE = object()
_load_lock = threading.Lock()
_loaded: dict[tuple, "LlamaCppBackend"] = {}


def threads(settings: Settings) -> int:
    return settings.llamacpp_threads or max(1, len(os.sched_getaffinity(0)))


def resolve(settings: Settings) -> tuple[Path, mf.ModelSpec | None]:
    """The GGUF to load and its registry entry (None for a file of the user's own)."""
    if settings.llamacpp_model_path:
        path = Path(settings.llamacpp_model_path).expanduser()
        if not path.is_file():
            raise BackendUnavailable(f"RAG_LLAMACPP_MODEL_PATH={path} is not a file; point it at a .gguf file, "
                                     "or unset it to use RAG_LLAMACPP_MODEL")
        sha = mf.file_sha(settings, path)
        return path, next((s for s in mf.MODELS.values() if s.sha256 == sha), None)
    spec = mf.MODELS[settings.llamacpp_model]
    return mf.ensure(spec, settings), spec


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self, server, api_key: str, path: Path, spec: mf.ModelSpec | None, settings: Settings):
        self._server, self._api_key = server, api_key
        self.path = path
        self.model = spec.key if spec else path.name.removesuffix(".gguf")
        self.small = spec.small if spec else path.stat().st_size < SMALL_BYTES
        self.context_window = settings.llamacpp_n_ctx
        self.stop = SMALL_STOP if self.small else ()
        self.repeat_penalty = settings.llamacpp_repeat_penalty if self.small else 1.0
        self.usage = Usage()
        self.timings: dict = {}  # llama.cpp's own prompt/decode timings of the last answer
        self._lock = threading.Lock()
        self._workers: set[tuple[threading.Thread, threading.Event]] = set()

    @classmethod
    def load(cls, settings: Settings, notes: list[str] | None = None) -> "LlamaCppBackend":
        """The configured model, after its child-process test run passed (rag.llm.probe).
        `notes` hears about slow first-use work (a test run, a model load), so a user sees the phases."""
        from rag.llm import probe

        start = time.perf_counter()
        path, spec = resolve(settings)
        if probe.require_ok(path, settings) and notes is not None:
            notes.append(f"tested the embedded runtime with {path.name} in a child process first "
                         f"({time.perf_counter() - start:.1f} s, once per model, runtime and CPU)")
        loaded = len(_loaded)
        start = time.perf_counter()
        backend = cls.open(path, spec, settings)
        if len(_loaded) > loaded and notes is not None:
            notes.append(f"loaded the embedded model {backend.model} in {time.perf_counter() - start:.1f} s")
        return backend

    @classmethod
    def load_auto(cls, settings: Settings, notes: list[str]) -> "LlamaCppBackend | None":
        """For `auto`: the configured model, else None (extractive answers), with a note saying why.
        Not the next smaller model: on dev (evals/reports/models) the 0.5B and 135M models wrote
        sentences the checker could not back (backed 0.66 / 0.21) and abstained on 9 % / 40 % of
        answerable questions, where quoting the abstracts abstains on none, at a higher key-fact recall."""
        try:
            return cls.load(settings, notes)
        except BackendUnavailable as e:
            notes.append(f"embedded model not used: {e}")
            return None

    @classmethod
    def open(cls, path: Path, spec: mf.ModelSpec | None, settings: Settings) -> "LlamaCppBackend":
        """Load in this process (no test run first): once per model and settings."""
        key = (str(path), settings.llamacpp_n_ctx, threads(settings), settings.llamacpp_batch,
               settings.llamacpp_flash_attn, settings.llamacpp_repack)
        with _load_lock:
            if key not in _loaded:
                api_key = secrets.token_hex(16)
                _loaded[key] = cls(_start_server(path, settings, api_key), api_key, path, spec, settings)
            return _loaded[key]

    def count_tokens(self, text: str) -> int:
        return len(self._http("/tokenize", {"content": text, "add_special": False, "parse_special": True})["tokens"])

    def stream(self, messages: list[dict], max_tokens: int, stop: list[str] | None = None) -> Iterator[str]:
        with self._lock:
            self.usage, self.timings = Usage(), {}
            for chunk in self._chunks(self._request(messages, max_tokens, stop, stream=True)):
                self._take_usage(chunk)
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece

    def complete(self, messages: list[dict], max_tokens: int, stop: list[str] | None = None) -> str:
        with self._lock:
            self.usage, self.timings = Usage(), {}
            out = self._server.handle_chat_completions(self._request(messages, max_tokens, stop, stream=False))
            self._raise_for(out)
            self._take_usage(out)
            return out["choices"][0]["message"].get("content") or ""

    def _request(self, messages: list[dict], max_tokens: int, stop, stream: bool) -> dict:
        req = {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0, "seed": 0,
               "repeat_penalty": self.repeat_penalty, "stop": list(self.stop if stop is None else stop),
               "stream": stream, "cache_prompt": True}
        if stream:
            req["stream_options"] = {"include_usage": True}
        return req

    def _chunks(self, request: dict) -> Iterator[dict]:
        """The server's streaming callback, turned into an iterator by a worker thread and a queue.

        Leaving the loop early (the consumer stopped) sets `cancel`: the callback then returns True,
        which tells llama.cpp to stop generating, so the worker ends at the next token.
        """
        chunks: queue.Queue = queue.Queue()
        cancel = threading.Event()

        def on_chunk(chunk: dict) -> bool:
            if cancel.is_set():
                return True
            chunks.put(chunk)
            return False

        def work() -> None:
            try:
                self._server.handle_chat_completions(request, on_chunk)
            except Exception as e:  # noqa: BLE001 - handed to the consumer, raised there
                chunks.put(e)
            finally:
                chunks.put(_DONE)

        worker = (threading.Thread(target=work, name="llamacpp-stream", daemon=True), cancel)
        self._workers.add(worker)
        worker[0].start()
        try:
            while (chunk := chunks.get()) is not _DONE:
                if isinstance(chunk, Exception):
                    raise BackendError(f"the embedded model failed: {type(chunk).__name__}: {chunk}")
                self._raise_for(chunk)
                yield chunk
        finally:
            cancel.set()
            self._workers.discard(worker)

    def _take_usage(self, out: dict) -> None:
        usage = out.get("usage")
        if usage:
            self.usage = Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        self.timings = out.get("timings") or self.timings

    def _raise_for(self, out: dict) -> None:
        err = out.get("error") if isinstance(out.get("error"), dict) else (out if "code" in out and "message" in out else None)
        if not err:
            return
        message = err.get("message", str(err))
        if "context" in message and ("exceed" in message or "size" in message):
            raise ContextOverflow(f"the prompt does not fit the embedded model's window ({message}); raise "
                                  f"RAG_LLAMACPP_N_CTX (now {self.context_window}) or lower RAG_EVIDENCE_TOKENS")
        raise BackendError(f"the embedded model ({self.model}) failed: {message}")

    def _http(self, route: str, body: dict) -> dict:
        req = urllib.request.Request(self._server.listening_address + route, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self._api_key}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def close(self) -> None:
        """Stop unfinished generations, then free the model (the server's destructor joins its loop)."""
        for thread, cancel in list(self._workers):
            cancel.set()
            thread.join(timeout=30)
        self._server = None


def _start_server(path: Path, settings: Settings, api_key: str):
    # The wheel's llama.cpp runs on OpenMP, whose idle workers spin between tokens by default; on a
    # shared 2-core machine that spin takes the core the main thread needs (measured under load:
    # decode 3.5 -> 35 tok/s with PASSIVE, reports/runtime.md). libgomp reads this when it loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import xllamacpp as xlc
    except ImportError as e:
        raise BackendUnavailable(f"the embedded runtime xllamacpp is not installed ({e}); run `make install`") from None
    try:
        server = xlc.Server(_params(xlc, path, settings, api_key))
    except Exception as e:  # noqa: BLE001 - xllamacpp raises a bare RuntimeError for any load failure
        raise BackendUnavailable(f"the embedded runtime could not load {path} ({e}); check the file "
                                 "(`python -m rag doctor`) or point RAG_LLAMACPP_MODEL_PATH at a valid .gguf") from None
    _restore_signal_handlers()
    return server


def _params(xlc, path: Path, settings: Settings, api_key: str):
    p = xlc.CommonParams()
    p.model.path = str(path)
    p.n_ctx = settings.llamacpp_n_ctx
    p.n_parallel = 1  # one answer at a time; the default would split n_ctx over several slots
    p.n_batch = p.n_ubatch = settings.llamacpp_batch
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = threads(settings)
    p.flash_attn_type = (xlc.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_ENABLED if settings.llamacpp_flash_attn
                         else xlc.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    p.fit_params = False  # fits layers to GPU memory; there is none, and it costs load time
    p.warmup = False  # an empty decode at load: only delays the first answer
    p.cache_ram_mib = 512  # host RAM for saved prompt states (default 8 GiB would grow with every new prompt)
    # Repacking copies every Q4_K weight into an interleaved layout at load: measured here it makes
    # the 1.5B model's load slower (1.5 -> 1.0 s without) and its prompt reading slower too (1.2-1.3x).
    # Off, llama.cpp also never picks its AMX buffers, the code path that crashed on Intel AMX CPUs.
    p.no_extra_bufts = not settings.llamacpp_repack
    p.verbosity = -1  # llama.cpp's log would interleave with our streamed answer
    p.api_keys = [api_key]
    return p


def _restore_signal_handlers() -> None:
    """llama.cpp's server installs its own SIGINT/SIGTERM handlers, which would swallow Ctrl-C:
    re-install Python's (only possible from the main thread)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.getsignal(sig))


@atexit.register
def _close_all() -> None:
    """Free models before interpreter teardown, while the threads they use can still be joined."""
    for backend in _loaded.values():
        backend.close()
    _loaded.clear()
