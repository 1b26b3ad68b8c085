"""The `Paper` record every format parses into, and the keys papers are matched by.

A paper's id is the hash of its normalised title, for every format: the seed papers keep the
ids they always had, and the same paper gets the same id in every file and run. Papers added
by the user carry the extra fields their format knows (arXiv id, DOI, venue, author names…);
the listing pages leave them empty.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import asdict, dataclass, field

LIBRARY_PREFIX = "library/"  # sources of papers from the user's library read "library/<file>"


@dataclass(frozen=True)
class Conflict:
    """The same paper with a different abstract in another file: reported, never silently merged."""

    kept: str  # the source whose abstract the paper keeps
    other: str  # the source whose abstract differs
    other_abstract: str


@dataclass(frozen=True)
class Paper:
    paper_id: str
    title: str
    abstract: str
    org: str | None = None
    authors: int | None = None
    date: str | None = None  # ISO yyyy-mm-dd, only when the source gives the full date
    date_raw: str | None = None  # as listed, e.g. "Sep 26" or "2017"
    upvotes: int | None = None
    sources: tuple[str, ...] = field(default_factory=tuple)
    # from the user's own files (BibTeX, arXiv Atom, JSONL/CSV); empty for the listing pages
    arxiv_id: str | None = None  # without version, e.g. "1706.03762"
    doi: str | None = None  # lower-case, without a resolver prefix, e.g. "10.1000/xyz"
    venue: str | None = None
    url: str | None = None
    author_names: tuple[str, ...] = field(default_factory=tuple)
    year: int | None = None
    categories: tuple[str, ...] = field(default_factory=tuple)
    kind: str = "listing"  # listing | bibtex | atom | jsonl | csv
    conflicts: tuple[Conflict, ...] = field(default_factory=tuple)

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that goes into this paper's chunks changes.

        The fields the listing pages never set (and library sources) join the hash only when
        present, so the seed papers keep the hashes they were indexed under."""
        parts = [self.title, self.abstract, self.org, self.authors, self.date, self.date_raw, self.upvotes]
        extra = {k: v for k, v in self.extras().items() if v}
        library = sorted(s for s in self.sources if s.startswith(LIBRARY_PREFIX))
        if extra or library:
            parts.append([sorted(extra.items()), library])
        return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]

    def extras(self) -> dict:
        return {"arxiv_id": self.arxiv_id, "doi": self.doi, "venue": self.venue, "url": self.url,
                "author_names": self.author_names, "year": self.year, "categories": self.categories}

    @property
    def in_seeds(self) -> bool:
        return any(not s.startswith(LIBRARY_PREFIX) for s in self.sources)

    @property
    def in_library(self) -> bool:
        return any(s.startswith(LIBRARY_PREFIX) for s in self.sources)

    def to_dict(self) -> dict:
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        out["conflicts"] = [asdict(c) for c in self.conflicts]
        return out


def title_key(title: str) -> str:
    """What makes two titles the same: case, spacing, Unicode compatibility forms (ﬁ, full-width
    letters) and invisible format characters (a zero-width space in "Asy\u200bncFlow") aside, so
    such a title cannot pose as a different paper beside the one it copies."""
    text = "".join(c for c in unicodedata.normalize("NFKC", title) if unicodedata.category(c) != "Cf")
    return " ".join(text.casefold().split())


def paper_id_for(title: str) -> str:
    """Stable id from the normalised title: the same paper gets the same id in every file and run."""
    return hashlib.sha1(title_key(title).encode()).hexdigest()[:12]
