"""The user's library: their own files beside the seed pages, and the corpus of both.

    library/                      RAG_LIBRARY_DIR (gitignored)
      refs.bib  arxiv.xml  …      copies of the added files, as added
      removed.json                papers the user removed (`python -m rag remove`)
      .lock                       held by every add/remove while it reads and rewrites the folder

`add` checks every file completely before anything is copied, and copies each accepted file
atomically (temp file + rename): a file is in the library whole or not at all.
The rule for bad entries: by default a file with any bad entry is rejected whole and every
bad entry is reported (file, line/entry, problem, fix) together with the good papers it
holds; with `skip_bad=True` (`add --skip-bad`) the file is added and its bad entries are left
out (reading a library file always leaves them out, so they never reach the index).
Removing a paper records its keys in removed.json rather than rewriting the user's file;
a file whose papers are all removed is deleted. Adding a file again restores its papers.
Each add and remove holds `.lock` from its first read to its last write, so concurrent ones
run one after another and none loses another's update; readers need no lock (writes are atomic).
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rag.corpus import formats
from rag.corpus.merge import merge_papers
from rag.corpus.paper import LIBRARY_PREFIX, Paper, title_key
from rag.corpus.reading import BadEntry, Parsed, shown_name
from rag.errors import CorpusError, InputError, StoreError

REMOVED = "removed.json"
LOCK = ".lock"  # hidden: library_files() skips it
LOCK_TIMEOUT_S = 120  # an add parses and copies its files under the lock: seconds, even for big files


class LibraryBusyError(StoreError):
    """Another add or remove kept the library's lock past the timeout."""


@dataclass
class Corpus:
    papers: list[Paper]
    bad: list[BadEntry] = field(default_factory=list)  # entries left out of library files
    notes: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> list[str]:
        return [conflict_text(p, c) for p in self.papers for c in p.conflicts]


def conflict_text(p: Paper, c) -> str:
    return (f"{p.title!r} ({p.paper_id}) has a different abstract in {c.other}; kept the one from {c.kept} "
            f"— check which is right and fix or remove the other")


def library_dir(settings) -> Path:
    return Path(settings.library_dir)


def library_files(settings) -> list[Path]:
    d = library_dir(settings)
    if not d.is_dir():
        return []
    return sorted(f for f in d.iterdir() if f.suffix.lower() in formats.KINDS and not f.name.startswith("."))


def source_name(name: str) -> str:
    """How a library file is named as a source (`reading.shown_name`: 'library/caf\\xe9.csv')."""
    return LIBRARY_PREFIX + shown_name(name)


# --- removed papers -------------------------------------------------------------------------------

def removed_papers(settings) -> list[dict]:
    path = library_dir(settings) / REMOVED
    try:
        removed = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    except (OSError, ValueError) as e:
        raise CorpusError(str(path), 0, f"cannot be read ({e}); delete it to un-remove every paper") from None
    if not (isinstance(removed, list) and all(isinstance(r, dict) for r in removed)):
        raise CorpusError(str(path), 0, "is not a list of removed papers ([{\"paper_id\": …, \"title\": …}, …]); "
                          "repair it, or delete it to un-remove every paper")
    return removed


def is_removed(p: Paper, removed: list[dict]) -> bool:
    return any(_same_paper(p, r) for r in removed)


def _same_paper(p: Paper, r: dict) -> bool:
    """The identity `merge` uses: the same arXiv id or DOI; two papers identified differently are
    two papers, whatever their titles ("Attention Is Not Enough" twins); else the same title."""
    ids = ((p.arxiv_id, r.get("arxiv_id")), (p.doi, r.get("doi")))
    if any(a and a == b for a, b in ids):
        return True
    if any(a and b for a, b in ids):
        return False
    return title_key(p.title) == r.get("title_key")


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes it owner-only; a copy reads like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_removed(settings, removed: list[dict]) -> None:
    try:
        write_atomic(library_dir(settings) / REMOVED, json.dumps(removed, indent=1, ensure_ascii=False).encode())
    except OSError as e:
        raise unwritable(library_dir(settings), e, REMOVED) from None


@contextmanager
def locked(settings):
    """Hold the library's lock (waiting for another add/remove to finish) around a read-modify-write."""
    from filelock import FileLock, Timeout

    path = library_dir(settings) / LOCK
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path), timeout=LOCK_TIMEOUT_S)
        lock.acquire()
    except Timeout:
        raise LibraryBusyError(f"another add or remove has held {path} for over {LOCK_TIMEOUT_S} s; wait for it "
                               "to finish, then run this again") from None
    except OSError as e:
        raise unwritable(path.parent, e) from None
    try:
        yield
    finally:
        lock.release()


def unwritable(folder: Path, e: OSError, name: str = "files") -> CorpusError:
    return CorpusError(str(folder), 0, f"cannot write {name} into the library ({e.strerror or e}); make "
                       "RAG_LIBRARY_DIR a writable folder")


# --- reading the corpus ---------------------------------------------------------------------------

def _seed_occurrences(settings) -> list[Paper]:
    from rag.corpus.listing import parse_file

    files = sorted(Path(settings.seed_dir).glob("*.txt"))
    if not files:
        raise CorpusError(str(settings.seed_dir), 0, "no *.txt seed files here; copy the corpus in "
                          "(e.g. `cp ../shared/seeds/*.txt seeds/`) or set RAG_SEED_DIR")
    return [p for f in files for p in parse_file(f)]


def read_library_file(path: Path) -> Parsed:
    name = source_name(path.name)
    return formats.parse_path(path, name, name)[1]


def occurrences(settings) -> tuple[list[Paper], list[BadEntry], list[str]]:
    """Every paper occurrence of seeds + library (removed ones left out), bad entries, notes."""
    occ, bad, notes, removed = _seed_occurrences(settings), [], [], removed_papers(settings)
    for f in library_files(settings):
        parsed = read_library_file(f)
        occ += [p for p in parsed.papers if not is_removed(p, removed)]
        bad += parsed.bad
        notes += parsed.notes
    return occ, bad, notes


def load_report(settings) -> Corpus:
    occ, bad, notes = occurrences(settings)
    return Corpus(merge_papers(occ).papers, bad, notes)


def load_all(settings) -> list[Paper]:
    """The corpus the index covers: every unique paper of the seed pages and the library."""
    return load_report(settings).papers


def select(papers: list[Paper], source: str) -> list[Paper]:
    """`papers --source`: 'seeds', 'library', or one file (its name, or library/<name>)."""
    if source == "seeds":
        return [p for p in papers if p.in_seeds]
    if source == "library":
        return [p for p in papers if p.in_library]
    name = Path(source).name
    found = [p for p in papers if any(s in (source, name, source_name(name)) for s in p.sources)]
    if not found:
        known = sorted({s for p in papers for s in p.sources})
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        raise InputError(f"no paper comes from {source!r}; give --source seeds, --source library or one of "
                         f"the corpus files: {shown}")
    return found
