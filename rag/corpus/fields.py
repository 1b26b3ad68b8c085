"""Turn one entry's fields (from BibTeX, Atom, JSONL or CSV) into a checked `Paper`.

Each format maps its own names onto the keys below; this module normalises the values the
same way for all of them (arXiv ids without version, DOIs without resolver, ISO dates) and
raises `EntryProblem` — what is wrong and the fix — for an entry that cannot be a paper.
"""

from __future__ import annotations

import re
from datetime import date as _date

from rag.corpus.paper import Paper, paper_id_for

MAX_TITLE_CHARS = 300  # as for the listing pages: a longer "title" is an abstract out of place
MIN_ABSTRACT_CHARS = 50  # a shorter "abstract" is a placeholder or a misplaced field
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_ARXIV_NEW = re.compile(r"^\d{4}\.\d{4,5}$")
_ARXIV_OLD = re.compile(r"^[a-z][a-z.-]*(?:\.[A-Z]{2})?/\d{7}$", re.I)
_ARXIV_PREFIX = re.compile(r"^(?:arxiv:|https?://(?:export\.|www\.)?arxiv\.org/(?:abs|pdf)/)", re.I)
_DOI_PREFIX = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)", re.I)
_ISO = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?(?:[T ].*)?$")


class EntryProblem(ValueError):
    def __init__(self, problem: str, fix: str):
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}; {fix}")


def clean(value) -> str:
    """One line of text: whitespace runs (line breaks in a .bib or XML) become single spaces."""
    return " ".join(str(value).split()) if value is not None else ""


def bare_id(value) -> str:
    """An id without its 'arXiv:' / 'doi:' prefix or arxiv.org / doi.org address."""
    return _DOI_PREFIX.sub("", _ARXIV_PREFIX.sub("", clean(value)))


def arxiv_id(value) -> str | None:
    v = _ARXIV_PREFIX.sub("", clean(value))
    v = re.sub(r"(?:v\d+)?(?:\.pdf)?$", "", v)
    if not v:
        return None
    if not (_ARXIV_NEW.match(v) or _ARXIV_OLD.match(v)):
        raise EntryProblem(f"{clean(value)!r} is not an arXiv id", "write it like 2310.01234 or hep-th/9901001")
    return v


def doi(value) -> str | None:
    v = _DOI_PREFIX.sub("", clean(value))
    if not v:
        return None
    if not re.match(r"^10\.\d{4,9}/\S+$", v):
        raise EntryProblem(f"{clean(value)!r} is not a DOI", "write it like 10.1000/xyz123 (or leave it out)")
    return v.lower()  # DOIs are case-insensitive


def url(value) -> str | None:
    v = clean(value)
    if not v:
        return None
    if not re.match(r"^https?://\S+$", v):
        raise EntryProblem(f"url {v!r} is not an http(s) address", "give a full http:// or https:// address")
    return v


def names(value) -> tuple[str, ...]:
    """Author names from a list, or from 'A and B' (BibTeX) / 'A; B' / 'A, B' when no name has a comma."""
    if isinstance(value, (list, tuple)):
        return tuple(n for n in (clean(x) for x in value) if n)
    text = clean(value)
    if not text:
        return ()
    for sep in (r"\s+and\s+", r"\s*;\s*"):
        parts = re.split(sep, text)
        if len(parts) > 1:
            return tuple(p for p in parts if p)
    return tuple(p.strip() for p in text.split(",") if p.strip())


def dated(value, month=None) -> dict:
    """{'date', 'date_raw', 'year'} from '2023-10-02', '2023-10-02T17:59:01Z', '2023-10' or '2023'."""
    raw = clean(value)
    if not raw:
        return {}
    m = _ISO.match(raw)
    if not m:
        raise EntryProblem(f"date {raw!r} is not a date", "write it as YYYY-MM-DD, YYYY-MM or YYYY")
    year, mon, day = int(m[1]), m[2] or _month(month), m[3]
    if not 1800 <= year <= 2100:
        raise EntryProblem(f"year {year} is out of range", "give the year of publication (1800-2100)")
    try:
        iso = _date(year, int(mon), int(day)).isoformat() if mon and day else None
        shown = f"{_MONTHS[int(mon) - 1].title()} {int(day)}, {year}" if iso else (
            f"{_MONTHS[int(mon) - 1].title()} {year}" if mon else str(year))
    except (ValueError, IndexError):
        raise EntryProblem(f"{raw!r} is not a real date", "fix the month or day") from None
    return {"date": iso, "date_raw": shown, "year": year}


def _month(month) -> str | None:
    m = clean(month).lower()[:3]
    if m.isdigit():
        return m
    return str(_MONTHS.index(m) + 1) if m in _MONTHS else None


# fields that hold one value; a JSON object or list there would be stored as its Python repr
_SCALAR = ("title", "abstract", "date", "year", "month", "doi", "arxiv_id", "url", "venue", "org")


def build_paper(fields: dict, kind: str, source: str) -> Paper:
    """A checked Paper from normalised-name fields: title, abstract (required), authors,
    date/year/month, doi, arxiv_id, url, venue, org, categories."""
    for key in _SCALAR:
        if isinstance(fields.get(key), (dict, list, tuple)):
            kind_of = "an object" if isinstance(fields[key], dict) else "a list"
            raise EntryProblem(f"the {key} is {kind_of}, not text", f'give it as a string: "{key}": "…"')
    title, abstract = clean(fields.get("title")), clean(fields.get("abstract"))
    if not title:
        raise EntryProblem("no title", "give every entry a title")
    if len(title) > MAX_TITLE_CHARS:
        raise EntryProblem(f"the title has {len(title)} characters", f"a title has at most {MAX_TITLE_CHARS}; "
                           "is the abstract in the title field?")
    if not abstract:
        raise EntryProblem("no abstract", "add the abstract (the assistant answers from abstracts only)")
    if len(abstract) < MIN_ABSTRACT_CHARS:
        raise EntryProblem(f"the abstract has only {len(abstract)} characters",
                           f"give the full abstract (at least {MIN_ABSTRACT_CHARS} characters)")
    who = names(fields.get("authors"))
    when = dated(fields.get("date") or fields.get("year"), fields.get("month"))
    cats = fields.get("categories") or ()
    cats = tuple(c for c in (clean(x) for x in (cats if isinstance(cats, (list, tuple)) else re.split(r"[;,\s]+", clean(cats)))) if c)
    return Paper(paper_id_for(title), title, abstract, org=clean(fields.get("org")) or None,
                 authors=len(who) or None, sources=(source,), arxiv_id=arxiv_id(fields.get("arxiv_id")),
                 doi=doi(fields.get("doi")), venue=clean(fields.get("venue")) or None, url=url(fields.get("url")),
                 author_names=who, categories=cats, kind=kind, **when)
