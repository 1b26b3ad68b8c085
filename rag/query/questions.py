"""What a question must be before anything is retrieved for it: text, not empty, not over
MAX_QUESTION_CHARS, no control characters or undecodable bytes, at least one word.

Shared by `ask` (rag.answer.pipeline) and the CLI's `search`; each failure is an InputError
that says what is wrong and what to type instead.
"""

from __future__ import annotations

import unicodedata

from rag.errors import InputError

MAX_QUESTION_CHARS = 1000


def check_question(question, what: str = "the question") -> str:
    """A usable question, stripped, or InputError naming what is wrong with it. Length is capped
    in characters (a question, not a document); one longer than the embedder's 256 word pieces
    is still answered (the embedder keeps its end; BM25 reads all of it)."""
    if question is not None and not isinstance(question, str):
        raise InputError(f"{what} must be text, not {type(question).__name__}; pass a string")
    if not question or not question.strip():
        raise InputError(f"{what} is empty; type a question about the papers")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"{what} is {len(question)} characters; keep it under {MAX_QUESTION_CHARS}")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in question):
        raise InputError(f"{what} contains control characters (e.g. NUL); remove them")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"{what} contains bytes that are not valid text ({question[e.start:e.end]!r} at "
                         f"position {e.start}); re-type it, or use a UTF-8 terminal (LANG=C.UTF-8)") from None
    if not any(ch.isalnum() for ch in question):
        raise InputError(f"{what} has no words ({question.strip()[:20]!r}); ask about something in the papers")
    return question.strip()


def check_history(history) -> list[str]:
    """Earlier questions, each checked like a question; a single string is one earlier turn."""
    if history is None:
        return []
    if isinstance(history, str):
        history = [history]
    if not isinstance(history, (list, tuple)):
        raise InputError(f"history must be a list of earlier questions, not {type(history).__name__}")
    turns = [h.get("question", "") if isinstance(h, dict) else h for h in history]
    return [check_question(t, f"history item {i + 1}") for i, t in enumerate(turns) if t is not None and str(t).strip()]
