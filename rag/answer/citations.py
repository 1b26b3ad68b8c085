"""Citation markers and sentence support.

Small models write citations in many shapes: `[1]`, `[1, 2]`, `[1][2]`, `[1-2]`, `【1】`,
`Source 1`, `(Source 2)`, `[Source 3]`. `parse_markers` finds them all; numbers that are not a
numbered source are removed from the text and reported.

`supports` decides whether an evidence text backs a sentence: every number and named entity in
the sentence must occur in the evidence, and most of its content words must too. It is a
lexical check, deliberately strict: a sentence it cannot verify is shown as unsupported rather
than passed off as backed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from rag.index.chunking import split_sentences

_NUM = r"\d+"
_LIST = rf"{_NUM}(?:\s*(?:,|-|–|and)\s*{_NUM})*"
MARKER = re.compile(
    rf"\[\s*(?:sources?\s*)?(?P<a>{_LIST})\s*\]"  # [1] [1, 2] [1-3] [Source 1]
    rf"|【\s*(?P<b>{_LIST})\s*】"  # 【1】
    rf"|\(\s*sources?\s+(?P<c>{_LIST})\s*\)"  # (Source 1)
    rf"|\bsources?\s+(?P<d>{_NUM}(?:\s*(?:,|and)\s*{_NUM})*)\b",  # Source 1, sources 1 and 2
    re.IGNORECASE,
)
# A template slot the model left unfilled ('"Title" by [Author] introduces …'): it names no source
# and claims nothing, so it goes with its "by"
_PLACEHOLDER = re.compile(r"(?:\s*\b(?:by|from)\s+)?\[\s*(?:the\s+)?(?:authors?|author names?|names?|year|title|paper title)"
                          r"\s*\]", re.I)
MIN_OVERLAP = 0.6  # share of a sentence's content words that must occur in its evidence


def _numbers(spec: str) -> list[int]:
    out = []
    for part in re.split(r"\s*(?:,|and)\s*", spec.strip()):
        if re.fullmatch(r"\d+\s*[-–]\s*\d+", part):
            lo, hi = (int(x) for x in re.split(r"[-–]", part))
            out.extend(range(lo, hi + 1) if 0 < hi - lo < 10 else [lo, hi])
        elif part.strip().isdigit():
            out.append(int(part))
    return out


@dataclass
class Marked:
    """A text with its citation markers taken out."""

    text: str  # without any marker
    cited: list[int] = field(default_factory=list)  # valid source numbers, in order of appearance
    removed: list[int] = field(default_factory=list)  # numbers that named no source


def parse_markers(text: str, n_sources: int) -> Marked:
    cited, removed = [], []

    def take(m: re.Match) -> str:
        for n in _numbers(next(g for g in m.groups() if g is not None)):
            bucket = cited if 1 <= n <= n_sources else removed
            if n not in bucket:
                bucket.append(n)
        return ""

    clean = MARKER.sub(take, _PLACEHOLDER.sub("", text))
    clean = re.sub(r"\s+([.,;:!?]|'s\b)", r"\1", re.sub(r"[ \t]{2,}", " ", clean)).strip()
    return Marked(clean, cited, removed)


# A marker the model used as a noun: a sentence's subject ("[2] finds …", "Yes, [1] introduces …",
# "while [2] uses …") or a preposition's object ("according to [3]."). Taken out like a citation,
# it would leave "while uses …"; it names its paper instead.
_SUBJECT_BEFORE = re.compile(r"(?:^|\b(?:yes|no|and|while|whereas|but|both|example|instance)\W*|,)$", re.I)
_SUBJECT_AFTER = re.compile(r"\s+(?:also\s+|both\s+)?[a-z]|'s\b")
_OBJECT_BEFORE = re.compile(r"\b(?:in|from|by|according to)$", re.I)
_OBJECT_AFTER = re.compile(r"\s*(?:[.,;]|$)")


def short_name(title: str) -> str:
    """What a paper is called in a sentence: its title up to a colon ("MetaLadder"), quoted when
    the title is itself a question (its "?" would end the sentence)."""
    head = title.split(":")[0].strip() if ":" in title else title.strip()
    return f"“{head}”" if "?" in head else head


def name_markers(text: str, names: dict[int, str]) -> str:
    """`text` with each single-source marker used as a noun preceded by that source's name
    ("[2] finds X" -> "MetaLadder [2] finds X"); a name already in the sentence is not repeated."""
    def named(m: re.Match) -> str:
        name = names.get(int(m.group(1)))
        before, after = text[:m.start()].rstrip(), text[m.end():]
        noun = (_SUBJECT_BEFORE.search(before) and _SUBJECT_AFTER.match(after)
                or _OBJECT_BEFORE.search(before) and _OBJECT_AFTER.match(after))
        return f"{name} {m.group(0)}" if noun and name and name.lower() not in text.lower() else m.group(0)

    return re.sub(r"\[(\d+)\]", named, text)


def answer_sentences(text: str) -> list[str]:
    """Sentences of an answer, with a marker that trails a full stop kept on its sentence (but not
    one that is the next sentence's subject: "… problems. [2] reports that …")."""
    out: list[str] = []
    for s in split_sentences(text.replace("\n", " ")):
        lead = re.match(r"^((?:\s*(?:\[[^\]]*\]|【[^】]*】))+)\s*(.*)$", s)
        if lead and out and not re.match(r"[a-z]", lead.group(2)):
            out[-1] += " " + lead.group(1).strip()
            s = lead.group(2)
        if s.strip():
            out.append(s.strip())
    return out


# --- support -------------------------------------------------------------------------------

_STOP = frozenset("""a an the and or but if of to in on at by for with from as is are was were be been being
this that these those it its they them their we our us you your he she his her which who whom what when where
why how than then so such can could may might will would shall should do does did done has have had not no
nor also both each more most other some any all into over under about between through during within without
paper papers study studies work approach method methods model models propose proposes proposed show shows
shown results result using use used based new via per one two three""".split())
# a common noun written in capitals: "external APIs" asks about tools, it names nothing to look up
# (GPUs stay names: "how many GPUs …" is answered only by an abstract that mentions them); nor
# does a field's acronym: "built on pre-trained VLMs" answers "which vision-language model" with none
_COMMON_ACRONYMS = frozenset(("api", "apis", "ai", "ml", "nlp", "rl", "lm", "lms", "llm", "llms", "vlm", "vlms",
                              "mllm", "mllms", "slm", "slms", "lrm", "lrms"))
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]*|\d+(?:[.,]\d+)*%?")


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def content_stems(text: str) -> set[str]:
    # one-letter tokens carry no content: the "s" of a possessive ("AsyncFlow's"), "(i)", "k" in "top k"
    words = [w.lower() for w in _WORD.findall(text) if len(w) > 1 and w.lower() not in _STOP and not w[0].isdigit()]
    return set(_stemmer().stemWords(words))


# --- numbers ---------------------------------------------------------------------------------
# An abstract writes "8k interactions", "eight reasoning tasks", "1.5 million"; a model that copies
# the fact writes "8,000", "8", "1,500,000". Every number is compared by value, in every form the
# text allows: as written, and scaled by a following k/M/B/T or thousand/million/billion/trillion.
_SCALES = {"k": 3, "thousand": 3, "m": 6, "million": 6, "b": 9, "billion": 9, "t": 12, "trillion": 12}
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())} | {
    w: str(10 * i) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)}
# Digits inside a word are part of a name, not a quantity: "o1", "GSM8K", "Qwen2.5" state no number
# (an abstract about o1 does not back "1 human annotator"). The scraped abstracts keep LaTeX
# relations glued to numbers ("sim0.01%" for ~0.01%): those are quantities.
_QUANTITY = re.compile(r"(?:(?<![A-Za-z\d.,])|(?<=sim)|(?<=approx)|(?<=leq)|(?<=geq)|(?<=times))"
                       r"(\d+(?:[.,]\d+)*)%?(?:\s*(k|m|b|t|thousand|million|billion|trillion)(?![a-z]))?", re.I)
_WORD_NUMBER = re.compile(rf"\b({'|'.join(_NUMBER_WORDS)})\b", re.I)


def _value(digits: str) -> Decimal | None:
    """'2,000' -> 2000, '1.50' -> 1.5; a comma followed by other than three digits is a list ('1,2')."""
    if re.search(r",(?!\d{3}(?:\D|$))", digits):
        return None
    try:
        return Decimal(digits.replace(",", "").rstrip("."))
    except InvalidOperation:
        return None


def _canon(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _forms(m: re.Match) -> set[str]:
    """One written number's values: as written, and scaled by its unit word ('8k' -> 8, 8000)."""
    value = _value(m.group(1))
    if value is None:
        return {m.group(1)}
    forms = {_canon(value)}
    if m.group(2):
        forms.add(_canon(value.scaleb(_SCALES[m.group(2).lower()])))
    return forms


def values_in(text: str) -> set[str]:
    """Every value `text` states: its numbers in all their forms, and number words."""
    return {v for m in _QUANTITY.finditer(text) for v in _forms(m)} | {
        _NUMBER_WORDS[w.lower()] for w in _WORD_NUMBER.findall(text)}


def missing_numbers(sentence: str, evidence: str) -> list[str]:
    """Numbers of `sentence` that `evidence` does not state in any form ('8,000' is in '8k')."""
    have = values_in(evidence)
    return [m.group(0).strip() for m in _QUANTITY.finditer(sentence) if not _forms(m) & have]


def entities_in(sentence: str) -> list[str]:
    """Names a reader would check, in order: acronyms, CamelCase, words with digits or inner
    capitals, capitalised words that do not start the sentence."""
    words = _WORD.findall(sentence)
    out: dict[str, None] = {}
    for i, w in enumerate(words):
        if w[0].isdigit() or w.lower() in _STOP or w.lower() in _COMMON_ACRONYMS:
            continue
        inner_caps = any(c.isupper() for c in w[1:])
        if inner_caps or any(c.isdigit() for c in w) or (i > 0 and w[0].isupper()):
            out[w] = None
    return list(out)


def expanded_acronyms(text: str, acronyms: list[str]) -> set[str]:
    """The words of `text` that spell out one of `acronyms`: "Group Relative Policy Optimization"
    for GRPO. Such a phrase names what the acronym named, nothing new."""
    words = _WORD.findall(text)
    out: set[str] = set()
    for a in {x.rstrip("s").upper() for x in acronyms if x.rstrip("s").isupper() and len(x.rstrip("s")) >= 2}:
        for i in range(len(words) - len(a) + 1):
            run = words[i:i + len(a)]
            if all(w[0].isupper() for w in run) and "".join(w[0] for w in run) == a:
                out.update(run)
    return out


def abbreviates(name: str, text: str) -> bool:
    """Is `name` an acronym of words in `text`, any case ("CoT" of "chain-of-thought", "RL" of
    "reinforcement learning")? Such a name says nothing new about a text that spells it out."""
    letters = name[:-1] if name.endswith("s") and len(name) > 2 else name
    if not letters.isalpha() or not 2 <= len(letters) <= 6 or not any(c.isupper() for c in letters[1:]):
        return False
    return bool(re.search(r"\b" + r"[a-z]*\W+".join(letters.lower()), text.lower()))


def named_in(name: str, ev_lower: str) -> bool:
    """Does the (lower-cased) evidence name `name`? A hyphenated compound of a name and a plain
    word ("VLM-based", "RL-trained") counts when its named parts occur: the abstract says "VLMs …
    based on", and the plain word is checked with the other content words."""
    if name.lower() in ev_lower:
        return True
    parts = name.split("-")
    named = [p for p in parts if any(c.isupper() or c.isdigit() for c in p)]
    return 0 < len(named) < len(parts) and all(p.lower() in ev_lower for p in named)


@dataclass
class Support:
    ok: bool
    reason: str = ""
    overlap: float = 0.0


def supports(evidence: str, sentence: str) -> Support:
    """Does `evidence` back `sentence`? Numbers and names must occur, content must overlap."""
    missing_nums = missing_numbers(sentence, evidence)
    if missing_nums:
        return Support(False, f"number {missing_nums[0]} is not in the cited abstract")
    ev_lower = evidence.lower()
    missing_names = [e for e in entities_in(sentence) if not named_in(e, ev_lower)]
    if missing_names:
        return Support(False, f"{missing_names[0]!r} is not in the cited abstract")
    stems = content_stems(sentence)
    if not stems:
        return Support(False, "no content to check")
    overlap = len(stems & content_stems(evidence)) / len(stems)
    if overlap < MIN_OVERLAP:
        return Support(False, f"only {overlap:.0%} of its words are in the cited abstract", overlap)
    return Support(True, "", overlap)


def best_evidence_sentence(evidence: str, sentence: str) -> str:
    """The evidence sentence sharing most content words with `sentence` (what a UI highlights)."""
    stems = content_stems(sentence)
    return max(split_sentences(evidence) or [evidence], key=lambda e: len(stems & content_stems(e)))
