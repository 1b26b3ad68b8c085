"""One paper per real paper, across the seed pages and every library file.

Occurrences are the same paper when they share an arXiv id or a DOI, or else the same
normalised title — unless both carry different arXiv ids (or DOIs): then they are two papers
that happen to share a title. Union-find does the grouping (a few dozen lines; no library
offers this over our keys).

The winner of a group is deterministic: seed pages before library files, then a full date,
then the most metadata, then file order. Empty fields are filled from the others, every
source is kept, and an occurrence whose abstract says something else is recorded as a
`Conflict` on the paper — reported, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rag.corpus.paper import Conflict, Paper, paper_id_for, title_key

_FILLED = ("org", "authors", "upvotes", "arxiv_id", "doi", "venue", "url", "author_names", "year", "categories")


@dataclass
class Merged:
    papers: list[Paper]
    group_of: list[int]  # occurrence index -> index of its paper in `papers`

    @property
    def conflicts(self) -> list[tuple[Paper, Conflict]]:
        return [(p, c) for p in self.papers for c in p.conflicts]


class _Groups:
    def __init__(self, n: int):
        self.parent = list(range(n))
        self.ids: dict[int, dict[str, set[str]]] = {}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
            keep, gone = self.ids.setdefault(min(ra, rb), {}), self.ids.pop(max(ra, rb), {})
            for kind, values in gone.items():
                keep.setdefault(kind, set()).update(values)

    def compatible(self, a: int, b: int) -> bool:
        ia, ib = self.ids.get(self.find(a), {}), self.ids.get(self.find(b), {})
        return not any(ia.get(k) and ib.get(k) and not ia[k] & ib[k] for k in ("arxiv_id", "doi"))


def _group(occ: list[Paper]) -> _Groups:
    g, first = _Groups(len(occ)), {}
    for i, p in enumerate(occ):
        g.ids[i] = {k: {getattr(p, k)} for k in ("arxiv_id", "doi") if getattr(p, k)}
    for i, p in enumerate(occ):
        for key in ((k, getattr(p, k)) for k in ("arxiv_id", "doi")):
            if key[1]:
                g.union(first.setdefault(key, i), i)
    for i, p in enumerate(occ):
        j = first.setdefault(("title", title_key(p.title)), i)
        if g.compatible(i, j):
            g.union(j, i)
    return g


def _rank(p: Paper) -> tuple:
    filled = sum(v is not None for v in (p.org, p.authors, p.date_raw, p.upvotes))
    return (not p.in_seeds, p.date is None, -filled)


def same_abstract(a: str, b: str) -> bool:
    """Equal up to case, spacing and punctuation (a .bib's braces, a page's curly quotes)."""
    norm = lambda s: " ".join(re.sub(r"\W+", " ", s.casefold()).split())  # noqa: E731
    return norm(a) == norm(b)


def merge_group(occurrences: list[Paper]) -> Paper:
    ranked = sorted(occurrences, key=_rank)  # stable: ties keep file order
    best = ranked[0]
    filled = {f: next((getattr(p, f) for p in ranked if getattr(p, f) not in (None, ())), getattr(best, f))
              for f in _FILLED}
    names = max((p.author_names for p in ranked), key=len)  # the fullest author list, wherever it is
    if names and not (best.in_seeds and best.authors):  # a listing's own "• N authors" stays
        filled.update(author_names=names, authors=len(names))
    sources = tuple(sorted({s for p in occurrences for s in p.sources}))
    conflicts, seen = list(best.conflicts), set()
    for p in ranked[1:]:
        if not same_abstract(p.abstract, best.abstract) and p.sources[0] not in seen:
            seen.add(p.sources[0])
            conflicts.append(Conflict(best.sources[0], p.sources[0], p.abstract))
    return replace(best, sources=sources, conflicts=tuple(conflicts), **filled)


def merge_papers(occurrences: list[Paper]) -> Merged:
    """Unique papers in order of first appearance, and which paper each occurrence became."""
    g = _group(occurrences)
    roots: dict[int, list[int]] = {}
    for i in range(len(occurrences)):
        roots.setdefault(g.find(i), []).append(i)
    papers, group_of, used = [], [0] * len(occurrences), set()
    for members in roots.values():
        paper = merge_group([occurrences[i] for i in members])
        if paper.paper_id in used:  # same title, different arXiv id/DOI: a second paper of that title
            paper = replace(paper, paper_id=paper_id_for(f"{paper.title} {paper.arxiv_id or paper.doi}"))
        used.add(paper.paper_id)
        for i in members:
            group_of[i] = len(papers)
        papers.append(paper)
    return Merged(papers, group_of)
