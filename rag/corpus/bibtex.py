"""BibTeX (`.bib`) exports from reference managers, read with `bibtexparser` (v2).

An entry becomes a paper when it has a title and an `abstract` field; authors, year/month,
venue (journal, booktitle), doi, eprint (arXiv), url, institution and keywords are kept.
LaTeX accents are decoded (`M{\\"u}ller` -> Müller). Entries bibtexparser cannot read, and
entries without an abstract, come back as `BadEntry`s naming their key and line.
"""

from __future__ import annotations

import logging
import re

from rag.corpus.fields import EntryProblem, build_paper
from rag.corpus.reading import BadEntry, Parsed

_FIX_SYNTAX = "fix the entry's braces/quotes and commas (or remove it)"


def _escape_percent():
    """A middleware that escapes bare `%` in field values before LaTeX decoding.

    BibTeX does not treat `%` inside a field as a comment, but the LaTeX decoder does and drops
    the rest of the field: "a score of 35.80%. Furthermore…" would lose every later sentence
    of an abstract copied from arXiv. Escaped, it decodes back to a plain "%"."""
    from bibtexparser.middlewares.middleware import BlockMiddleware

    class EscapePercent(BlockMiddleware):
        def transform_entry(self, entry, library):
            for f in entry.fields:
                if isinstance(f.value, str):
                    f.value = re.sub(r"(?<!\\)%", r"\\%", f.value)
            return entry

    return EscapePercent()


# What pylatexenc would change in a value besides dropping braces: macros, math, ties, dashes,
# TeX quotes, special characters. A value without any of these is decoded by dropping its braces.
_LATEX = re.compile(r"[\\$~&#^_`]|--|''")
_SPACE = re.compile(r"\s+")
_CONTROL_WORD_END = re.compile(r"\\[A-Za-z]*$")  # "\ss", "\LaTeX" or "\": eats the space after it


def _words(value: str) -> list[str]:
    """`value` cut at whitespace outside braces and math, the whitespace kept as its own pieces;
    a control word stays joined to what follows (`Stra\\ss e` is one piece). Hand-written,
    because no LaTeX library offers a cut that keeps each piece decodable on its own."""
    pieces, depth, math, start, i = [], 0, False, 0, 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            i += 2
            continue
        depth += (c == "{") - (c == "}" and depth > 0)
        if c == "$":
            math, i = not math, i + value.startswith("$$", i)  # $$ opens or closes display math once
        elif c.isspace() and not depth and not math:
            end = _SPACE.match(value, i).end()
            if not _CONTROL_WORD_END.search(value[start:i]):
                pieces += [value[start:i], value[i:end]]
                start = end
            i = end
            continue
        i += 1
    return pieces + [value[start:]] if not math else [value]  # an unpaired $: pylatexenc reads it whole


def _latex_decoding():
    """bibtexparser's LaTeX decoding, given only the words that need it.

    pylatexenc reads a value character by character (~6 ms for an abstract, 65 s for a
    5,000-entry export, paid on every `add` and `papers`). Most words of an abstract hold no LaTeX
    beyond braces that protect capitals ({GSM8K}); those just lose their braces, and the others
    go to pylatexenc one word at a time (5 s for the same export). Compared with decoding whole
    values on 3,000 LaTeX-laden strings, the text is the same up to whitespace, which `clean`
    folds anyway (`tests/test_library.py`); a value pylatexenc cannot decode word by word is
    decoded whole, so its errors are as before."""
    from bibtexparser.middlewares import LatexDecodingMiddleware

    class Decoding(LatexDecodingMiddleware):
        def _transform_python_value_string(self, python_string: str) -> tuple[str, str]:
            out = []
            for word in _words(python_string):
                plain = word.replace("\\%", "%")  # bare % was escaped for pylatexenc (_escape_percent)
                text, error = (plain.replace("{", "").replace("}", ""), "") if not _LATEX.search(plain) \
                    else super()._transform_python_value_string(word)
                if error:
                    return super()._transform_python_value_string(python_string)
                out.append(text)
            return "".join(out), ""

    return Decoding()


def _parse_library(text: str):
    import bibtexparser
    from bibtexparser import middlewares as mw

    logging.getLogger("bibtexparser").setLevel(logging.ERROR)  # its failures come back to us as blocks
    return bibtexparser.parse_string(text, append_middleware=[_escape_percent(), _latex_decoding(),
                                                              mw.SeparateCoAuthors(), mw.SplitNameParts()])


def _name(parts) -> str:
    return " ".join(parts.first + parts.von + parts.last + parts.jr) if hasattr(parts, "first") else str(parts)


_USED = ("title", "abstract", "journal", "journaltitle", "booktitle", "institution", "organization", "school")
_CONCATENATION = re.compile(r'#\s*["{]|["}]\s*#|^\w+\s*#')  # absA # "and …": BibTeX's string joining


def _field(entry, key: str):
    """A field's value by case-insensitive name (BibTeX ignores case), or None."""
    return next((v.value for k, v in entry.fields_dict.items() if k.lower() == key), None)


def _fields(entry) -> dict:
    f = {k.lower(): v.value for k, v in entry.fields_dict.items()}
    enclosed = {k for k, how in (entry.parser_metadata.get("removed_enclosing") or {}).items() if how in "{\""}
    for field in entry.fields:  # bibtexparser resolves a lone @string name but not a # join: stored raw
        key = field.key.lower()
        if key in _USED and field.key not in enclosed and isinstance(field.value, str) \
                and _CONCATENATION.search(field.value):
            raise EntryProblem(f"the {key} joins parts with # (BibTeX string concatenation), which is not read",
                               f"write the {key} out as one {{…}} value")

    prefix = str(f.get("archiveprefix", "arxiv")).strip().lower()
    return {"title": f.get("title"), "abstract": f.get("abstract"),
            "authors": [_name(a) for a in f.get("author", [])] if isinstance(f.get("author"), list) else f.get("author"),
            "date": f.get("date") or f.get("year"), "month": f.get("month"),
            "venue": f.get("journal") or f.get("journaltitle") or f.get("booktitle"),
            "doi": f.get("doi"), "arxiv_id": f.get("eprint") if prefix == "arxiv" else None,
            "url": f.get("url"), "org": f.get("institution") or f.get("organization") or f.get("school"),
            "categories": f.get("primaryclass")}


def _key(block) -> str:
    entry = getattr(block, "ignore_error_block", None)
    if entry is not None:
        return getattr(entry, "key", "")
    head = (block.raw or "").split(",", 1)[0]  # "@article{broken2020"
    return head.split("{", 1)[1].strip() if "{" in head else ""


def _problem(block) -> str:
    """bibtexparser's own reason when it gives one (duplicate key…), else what an aborted block means."""
    text = str(getattr(block, "error", "") or "").strip()
    if text:
        return text.splitlines()[0]
    return "the entry is not closed (a missing } or \") before the next @entry or the end of the file"


def _fix(block) -> str:
    """Duplicates are not syntax errors: two entries share a key, or one entry repeats a field."""
    from bibtexparser.model import DuplicateBlockKeyBlock, DuplicateFieldKeyBlock

    if isinstance(block, DuplicateBlockKeyBlock):
        return "give one of the entries sharing this key another key (or remove the duplicate)"
    if isinstance(block, DuplicateFieldKeyBlock):
        return "keep one of the entry's repeated fields"
    return _FIX_SYNTAX


def parse_bibtex(text: str, source: str, shown: str) -> Parsed:
    lib, out = _parse_library(text), Parsed(shown)
    for block in lib.failed_blocks:
        out.bad.append(BadEntry(shown, f"line {(block.start_line or 0) + 1}", _key(block), _problem(block), _fix(block)))
    parents = {str(_field(e, "crossref")).strip().lower() for e in lib.entries if _field(e, "crossref")}
    children = [e.key for e in lib.entries if _field(e, "crossref")]
    if children:
        out.notes.append(f"{shown}: {len(children)} entries ({', '.join(children[:3])}…) name a crossref, which is "
                         "not read: their year and venue come from their own fields only")
    for entry in lib.entries:
        if entry.key.lower() in parents and not _field(entry, "abstract"):
            continue  # a proceedings or book other entries point to, not a paper
        try:
            out.papers.append(build_paper(_fields(entry), "bibtex", source))
        except EntryProblem as e:
            out.bad.append(BadEntry(shown, f"line {entry.start_line + 1}", entry.key, e.problem, e.fix))
    out.bad.sort(key=lambda b: int(b.where.split()[-1]))
    return out
