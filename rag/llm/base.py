"""The small interface every answering backend implements, and how `auto` picks one.

    backend.stream(messages, max_tokens) -> iterator of text pieces
    backend.complete(messages, max_tokens) -> the whole text (non-streaming request)
    afterwards backend.usage holds (prompt_tokens, completion_tokens) as the engine counted them.

Backends: `ollama` (rag.llm.ollama, llama-index's Ollama LLM over the official client),
`llamacpp` (rag.llm.llamacpp, in-process llama.cpp through xllamacpp; the model is chosen in
rag.llm.models) and `extractive` (no LLM at all; handled by rag.answer). Each module is imported
only when chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

from rag.errors import InputError
from rag.settings import Settings

BACKENDS = ("auto", "ollama", "llamacpp", "extractive")


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ChatBackend(Protocol):
    name: str
    model: str
    context_window: int
    small: bool  # a tiny model: gets a simpler prompt without the refusal instruction
    usage: Usage

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: list[dict], max_tokens: int) -> Iterator[str]: ...

    def complete(self, messages: list[dict], max_tokens: int) -> str: ...


def get_backend(name: str, settings: Settings, notes: list[str]) -> ChatBackend | None:
    """The backend to answer with; None means extractive. `notes` collects why auto chose."""
    if name not in BACKENDS:
        raise InputError(f"backend {name!r} is unknown; choose one of {', '.join(BACKENDS)}")
    if name == "extractive":
        return None
    if name == "ollama":
        from rag.llm.ollama import OllamaBackend

        return OllamaBackend.connect(settings)
    if name == "llamacpp":
        from rag.llm.llamacpp import LlamaCppBackend

        return LlamaCppBackend.load(settings, notes)
    return _auto(settings, notes)


def _auto(settings: Settings, notes: list[str]) -> ChatBackend | None:
    from rag.llm.ollama import probe

    problem = probe(settings)
    if problem is None:
        from rag.llm.ollama import OllamaBackend

        return OllamaBackend.connect(settings)
    notes.append(f"Ollama not used: {problem}")
    from rag.llm.llamacpp import LlamaCppBackend

    return LlamaCppBackend.load_auto(settings, notes)  # falls back to smaller models, then extractive
