"""`add` and `remove`: change what the user's library holds (see `rag.corpus.library` for the rules).

Both only change files; the caller re-indexes (the CLI and the page do), and the index's
per-paper content hashes make that incremental.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.corpus import formats, library
from rag.corpus.fields import EntryProblem, arxiv_id, bare_id, doi
from rag.corpus.merge import merge_papers
from rag.corpus.paper import Paper, title_key
from rag.corpus.reading import Parsed, read_bytes
from rag.errors import CorpusError, InputError

PREVIOUS = ".previous"  # in the library: the copy a same-named file replaced (hidden: never read)


@dataclass
class FileResult:
    file: str  # as given
    status: str = "rejected"  # added | replaced | unchanged | rejected
    stored_as: str | None = None  # library/<name>
    papers: int = 0  # good papers in the file
    new: list[str] = field(default_factory=list)  # titles not in the corpus before
    merged: list[str] = field(default_factory=list)  # titles that were already there: sources joined
    restored: list[str] = field(default_factory=list)  # titles removed earlier, back now
    conflicts: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)  # one line per bad entry: file, where, problem, fix
    notes: list[str] = field(default_factory=list)
    reason: str = ""  # why rejected or unchanged
    previous: str | None = None  # replaced: where the library's earlier copy of this name is kept
    dropped: list[str] = field(default_factory=list)  # replaced: titles only the earlier copy listed


@dataclass
class AddReport:
    files: list[FileResult]

    @property
    def changed(self) -> bool:
        return any(f.status in ("added", "replaced") or f.restored for f in self.files)

    @property
    def rejected(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "rejected"]

    @property
    def to_index(self) -> bool:
        """Should an index run follow? Whenever a file is in the library now, changed or not: an
        earlier add may have copied it and then been refused the index (another run held it). An
        index run with nothing new is a quick no-op."""
        return len(self.rejected) < len(self.files)

    def to_dict(self) -> dict:
        return {"files": [asdict(f) for f in self.files], "changed": self.changed}


@dataclass
class _Checked:
    result: FileResult
    name: str
    data: bytes = b""
    parsed: Parsed | None = None
    copy: bool = False  # accepted and not in the library yet


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(path: Path, skip_bad: bool, taken: dict[str, str], stored: dict[str, str]) -> _Checked:
    """Parse one file completely and decide: copy it, it is already there, or reject it (and why)."""
    res, name = FileResult(str(path)), Path(path).name
    try:
        data, parsed = formats.parse_path(Path(path), library.source_name(name), str(path))
    except CorpusError as e:
        res.reason = str(e)
        return _Checked(res, name)
    res.papers, res.bad, res.notes = len(parsed.papers), [str(b) for b in parsed.bad], parsed.notes
    out, digest = _Checked(res, name, data, parsed), _sha(data)
    if name.startswith("."):
        res.reason = "a file name starting with '.' is hidden in the library; rename the file"
    elif digest in stored:
        res.status, res.stored_as = "unchanged", library.source_name(stored[digest])
        res.reason = f"already in the library as {res.stored_as}"  # not indexed, maybe: the caller re-indexes
    elif name in taken and taken[name] == digest:
        res.status, res.reason = "unchanged", "the same file is listed twice; added once"
    elif name in taken:
        res.reason = f"another file named {name} is in this batch; rename one of them"
    elif parsed.bad and not skip_bad:
        n = len(parsed.bad)
        res.reason = (f"{n} bad entr{'y' if n == 1 else 'ies'} (below) and {res.papers} good; fix them and add "
                      "the file again, or add it with --skip-bad to leave the bad ones out")
    elif not parsed.papers:
        res.reason = "no usable papers in this file (every entry is bad)"
    else:
        taken[name], out.copy = digest, True
    return out


def _report_merge(cands: list[_Checked], settings) -> None:
    """Fill new/merged/conflicts of each accepted file by merging it with the corpus as it will be."""
    replaced = {library.source_name(c.name) for c in cands}
    occ, _, _ = library.occurrences(settings)
    before = {p.paper_id for p in merge_papers(occ).papers}
    kept = [p for p in occ if not set(p.sources) & replaced]
    owners = [(c, p) for c in cands for p in c.parsed.papers]
    merged, seen = merge_papers(kept + [p for _, p in owners]), set()
    for i, (c, _) in enumerate(owners, len(kept)):
        g = merged.group_of[i]
        paper, src = merged.papers[g], library.source_name(c.name)
        if paper.paper_id not in before and g not in seen:
            c.result.new.append(paper.title)
        elif g in seen or set(paper.sources) - {src}:
            c.result.merged.append(paper.title)
        seen.add(g)
    for c in cands:
        src = library.source_name(c.name)
        c.result.conflicts = [library.conflict_text(p, x) for p in merged.papers for x in p.conflicts
                              if src in (x.kept, x.other)]


def _restore(files: list[_Checked], settings) -> None:
    """Papers removed earlier come back when a file holding them is added again."""
    removed = before = library.removed_papers(settings)
    for c in files:
        back = [p for p in c.parsed.papers if library.is_removed(p, removed)]
        c.result.restored = [p.title for p in back]
        removed = [r for r in removed if not any(library.is_removed(p, [r]) for p in back)]
    if removed != before:
        library.save_removed(settings, removed)


def _keep_previous(c: _Checked, lib: Path) -> None:
    """A different file of the same name replaces the library's copy (an edited export is the
    usual case), but the earlier copy may be the only one left: keep it in
    library/.previous/<when>/ (hidden, so not read) and name the papers the new file no longer lists."""
    old = lib / c.name
    keep = lib / PREVIOUS / time.strftime("%Y%m%d-%H%M%S") / c.name  # every earlier copy, newest last
    for n in range(2, 1000):  # two replacements within a second
        if not keep.exists():
            break
        keep = keep.parent.with_name(f"{keep.parent.name.split('.')[0]}.{n}") / c.name
    library.write_atomic(keep, old.read_bytes())
    c.result.previous = str(keep)
    try:
        before = formats.parse_path(old, library.source_name(c.name), str(old))[1].papers
    except CorpusError:
        before = []  # an unreadable earlier copy lists nothing that could be dropped
    now = {title_key(p.title) for p in c.parsed.papers}
    c.result.dropped = [p.title for p in before if title_key(p.title) not in now]
    gone = (f"; {len(c.result.dropped)} papers it listed are not in the new one and leave the corpus unless "
            f"another file lists them: {'; '.join(c.result.dropped[:5])}{' …' if len(c.result.dropped) > 5 else ''}"
            if c.result.dropped else "")
    c.result.notes.append(f"replaced the library's earlier {c.name}; that copy is kept as {keep}{gone} "
                          "(to undo, add that copy again)")


def add_files(paths: list[str | Path], settings, *, skip_bad: bool = False) -> AddReport:
    """Check every file, then copy the accepted ones into the library. Does not re-index."""
    with library.locked(settings):
        return _add_locked(paths, settings, skip_bad)


def _add_locked(paths: list[str | Path], settings, skip_bad: bool) -> AddReport:
    lib = library.library_dir(settings)
    stored = {_sha(read_bytes(f, library.source_name(f.name))): f.name for f in library.library_files(settings)}
    taken: dict[str, str] = {}
    checked = [_check(Path(p), skip_bad, taken, stored) for p in paths]
    cands = [c for c in checked if c.copy]
    if cands:
        _report_merge(cands, settings)
    for c in cands:  # each file whole or not at all; a failure leaves the earlier ones added
        existed = (lib / c.name).exists()
        try:
            if existed:
                _keep_previous(c, lib)
            library.write_atomic(lib / c.name, c.data)
        except OSError as e:
            raise library.unwritable(lib, e, c.name) from None
        c.result.status, c.result.stored_as = ("replaced" if existed else "added"), library.source_name(c.name)
    _restore([c for c in checked if c.result.status != "rejected"], settings)
    return AddReport([c.result for c in checked])


# --- remove -------------------------------------------------------------------------------------

@dataclass
class RemoveResult:
    paper_id: str
    title: str
    files: list[str]  # library files that listed it
    deleted: list[str]  # library files deleted because nothing in them is left


def _matches(p: Paper, keys: set[str]) -> bool:
    return bool({p.paper_id, p.arxiv_id, p.doi} & keys)


def _keys(ident: str) -> set[str]:
    """The forms an id may take: as given, lower-cased, and normalised as an arXiv id or a DOI."""
    ident = ident.strip()
    if not bare_id(ident):  # "" or a bare "https://doi.org/" would match a paper that has no DOI
        raise InputError(f"empty id {ident!r}; give a paper id, an arXiv id (2310.01234) or a DOI (10.1000/xyz) — "
                         "list yours with `python -m rag papers --source library`")
    keys = {ident, ident.lower()}
    for norm in (arxiv_id, doi):
        try:
            keys.add(norm(ident))
        except EntryProblem:
            pass
    return keys - {None}


def find_paper(papers: list[Paper], ident: str) -> Paper:
    keys = _keys(ident)
    found = [p for p in papers if _matches(p, keys)]
    if not found:
        raise InputError(f"no paper has the id, arXiv id or DOI {ident!r}; list yours with "
                         "`python -m rag papers --source library`")
    return found[0]


def remove_paper(ident: str, settings) -> RemoveResult:
    """Take one added paper out of the corpus (by paper id, arXiv id or DOI). Does not re-index."""
    _keys(ident)  # an empty id fails before the lock (which creates the library folder)
    with library.locked(settings):
        return _remove_locked(ident, settings)


def _remove_locked(ident: str, settings) -> RemoveResult:
    paper = find_paper(library.load_all(settings), ident)
    if paper.in_seeds:
        seeds = ", ".join(s for s in paper.sources if not s.startswith(library.LIBRARY_PREFIX))
        added = [s for s in paper.sources if s.startswith(library.LIBRARY_PREFIX)]
        also = (f"; your {', '.join(added)} lists it too, and removing it from there changes nothing while "
                "the seed page lists it" if added else "")
        raise InputError(f"{paper.title!r} ({paper.paper_id}) is a seed paper (listed in {seeds}); only papers "
                         f"you added can be removed — seed papers come from RAG_SEED_DIR{also}")
    removed = library.removed_papers(settings) + [{"paper_id": paper.paper_id, "title": paper.title,
                                              "title_key": title_key(paper.title), "arxiv_id": paper.arxiv_id,
                                              "doi": paper.doi}]
    library.save_removed(settings, removed)
    return RemoveResult(paper.paper_id, paper.title, list(paper.sources), _delete_emptied(paper, settings, removed))


def _delete_emptied(paper: Paper, settings, removed: list[dict]) -> list[str]:
    """Delete library files that listed the paper and now have nothing left; prune their tombstones."""
    deleted = []
    for f in library.library_files(settings):
        if library.source_name(f.name) not in paper.sources:
            continue
        parsed = library.read_library_file(f)
        if all(library.is_removed(p, removed) for p in parsed.papers):
            try:
                f.unlink()
            except OSError as e:  # the removal is recorded already: the file's papers stay hidden
                raise library.unwritable(f.parent, e, f.name) from None
            deleted.append(library.source_name(f.name))
    if deleted:
        remaining = [p for f in library.library_files(settings) for p in library.read_library_file(f).papers]
        library.save_removed(settings, [r for r in removed if any(library.is_removed(p, [r]) for p in remaining)])
    return deleted
