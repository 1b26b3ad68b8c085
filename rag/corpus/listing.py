"""Parse the scraped "Daily Papers" listing pages into unique `Paper` records.

The seed files come in three layouts:

(a) blocks separated by blank lines: title, abstract, then an optional metadata block
    (organisation line(s) and/or "• N authors", a "·" line, a date with optional upvotes);
(b) the same without metadata blocks;
(c) one line per field with no blank lines, the first title glued to the word "Subscribe".

(a) and (b) are read as blank-line blocks, (c) as single lines; one state machine then reads
title → abstract → optional metadata. Anything that does not fit raises `CorpusError` naming
the file and line: nothing is dropped silently. Papers seen in several files are merged by
normalised title, keeping every source file and the richest metadata (`rag.corpus.merge`);
a title listed with two different abstracts is kept once and its other abstract recorded
as a conflict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date as _date
from pathlib import Path

from rag.corpus.merge import merge_group, merge_papers
from rag.corpus.paper import Paper, paper_id_for, title_key
from rag.corpus.reading import read_text
from rag.errors import CorpusError

__all__ = ["Paper", "load_corpus", "merge", "paper_id_for", "parse_file", "parse_text", "title_key"]

# Page chrome around the listing; none of it is a paper.
CHROME = frozenset({
    "new",
    "Subscribe",
    "Daily Papers",
    "byAK and the research community",
    "Get trending papers in your email inbox!",
    "Get trending papers in your email inbox once a day!",
})
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_DATE = re.compile(r"^(%s) (\d{1,2})(?:, (\d{4}))?(?: (\d+))?$" % "|".join(_MONTHS))
_AUTHORS = re.compile(r"^•\s*(\d+) authors?$")
_DOT = "·"
MAX_TITLE_CHARS = 300  # the longest real title is 139; a longer "title" is an abstract out of place
MIN_ABSTRACT_CHARS = 200  # the shortest real abstract is 643; a shorter one is a title out of place


@dataclass
class _Block:
    line: int  # 1-based line number of the block's first line
    lines: list[str]

    @property
    def text(self) -> str:
        return " ".join(s.strip() for s in self.lines)


def _blocks(text: str) -> list[_Block]:
    lines = text.splitlines()
    if any(not s.strip() for s in lines[:-1]):  # layouts (a) and (b)
        blocks, cur = [], None
        for n, s in enumerate(lines, 1):
            if not s.strip():
                cur = None
            elif cur is None:
                cur = _Block(n, [s])
                blocks.append(cur)
            else:
                cur.lines.append(s)
        return blocks
    out = []  # layout (c): every line is its own block; "SubscribeTitle" is chrome + title
    for n, s in enumerate(lines, 1):
        if s.startswith("Subscribe") and s != "Subscribe":
            s = s[len("Subscribe"):]
        if s.strip():
            out.append(_Block(n, [s]))
    return out


def _is_meta_line(s: str) -> bool:
    s = s.strip()
    return s == _DOT or bool(_AUTHORS.match(s) or _DATE.match(s))


def _parse_date(raw: str, path: str, line: int) -> tuple[str | None, str, int | None]:
    m = _DATE.match(raw.strip())
    if not m:
        raise CorpusError(path, line, f"expected a date like 'Nov 8, 2025 2' after '·', found {raw!r}")
    mon, day, year, votes = m.groups()
    iso = None
    if year:
        try:
            iso = _date(int(year), _MONTHS.index(mon) + 1, int(day)).isoformat()
        except ValueError as e:
            raise CorpusError(path, line, f"{raw!r} is not a real date ({e})") from None
    shown = f"{mon} {day}, {year}" if year else f"{mon} {day}"
    return iso, shown, int(votes) if votes else None


def _parse_meta(block: _Block, path: str) -> dict:
    lines = [s.strip() for s in block.lines]
    if _DOT not in lines or lines.index(_DOT) != len(lines) - 2:
        raise CorpusError(path, block.line, "metadata must end with a '·' line and then a date line")
    org_lines, authors = [], None
    for offset, s in enumerate(lines[:-2]):
        m = _AUTHORS.match(s)
        if m:
            authors = int(m.group(1))
        elif _is_meta_line(s):
            raise CorpusError(path, block.line + offset, f"unexpected {s!r} before the '·' line")
        else:
            org_lines.append(s)
    iso, shown, votes = _parse_date(lines[-1], path, block.line + len(lines) - 1)
    return {"org": " ".join(org_lines) or None, "authors": authors, "date": iso, "date_raw": shown, "upvotes": votes}


def _skip_header(blocks: list[_Block]) -> int:
    i = 0
    while i < len(blocks) and (blocks[i].text in CHROME or _DATE.match(blocks[i].text)):
        i += 1
    return i


def _expect_title(b: _Block, path: str) -> str:
    if len(b.lines) > 1 or _is_meta_line(b.text) or len(b.text) > MAX_TITLE_CHARS:
        raise CorpusError(path, b.line, f"expected a paper title, found {b.text[:60]!r}… "
                          "(a title is one line of at most %d characters, followed by its abstract)" % MAX_TITLE_CHARS)
    return b.text.strip()


def _expect_abstract(b: _Block | None, title: str, path: str, title_line: int) -> str:
    if b is None:
        raise CorpusError(path, title_line, f"title {title!r} has no abstract after it (end of file)")
    if _is_meta_line(b.lines[0]) or len(b.text) < MIN_ABSTRACT_CHARS:
        raise CorpusError(path, b.line, f"expected the abstract of {title!r}, found {b.text[:60]!r} "
                          f"({len(b.text)} characters; an abstract has at least {MIN_ABSTRACT_CHARS})")
    return b.text.strip()


def parse_file(path: Path) -> list[Paper]:
    """Every paper occurrence in one seed file, in listing order (not yet merged)."""
    path = Path(path)
    return parse_text(read_text(path, path.name), path.name)


def parse_text(text: str, name: str, source: str | None = None) -> list[Paper]:
    """The papers of one listing page's text; `name` is shown in errors, `source` recorded (default name)."""
    blocks = _blocks(text)
    i, papers = _skip_header(blocks), []
    while i < len(blocks):
        title = _expect_title(blocks[i], name)
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        abstract = _expect_abstract(nxt, title, name, blocks[i].line)
        i += 2
        meta = {}
        if i < len(blocks) and any(_is_meta_line(s) for s in blocks[i].lines):
            meta = _parse_meta(blocks[i], name)
            i += 1
        papers.append(Paper(paper_id_for(title), title, abstract, sources=(source or name,), **meta))
    if not papers:
        raise CorpusError(name, 1, "no papers found; a seed file lists titles each followed by an abstract")
    return papers


def merge(occurrences: list[Paper]) -> Paper:
    """One paper from its occurrences: every source file, field-wise the richest metadata."""
    return merge_group(occurrences)


def load_corpus(seed_dir: Path) -> list[Paper]:
    """All unique papers under `seed_dir` (*.txt), in order of first appearance."""
    files = sorted(Path(seed_dir).glob("*.txt"))
    if not files:
        raise CorpusError(str(seed_dir), 0, "no *.txt seed files here; copy the corpus in "
                          "(e.g. `cp ../shared/seeds/*.txt seeds/`) or set RAG_SEED_DIR")
    return merge_papers([p for f in files for p in parse_file(f)]).papers
