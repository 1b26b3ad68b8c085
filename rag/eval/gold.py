"""Gold question files: load, validate, split.

Schema (one JSON object per line; see the project guide):
    {"id", "question", "type": fact|which_paper|multi|metadata|unanswerable|followup,
     "gold_titles": [...], "answer": "...", "key_facts": [...], "history": [...] (followup),
     "split": "dev"|"test" (optional)}
Any file in this schema works. Items without "split" are assigned one by a hash of their id,
so a split is stable across runs and machines.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from rag.corpus.listing import Paper
from rag.errors import InputError

TYPES = ("fact", "which_paper", "multi", "metadata", "unanswerable", "followup")
SPLITS = ("dev", "test")


@dataclass
class GoldItem:
    id: str
    question: str
    type: str
    gold_titles: list[str]
    answer: str = ""
    key_facts: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    split: str = ""

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"


def _split_for(item_id: str) -> str:
    return "dev" if int(hashlib.sha1(item_id.encode()).hexdigest(), 16) % 10 < 4 else "test"


def load_gold(path: Path | str) -> list[GoldItem]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"gold file {path} does not exist; pass --gold FILE (JSON lines, schema in rag/gold.py)")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            item = GoldItem(**{k: raw[k] for k in raw if k in GoldItem.__dataclass_fields__})
        except (json.JSONDecodeError, TypeError) as e:
            raise InputError(f"{path}:{n}: not a gold item ({e}); each line needs id, question, type, gold_titles") from None
        item.split = item.split or _split_for(item.id)
        items.append(item)
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
    out = []
    if it.type not in TYPES:
        out.append(f"unknown type {it.type!r}")
    if it.split not in SPLITS:
        out.append(f"unknown split {it.split!r}")
    if not it.question.strip():
        out.append("empty question")
    out += [f"gold title not in the corpus: {t!r}" for t in it.gold_titles if t not in by_title]
    if it.type == "unanswerable" and (it.gold_titles or it.key_facts):
        out.append("unanswerable items have no gold titles or key facts")
    if it.type != "unanswerable" and not it.gold_titles:
        out.append("answerable item without gold titles")
    if it.type == "followup" and not it.history:
        out.append("followup item without history")
    haystack = " ".join(s for t in it.gold_titles if t in by_title
                        for s in [by_title[t].abstract, t, *_metadata_strings(by_title[t])])
    out += [f"key fact not verbatim in a gold paper: {f!r}" for f in it.key_facts if f not in haystack]
    return out
