"""Gold question files: load (each item's shape is checked), validate against the corpus, split.

Schema (one JSON object per line; see the project guide):
    {"id", "question", "type": fact|which_paper|multi|metadata|unanswerable|followup,
     "gold_titles": [...], "answer": "...", "key_facts": [...], "history": [...] (followup),
     "split": "dev"|"test" (optional)}
Any file in this schema works. Items without "split" are assigned one by a hash of their id,
so a split is stable across runs and machines.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from rag.corpus.listing import Paper
from rag.errors import InputError

TYPES = ("fact", "which_paper", "multi", "metadata", "unanswerable", "followup")
SPLITS = ("dev", "test")
SCHEMA = ("each line is one JSON object with id, question, type (" + "|".join(TYPES) + "), gold_titles "
          "(a list of titles) and optionally answer, key_facts, history (lists of strings), split (dev|test)")


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


Text = Annotated[str, AfterValidator(_not_blank)]


class GoldItem(BaseModel):
    """One gold question. Strict: a wrong shape (a string for a list, an unknown type) would
    otherwise be scored 0.000 without a word, so it is refused when the file is loaded."""

    model_config = ConfigDict(strict=True)

    id: Text
    question: Text
    type: Literal[TYPES]
    gold_titles: list[Text]
    answer: str = ""
    key_facts: list[Text] = []
    history: list[Text] = []
    split: Literal[SPLITS] | None = None

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"

    @model_validator(mode="after")
    def _consistent(self) -> "GoldItem":
        if self.answerable and not self.gold_titles:
            raise ValueError(f"a {self.type!r} item needs gold_titles, the papers that answer it")
        if not self.answerable and (self.gold_titles or self.key_facts):
            raise ValueError("an 'unanswerable' item has no gold_titles or key_facts")
        if self.type == "followup" and not self.history:
            raise ValueError("a 'followup' item needs history, the earlier questions")
        self.split = self.split or _split_for(self.id)  # stable across runs and machines
        return self


def _split_for(item_id: str) -> str:
    return "dev" if int(hashlib.sha1(item_id.encode()).hexdigest(), 16) % 10 < 4 else "test"


def _describe(e: ValidationError) -> str:
    """Every problem of one line, as `field: what it should be (got value)`."""
    out = []
    for err in e.errors():
        msg = re.sub(r"^Value error, ", "", err["msg"])
        field = "".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"])
        got = "" if not field or err["type"] == "missing" else f" (got {repr(err['input'])[:60]})"
        out.append(f"{field}: {msg}{got}" if field else msg)
    return "; ".join(out)


def load_gold(path: Path | str) -> list[GoldItem]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"gold file {path} does not exist; pass --gold FILE (JSON lines, schema in rag/eval/gold.py)")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(GoldItem.model_validate_json(line))
        except ValidationError as e:
            raise InputError(f"{path}:{n}: not a gold item: {_describe(e)}; fix that line ({SCHEMA})") from None
    return items


def select_split(items: list[GoldItem], split: str) -> list[GoldItem]:
    if split == "all":
        return items
    if split not in SPLITS:
        raise InputError(f"split {split!r} is unknown; use dev, test or all")
    return [i for i in items if i.split == split]


def _metadata_strings(p: Paper) -> list[str]:
    values = [p.org, p.date, p.date_raw, None if p.upvotes is None else str(p.upvotes),
              None if p.authors is None else f"{p.authors} authors"]
    return [v for v in values if v]


def validate(items: list[GoldItem], papers: list[Paper]) -> list[str]:
    """Every problem found, as 'id: what is wrong'. An empty list means the file is sound."""
    by_title = {p.title: p for p in papers}
    problems, seen = [], set()
    for it in items:
        problems += [f"{it.id}: {p}" for p in _item_problems(it, by_title)]
        if it.id in seen:
            problems.append(f"{it.id}: duplicate id")
        seen.add(it.id)
    return problems


def _item_problems(it: GoldItem, by_title: dict[str, Paper]) -> list[str]:
    # the item's own shape was checked by GoldItem on loading; here only what needs the corpus
    out = [f"gold title not in the corpus: {t!r}" for t in it.gold_titles if t not in by_title]
    haystack = " ".join(s for t in it.gold_titles if t in by_title
                        for s in [by_title[t].abstract, t, *_metadata_strings(by_title[t])])
    out += [f"key fact not verbatim in a gold paper: {f!r}" for f in it.key_facts if f not in haystack]
    return out
