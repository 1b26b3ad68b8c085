"""JSON Lines (`.jsonl`) and CSV (`.csv`) files, read with the standard library's json and csv.

Each line / row is one paper with at least `title` and `abstract`. Other known columns become
metadata (`COLUMNS`: authors, date/year/published, doi, arxiv_id/eprint, url, venue,
organisation, categories); names are matched case-insensitively, so a spreadsheet's "Title" or
"Publication Date" works. Unknown columns are listed in the notes, not fatal. The CSV
delimiter (`,` `;` or tab) is detected from the header line, as spreadsheets differ.
"""

from __future__ import annotations

import csv
import io
import json

from rag.corpus.fields import EntryProblem, build_paper
from rag.corpus.reading import BadEntry, Parsed
from rag.errors import CorpusError

COLUMNS = {
    "title": "title", "abstract": "abstract", "summary": "abstract",
    "authors": "authors", "author": "authors", "author_names": "authors",
    "date": "date", "published": "date", "publication_date": "date", "year": "date", "month": "month",
    "doi": "doi", "arxiv_id": "arxiv_id", "arxiv": "arxiv_id", "eprint": "arxiv_id", "arxivid": "arxiv_id",
    "url": "url", "link": "url", "venue": "venue", "journal": "venue", "booktitle": "venue",
    "organisation": "org", "organization": "org", "org": "org", "affiliation": "org",
    "categories": "categories", "category": "categories", "primary_category": "categories",
}


def _key(name) -> str:
    return "_".join(str(name or "").strip().lower().replace("-", " ").split())


def _mapped(record: dict) -> tuple[dict, set[str]]:
    """(fields under our names, the record's unknown column names)."""
    fields, unknown = {}, set()
    for name, value in record.items():
        ours = COLUMNS.get(_key(name))
        if ours is None:
            unknown.add(str(name))
        elif value not in (None, "") and not fields.get(ours):  # "date" wins over a later "year"
            fields[ours] = value
    return fields, unknown


def _add(out: Parsed, record: dict, where: str, kind: str, source: str, unknown: set[str]) -> None:
    fields, extra = _mapped(record)
    unknown |= extra
    try:
        out.papers.append(build_paper(fields, kind, source))
    except EntryProblem as e:
        out.bad.append(BadEntry(out.file, where, str(fields.get("title", ""))[:60], e.problem, e.fix))


def _note_unknown(out: Parsed, unknown: set[str]) -> None:
    if unknown:
        out.notes.append(f"{out.file}: ignored columns {', '.join(sorted(unknown))} (not paper metadata "
                         "this assistant uses)")


def parse_jsonl(text: str, source: str, shown: str) -> Parsed:
    out, unknown = Parsed(shown), set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            out.bad.append(BadEntry(shown, f"line {n}", "", f"not valid JSON ({e.msg}, column {e.colno})",
                                    "write one JSON object per line"))
            continue
        if not isinstance(record, dict):
            out.bad.append(BadEntry(shown, f"line {n}", "", f"a JSON {type(record).__name__}, not an object",
                                    'write {"title": "...", "abstract": "..."} on each line'))
            continue
        _add(out, record, f"line {n}", "jsonl", source, unknown)
    _note_unknown(out, unknown)
    return out


def _delimiter(text: str) -> str:
    """The delimiter, sniffed from the header row. Only the delimiter: the header rarely holds a
    quote, so the sniffer cannot see how quotes are escaped and guesses "not doubled", which
    breaks every Excel or RFC 4180 cell holding `""` (quotes are read as Excel writes them)."""
    header = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _check_header(names: list[str] | None, shown: str) -> None:
    ours = {COLUMNS.get(_key(n)) for n in names or []}
    for need in ("title", "abstract"):
        if need not in ours:
            raise CorpusError(shown, 1, f"no {need!r} column (the header reads {', '.join(names or []) or 'nothing'}); "
                              "the first row must name the columns, with at least title and abstract")


def parse_csv(text: str, source: str, shown: str) -> Parsed:
    out, unknown = Parsed(shown), set()
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=csv.excel, delimiter=_delimiter(text))
    try:
        _check_header(reader.fieldnames, shown)
        for record in reader:
            where = f"line {reader.line_num}"
            if None in record:  # more cells than the header has names
                out.bad.append(BadEntry(shown, where, str(record.get("title", ""))[:60], "more cells than columns",
                                        "quote cells that contain the delimiter"))
                continue
            _add(out, record, where, "csv", source, unknown)
    except csv.Error as e:
        raise CorpusError(shown, reader.line_num, f"not readable as CSV ({e}); save it again as CSV (UTF-8)") from None
    _note_unknown(out, unknown)
    return out
