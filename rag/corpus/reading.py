"""Reading a corpus file, and what a format parser hands back.

Every parser returns a `Parsed`: the good papers plus one `BadEntry` per entry it could not use
(the file, where in it, what is wrong, the fix). A problem with the whole file — unreadable,
not UTF-8, not well-formed — is a `CorpusError` instead: there is nothing to keep from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag.corpus.paper import Paper
from rag.errors import CorpusError


@dataclass(frozen=True)
class BadEntry:
    file: str
    where: str  # "line 12", "row 5", "entry 3"
    label: str  # the entry's key or title, as far as it could be read
    problem: str
    fix: str

    def __str__(self) -> str:
        label = f" ({self.label})" if self.label else ""
        return f"{self.file}: {self.where}{label}: {self.problem}; {self.fix}"


@dataclass
class Parsed:
    file: str
    papers: list[Paper] = field(default_factory=list)
    bad: list[BadEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # harmless things the user may want to know


def read_bytes(path: Path, shown: str) -> bytes:
    """The file's bytes; a missing, unreadable or non-regular file is one CorpusError naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CorpusError(shown, 0, "no such file (a broken link?); fix the path or remove the entry") from None
    except IsADirectoryError:
        raise CorpusError(shown, 0, "is a folder, not a file; give the files inside it") from None
    except OSError as e:
        raise CorpusError(shown, 0, f"cannot be read ({e.strerror or e}); check its permissions "
                          f"(e.g. `chmod a+r {shown}`)") from None


def decode(data: bytes, shown: str) -> str:
    """UTF-8 text; a leading byte-order mark (Windows editors, Excel) is dropped, not kept as text."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise CorpusError(shown, line, f"not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); "
                          "re-save the file as UTF-8") from None


def read_text(path: Path, shown: str) -> str:
    return decode(read_bytes(path, shown), shown)
