"""Sentence splitting and token-bounded chunking.

Token counts use tiktoken's cl100k_base, loaded from the copy llama-index ships
(`llama_index/core/_static/tiktoken_cache`): tiktoken alone would download it. We locate that
folder without importing llama_index.core, whose import costs seconds.

Chunks are windows of whole sentences, each at most `chunk_tokens` tokens including the
title line, overlapping by a sentence or two. A sentence longer than a window is cut at word
boundaries, so no text is ever dropped. MiniLM reads at most 256 word pieces: a window over
that (URLs, formulas) is halved until it fits, and the embedder checks the bound again and
refuses rather than truncating. A title over 64 tokens is cut in the chunks' title line only.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from rag.corpus.listing import Paper
from rag.errors import SettingsError

# A sentence ends at . ! ? followed by space and an upper-case letter, digit or bracket, except
# after common abbreviations, which would otherwise split "e.g. GPT-4" into two sentences.
_ABBREV = r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bet al\.)(?<!\bvs\.)(?<!\bFig\.)(?<!\bEq\.)(?<!\bcf\.)"
_SENT_END = re.compile(r"(?<=[.!?])" + _ABBREV + r"\s+(?=[A-Z0-9(\[\"'“])")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_END.split(text.strip()) if s.strip()]


def _tiktoken_cache_dir() -> str | None:
    spec = importlib.util.find_spec("llama_index.core")
    if not spec or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "_static" / "tiktoken_cache"
    return str(path) if path.is_dir() else None


@lru_cache(maxsize=1)
def encoding():
    """cl100k_base from the bundled cache; never downloads."""
    cache = _tiktoken_cache_dir()
    if cache:
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", cache)
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


@dataclass(frozen=True)
class Chunk:
    chunk_id: str  # "<paper_id>:<n>", deterministic so re-indexing can compare and replace
    paper_id: str
    index: int
    text: str  # the abstract's sentences in this window

    def embed_text(self, title: str) -> str:
        return f"{chunk_title(title)}\n{self.text}"


TITLE_TOKENS = 64  # a chunk's title line at most: real titles are far shorter (the seeds' longest: 41)


def chunk_title(title: str) -> str:
    """The title as each chunk carries it: whole, unless it alone would fill a chunk (a 290-
    character CJK title is 657 tokens), then cut at TITLE_TOKENS with "…"; the paper keeps it whole."""
    if count_tokens(title) <= TITLE_TOKENS:
        return title
    n = len(title)
    while count_tokens(title[:n]) > TITLE_TOKENS - 1:  # by characters: a cut token list may split one
        n = n * 9 // 10
    return title[:n].rstrip() + "…"


def _split_long(sentence: str, budget: int) -> list[str]:
    """Cut one over-long sentence at word boundaries into pieces within `budget` tokens."""
    pieces, cur = [], []
    for word in sentence.split():
        if cur and count_tokens(" ".join(cur + [word])) > budget:
            pieces.append(" ".join(cur))
            cur = []
        cur.append(word)
    return pieces + [" ".join(cur)] if cur else pieces


def _windows(sentences: list[str], budget: int, overlap: int) -> list[list[str]]:
    sizes = [count_tokens(s) + 1 for s in sentences]
    windows, start = [], 0
    while start < len(sentences):
        end, used = start, 0
        while end < len(sentences) and (end == start or used + sizes[end] <= budget):
            used += sizes[end]
            end += 1
        windows.append(sentences[start:end])
        if end >= len(sentences):
            break
        nxt = max(end - overlap, start + 1)  # always advance, even with a large overlap
        # overlap only when the repeated sentences leave room for the next new one
        start = nxt if sum(sizes[nxt:end + 1]) <= budget else end
    return windows


def chunk_paper(paper: Paper, chunk_tokens: int, overlap_sentences: int,
                fits: Callable[[list[str]], list[bool]] | None = None) -> list[Chunk]:
    """`fits(embed texts)`: does the embedder take each whole? A window of few tokens can still
    exceed MiniLM's 256 word pieces (an abstract listing a dozen URLs: 277); such a window is
    halved until its parts fit, so one odd paper never stops an index run."""
    title_tokens = count_tokens(chunk_title(paper.title))
    budget = chunk_tokens - title_tokens - 1
    if budget < 20:
        raise SettingsError(f"RAG_CHUNK_TOKENS={chunk_tokens} leaves no room for text after the {title_tokens}-token "
                            f"title of {paper.title[:60]!r} ({paper.paper_id}); raise it to at least {title_tokens + 21}")
    sentences = []
    for s in split_sentences(paper.abstract):
        sentences.extend(_split_long(s, budget) if count_tokens(s) > budget else [s])
    windows = _windows(sentences, budget, overlap_sentences)
    if fits is not None:
        title = chunk_title(paper.title)
        one = lambda text: fits([f"{title}\n{text}"])[0]  # noqa: E731
        ok = fits([f"{title}\n{' '.join(w)}" for w in windows])  # one batch: ~0.3 ms a window
        windows = [part for w, good in zip(windows, ok) for part in ([w] if good else _fitted(w, one))]
    return [Chunk(f"{paper.paper_id}:{i}", paper.paper_id, i, " ".join(w)) for i, w in enumerate(windows)]


def _fitted(window: list[str], fits: Callable[[str], bool]) -> list[list[str]]:
    """The window, or its halves (by sentences, else by words), each fitted again."""
    if fits(" ".join(window)):
        return [window]
    words = window if len(window) > 1 else window[0].split()
    if len(words) < 2:
        return [window]  # one unbreakable word: the embedder names it
    half = len(words) // 2
    parts = (words[:half], words[half:]) if len(window) > 1 else ([" ".join(words[:half])], [" ".join(words[half:])])
    return [p for part in parts for p in _fitted(part, fits)]
