"""arXiv API results saved to a file (`.xml` / `.atom`), read with `feedparser`.

We hand feedparser the file's bytes, never a path or URL, so it cannot fetch anything; its SAX
parser has external entities switched off. A file that is not well-formed XML is rejected
whole (feedparser would otherwise guess at a truncated file). Each `<entry>` gives id, title,
summary, authors, published, categories, and `arxiv:doi` / `arxiv:journal_ref` when present.
"""

from __future__ import annotations

from rag.corpus.fields import EntryProblem, build_paper
from rag.corpus.reading import BadEntry, Parsed
from rag.errors import CorpusError


def _fields(e) -> dict:
    link = next((x.get("href") for x in e.get("links", []) if x.get("rel") == "alternate"), None)
    return {"title": e.get("title"), "abstract": e.get("summary"),
            "authors": [a.get("name", "") for a in e.get("authors", [])], "date": e.get("published"),
            "arxiv_id": e.get("id") if "arxiv.org/abs/" in e.get("id", "") else None,
            "doi": e.get("arxiv_doi"), "venue": e.get("arxiv_journal_ref"), "url": link or e.get("id"),
            "org": e.get("arxiv_affiliation"), "categories": [t.get("term", "") for t in e.get("tags", [])]}


def parse_atom(data: bytes, source: str, shown: str) -> Parsed:
    import feedparser

    feed, out = feedparser.parse(data), Parsed(shown)
    err = feed.get("bozo_exception")
    if feed.get("bozo") and hasattr(err, "getLineNumber"):
        raise CorpusError(shown, err.getLineNumber(), f"not well-formed XML ({err.getMessage()}); "
                          "save the complete arXiv API response again")
    if not feed.get("version", "").startswith("atom"):
        raise CorpusError(shown, 1, "not an Atom feed; save an arXiv API response "
                          "(http://export.arxiv.org/api/query?...) as .xml or .atom")
    for n, e in enumerate(feed.entries, 1):
        label = e.get("id") or e.get("title", "")[:60]
        if "/api/errors" in e.get("id", ""):  # the arXiv API reports a bad query as an entry
            out.bad.append(BadEntry(shown, f"entry {n}", label, f"the arXiv API returned an error: "
                                    f"{e.get('summary', '')}", "fix the query and save its results again"))
            continue
        try:
            out.papers.append(build_paper(_fields(e), "atom", source))
        except EntryProblem as p:
            out.bad.append(BadEntry(shown, f"entry {n}", label, p.problem, p.fix))
    return out
