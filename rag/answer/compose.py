"""Laying out an answer: the lead, then the evidence, one block per cited paper.

    <the model's sentences that the checker backed, each cited>          (the lead; may be empty)

    - <Title> (<published …; organisation …; N authors>) [1]: “<quote>” “<quote>”
    - <Title> … [2]: “<quote>”

Quotes are abstract sentences verbatim, chosen by relevance to the question (rag.query.evidence),
so every line below the lead is true of the paper it cites by construction. How many papers and
quotes depends on the question's shape (rag.answer.shape): a fact gets its best paper (and a
second only when its evidence is as strong), a multi-paper question one block per relevant paper,
a metadata question the listing's details.
"""

from __future__ import annotations

from rag.answer.citations import content_stems, supports
from rag.answer.shape import Shape
from rag.answer.types import Sentence
from rag.query import evidence as ev

UNSUPPORTED_MARK = "[unsupported]"


def evidence_text(source: ev.Source) -> str:
    """Everything a sentence citing this source may rely on: title, listing details, abstract."""
    return f"{source.hit.title}. {ev.metadata_text(source.hit.meta)}. {source.hit.abstract}"


def heading(source: ev.Source, iso: bool = False) -> str:
    meta = ev.metadata_text(source.hit.meta, iso)
    return source.hit.title + (f" ({meta})" if meta else "")


def evidence_block(source: ev.Source, quotes: int, iso: bool = False, backing: set[str] = frozenset()
                   ) -> list[Sentence]:
    """A paper's heading and its best `quotes` sentences, each checked like any other sentence,
    plus the sentences in `backing` (those that back what the answer says of the paper)."""
    block = [Sentence(heading(source, iso), [source.n], True, origin="title")]
    chosen = source.quotes(quotes)
    chosen += [s for s in source.sentences if s.text in backing and s not in chosen]
    for s in sorted(chosen, key=lambda s: s.pos):
        check = supports(evidence_text(source), s.text)
        block.append(Sentence(s.text, [source.n], check.ok, check.reason, origin="quote"))
    return block


def evidence(sources: list[ev.Source], shape: Shape, cited: set[int] | None = None,
             backing: dict[int, set[str]] | None = None) -> list[Sentence]:
    """Evidence blocks for the cited sources (all chosen sources when `cited` is None); a
    metadata answer gives dates in both the listing's form and ISO form. `backing`: per source,
    sentences to quote whatever their rank (`backing_sentences`)."""
    iso, backing = shape.kind == "metadata", backing or {}
    return [s for src in sources if cited is None or src.n in cited
            for s in evidence_block(src, shape.quotes, iso, backing.get(src.n, frozenset()))]


def backing_sentences(sources: list[ev.Source], lead: list[Sentence]) -> dict[int, set[str]]:
    """Per source, the sentence of it that shares most content words (two at least) with each lead
    sentence citing it: the quote a reader checks the claim against. The model reads four
    sentences a paper and the block quotes the best three (a fact), so a claim drawn from the
    fourth had no quote under it (a blind batch: "extend it to a new field by incorporating a new
    node into the taxonomy")."""
    out: dict[int, set[str]] = {}
    for source in sources:
        claims = [content_stems(s.text) for s in lead if source.n in s.cites]
        stems = [(x.text, content_stems(x.text)) for x in source.sentences] if claims else []
        for said in claims:  # the first best sentence, as max() picks it
            shared, text = max(((len(said & st), t) for t, st in stems), key=lambda x: x[0], default=(0, ""))
            if shared >= 2:
                out.setdefault(source.n, set()).add(text)
    return out


def render(sentences: list[Sentence]) -> str:
    """The answer as text: lead sentences on one paragraph, then one line per evidence block."""
    lead = " ".join(_with_marks(s) for s in sentences if s.origin == "model")
    lines = []
    for s in sentences:
        if s.origin == "title":
            lines.append(f"- {s.text} [{s.cites[0]}]:")
        elif s.origin == "quote" and lines:
            lines[-1] += f" “{s.text}”"
    return "\n\n".join(part for part in (lead, "\n".join(lines)) if part)


def render_unverified(sentences: list[Sentence]) -> str:
    return " ".join(f"{_with_marks(s)} {UNSUPPORTED_MARK}" for s in sentences)


def _with_marks(s: Sentence) -> str:
    return " ".join(x for x in (s.text, "".join(f"[{n}]" for n in s.cites)) if x)
