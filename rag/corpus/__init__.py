"""Papers from the formats researchers have: the listing pages in seeds/ (and more to come)."""

from rag.corpus.listing import Paper, load_corpus, merge, paper_id_for, parse_file, title_key

__all__ = ["Paper", "load_corpus", "merge", "paper_id_for", "parse_file", "title_key"]
