"""Evaluation metrics as pure functions (unit-tested on hand-made cases in tests/test_metrics.py).

Retrieval metrics work at paper level on a ranked list of unique titles; answer metrics on
plain values pulled from an `Answer`. Nothing here touches the index or a model.
"""

from __future__ import annotations

import math
import re
import unicodedata
from statistics import mean


def hit_at(ranked: list[str], gold: set[str], k: int) -> float:
    return float(any(t in gold for t in ranked[:k]))


def recall_at(ranked: list[str], gold: set[str], k: int) -> float:
    return len(set(ranked[:k]) & gold) / len(gold) if gold else 0.0


def mrr_at(ranked: list[str], gold: set[str], k: int) -> float:
    return next((1.0 / i for i, t in enumerate(ranked[:k], 1) if t in gold), 0.0)


def ndcg_at(ranked: list[str], gold: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 1) for i, t in enumerate(ranked[:k], 1) if t in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return dcg / ideal if ideal else 0.0


def retrieval_scores(ranked: list[str], gold: set[str]) -> dict[str, float]:
    return {"hit@1": hit_at(ranked, gold, 1), "hit@5": hit_at(ranked, gold, 5),
            "recall@5": recall_at(ranked, gold, 5), "mrr@10": mrr_at(ranked, gold, 10),
            "ndcg@10": ndcg_at(ranked, gold, 10)}


def normalize(text: str) -> str:
    """Lower-case, unify unicode and punctuation, so "2,000" matches "2000" and "GPT-4" "gpt 4"."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    return " ".join(re.sub(r"[^\w%.]+", " ", text).replace(". ", " ").split()).strip(" .")


def key_fact_recall(answer: str, facts: list[str]) -> float | None:
    if not facts:
        return None
    norm = f" {normalize(answer)} "
    return sum(f" {normalize(f)} " in norm or normalize(f) in norm for f in facts) / len(facts)


def title_named(answer: str, gold: set[str]) -> float:
    """1.0 when the answer names a gold paper by its title (normalised), else 0.0."""
    norm = normalize(answer)
    return float(any(normalize(t) in norm for t in gold))


def citation_validity(cited: list[str], retrieved: list[str]) -> float | None:
    """Share of citations that point at a paper retrieval returned (must be 1.0)."""
    return sum(c in set(retrieved) for c in cited) / len(cited) if cited else None


def citation_precision(cited: list[str], gold: set[str]) -> float | None:
    return len(set(cited) & gold) / len(set(cited)) if cited and gold else None


def citation_recall(cited: list[str], gold: set[str]) -> float | None:
    return len(set(cited) & gold) / len(gold) if gold else None


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def mean_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return mean(present) if present else None
