"""Which parser reads a file, chosen by its extension."""

from __future__ import annotations

from pathlib import Path

from rag.corpus.reading import Parsed, decode, read_bytes
from rag.errors import CorpusError

KINDS = {".txt": "listing", ".bib": "bibtex", ".xml": "atom", ".atom": "atom", ".jsonl": "jsonl",
         ".ndjson": "jsonl", ".csv": "csv"}
ACCEPTED = sorted(KINDS)


def kind_of(path: Path, shown: str) -> str:
    kind = KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise CorpusError(shown, 0, f"unknown file type {Path(path).suffix or '(no extension)'!r}; add "
                          f"{', '.join(ACCEPTED)} files (a BibTeX export, an arXiv API response, "
                          "JSON Lines or CSV with title and abstract, or a listing page)")
    return kind


def parse_bytes(data: bytes, kind: str, source: str, shown: str) -> Parsed:
    """Papers and bad entries of one file's content; a whole-file problem raises CorpusError."""
    if kind == "atom":
        from rag.corpus.atom import parse_atom

        parsed = parse_atom(data, source, shown)  # XML declares its own encoding
    else:
        parsed = _parse_text(decode(data, shown), kind, source, shown)
    if not parsed.papers and not parsed.bad:
        raise CorpusError(shown, 0, f"no entries found in this {kind} file; is it empty or of another format?")
    return parsed


def _parse_text(text: str, kind: str, source: str, shown: str) -> Parsed:
    if kind == "listing":
        from rag.corpus.listing import parse_text

        return Parsed(shown, parse_text(text, shown, source))
    if kind == "bibtex":
        from rag.corpus.bibtex import parse_bibtex

        return parse_bibtex(text, source, shown)
    from rag.corpus.tabular import parse_csv, parse_jsonl

    return (parse_jsonl if kind == "jsonl" else parse_csv)(text, source, shown)


def parse_path(path: Path, source: str, shown: str) -> tuple[bytes, Parsed]:
    kind = kind_of(path, shown)
    data = read_bytes(path, shown)
    return data, parse_bytes(data, kind, source, shown)
