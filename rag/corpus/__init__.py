"""Papers from the formats researchers have: the seed listing pages, and the user's library
(more listing pages, BibTeX, arXiv Atom XML, JSON Lines, CSV). `load_all(settings)` is the
corpus the index covers."""

from rag.corpus.listing import load_corpus, merge, parse_file
from rag.corpus.paper import Conflict, Paper, paper_id_for, title_key

__all__ = ["Conflict", "Paper", "load_all", "load_corpus", "merge", "paper_id_for", "parse_file", "title_key"]


def load_all(settings):
    """Every unique paper of the seed pages and the user's library (see `rag.corpus.library`)."""
    from rag.corpus.library import load_all as _load_all

    return _load_all(settings)
