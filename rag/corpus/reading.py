"""Reading a corpus file, and what a format parser hands back.

Every parser returns a `Parsed`: the good papers plus one `BadEntry` per entry it could not use
(the file, where in it, what is wrong, the fix). A problem with the whole file — unreadable,
not UTF-8, not well-formed — is a `CorpusError` instead: there is nothing to keep from it.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from rag.corpus.paper import Paper
from rag.errors import CorpusError


def shown_name(name: str) -> str:
    """A file name as it can be stored and printed: bytes that are not UTF-8 (a name copied in from
    an old system reaches Python as surrogates no text store accepts) and control characters (a
    newline or terminal escape would forge output lines) escaped, the same way every time."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: f"\\x{ord(m.group()):02x}", text)

# Abstracts files are KB to a few MB; a file over this is almost surely a mistake (a dump, a disk
# image), and it would be read whole into memory.
MAX_FILE_BYTES = 200_000_000


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
    """The file's bytes; a missing, unreadable, non-regular or oversized file is one CorpusError naming it."""
    try:
        _check_file(os.stat(path), shown)  # before opening: opening a FIFO blocks until a writer comes
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CorpusError(shown, 0, "no such file (a broken link?); fix the path or remove the entry") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise CorpusError(shown, 0, "is a symbolic link that loops; point it at a file, or remove it") from None
        raise CorpusError(shown, 0, f"cannot be read ({e.strerror or e}); check its permissions "
                          f"(e.g. `chmod a+r {shown}`)") from None


def _check_file(st: os.stat_result, shown: str) -> None:
    """Only a regular file (a link counts as what it points at): a pipe waits for a writer forever,
    a device like /dev/zero never ends. A file over the size limit is refused before it is read."""
    if stat.S_ISDIR(st.st_mode):
        raise CorpusError(shown, 0, "is a folder, not a file; give the files inside it")
    if not stat.S_ISREG(st.st_mode):
        raise CorpusError(shown, 0, "is not a regular file (a pipe, device or socket); save the papers to "
                          "a file and give that file")
    if st.st_size > MAX_FILE_BYTES:
        raise CorpusError(shown, 0, f"is {_mb(st.st_size)}, over the {_mb(MAX_FILE_BYTES)} limit for one "
                          "file; is it the right file? Split a real export into smaller files")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


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
