"""The parts of a multi-paper question that name one paper each, as search queries.

"Two papers report that explicit chain-of-thought can hurt: one on satisfying constraints in
instructions, one on tasks where deliberation also hurts people" asks for two papers, each
described by its own clause. Searched as a whole, the question's shared words ("chain-of-thought",
"hurt") rank papers matching the head above the two it describes (dev: the second paper of such
questions sat at rank 3-7). Each clause, searched with the head, finds its paper at rank 1.

Recognised layouts: "one on A, one on B" / "one A and the other B", "(a) A and (b) B", and
"A and B both …". Anything else has no facets, and the question is searched as a whole.
Hand-written (a few regexes): no maintained library parses question structure like this.
"""

from __future__ import annotations

import re

MAX_FACETS = 4
# "(a) …", "(b) …", "(1) …", "(i) …"
_LETTERED = re.compile(r"\((?:[a-d]|[1-4]|i{1,3}|iv)\)\s*", re.I)
# ", one on …", ": one …", " and one …", "; the other …"
_ONE = re.compile(r"(?:[:;,]\s*(?:and\s+)?|\s+and\s+)(?:one|the other|another)\b\s*", re.I)
# "A value-model-based prompt selector and a theoretically grounded online filtering method both …"
_BOTH = re.compile(r"^(?:an?|the)\s+(.+?)\s+and\s+(?:an?|the)\s+(.+?)\s+both\b(.*)$", re.I | re.S)


def facets(question: str) -> list[str]:
    """Search queries, one per described paper (the head clause with each part); [] when none."""
    text = question.strip()
    both = _BOTH.match(text)
    if both:
        rest = both.group(3).split("?")[0].split(".")[0]
        return [f"{part.strip()} {rest.strip()}".strip() for part in both.group(1, 2)]
    for pattern in (_LETTERED, _ONE):
        parts = pattern.split(_first_sentence_with(text, pattern))
        if len(parts) >= 3:  # a head and at least two parts
            head, described = parts[0], [_clean(p) for p in parts[1:]]
            described = [d for d in described if d]
            if len(described) >= 2:
                return [f"{_clean(head)} {d}".strip() for d in described[:MAX_FACETS]]
    return []


def _first_sentence_with(text: str, pattern: re.Pattern) -> str:
    """The sentence holding the parts ("… one on A, one on B. What does each find?" -> the first)."""
    for sentence in re.split(r"(?<=[.?!])\s+", text):
        if len(pattern.findall(sentence)) >= 2 or (pattern is _ONE and len(pattern.findall(sentence)) >= 1
                                                   and re.search(r"\bone\b", sentence, re.I)):
            return sentence
    return ""


def _clean(part: str) -> str:
    part = re.sub(r"^(?:and|or)\s+|\s+(?:and|or)$", "", part.strip(" ,;:.?"), flags=re.I)
    return part.strip(" ,;:.?")
