"""Eval metrics on hand-made cases, and the gold file's own soundness."""

from __future__ import annotations

import json
import math

import pytest

from rag.eval import metrics as m
from rag.corpus.listing import load_corpus
from rag.eval.run import deltas, flatten, gate
from rag.eval.gold import TYPES, load_gold, validate
from rag.errors import InputError

from conftest import ROOT, SEEDS

RANKED = ["a", "b", "c", "d", "e", "f"]


def test_retrieval_metrics_by_hand():
    assert m.hit_at(RANKED, {"c"}, 1) == 0 and m.hit_at(RANKED, {"c"}, 5) == 1
    assert m.recall_at(RANKED, {"a", "z"}, 5) == 0.5
    assert m.mrr_at(RANKED, {"c", "e"}, 10) == pytest.approx(1 / 3)
    assert m.mrr_at(RANKED, {"z"}, 10) == 0
    # gold at ranks 1 and 3 of 2 relevant: (1 + 1/log2(4)) / (1 + 1/log2(3))
    assert m.ndcg_at(RANKED, {"a", "c"}, 10) == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)))
    assert m.ndcg_at(RANKED, {"a"}, 10) == 1.0


def test_key_fact_recall_normalises():
    answer = "It examined over 2000 benchmarks from 148 Countries, using GPT-4."
    assert m.key_fact_recall(answer, ["2,000", "148 countries", "GPT-4"]) == 1.0
    assert m.key_fact_recall(answer, ["2,000", "Llama"]) == 0.5
    assert m.key_fact_recall(answer, []) is None
    assert m.key_fact_recall("scored 14%", ["14%"]) == 1.0
    assert m.key_fact_recall("scored 14", ["14%"]) == 0.0


def test_citation_metrics():
    assert m.citation_validity(["p1", "p2"], ["p1", "p2", "p3"]) == 1.0
    assert m.citation_validity(["p1", "p9"], ["p1"]) == 0.5
    assert m.citation_validity([], ["p1"]) is None
    assert m.citation_precision(["A", "B"], {"A"}) == 0.5
    assert m.citation_recall(["A"], {"A", "C"}) == 0.5


def test_percentile_and_mean():
    assert m.percentile([5, 1, 3, 2, 4], 50) == 3
    assert m.percentile(list(range(1, 101)), 95) == 95
    assert m.percentile([], 50) is None
    assert m.mean_of([1, None, 3]) == 2 and m.mean_of([None]) is None


def test_gate_minimums_and_maximums():
    current = {"retrieval.hybrid.hit@5": 0.9, "answers.extractive.total_p95_s": 2.0,
               "answers.extractive.false_abstention_rate": 0.1}
    assert gate(current, {"retrieval.hybrid.hit@5": 0.8, "answers.extractive.total_p95_s": 3.0}) == []
    failures = gate(current, {"retrieval.hybrid.hit@5": 0.95, "answers.extractive.false_abstention_rate": 0.05,
                              "answers.extractive.key_fact_recall": 0.5})
    assert len(failures) == 3  # too low, too high, and missing


def test_flatten_and_deltas():
    agg = {"retrieval": {"hybrid": {"overall": {"hit@1": 0.5, "n": 3}}},
           "answers": {"extractive": {"overall": {"key_fact_recall": 0.7, "n": 3, "errors": 0,
                                                  "first_token_p50_s": None}}}}
    flat = flatten(agg)
    assert flat == {"retrieval.hybrid.hit@1": 0.5, "answers.extractive.key_fact_recall": 0.7}
    assert deltas(flat, {"retrieval.hybrid.hit@1": 0.4}) == [
        ("answers.extractive.key_fact_recall", 0.7, None), ("retrieval.hybrid.hit@1", 0.5, pytest.approx(0.1))]


def test_project_gold_file_is_sound():
    items = load_gold(ROOT / "evals" / "gold.jsonl")
    assert len(items) >= 100
    assert validate(items, load_corpus(SEEDS)) == []
    assert {i.type for i in items} == set(TYPES)
    assert {i.split for i in items} == {"dev", "test"}
    sources = {s for p in load_corpus(SEEDS) for i in items for s in p.sources if p.title in i.gold_titles}
    assert len(sources) == 5  # every seed file is covered


def test_validator_catches_bad_items(tmp_path):
    climb = "CLIMB: Curriculum Learning for Infant-inspired Model Building"
    bad = [
        {"id": "x1", "question": "q?", "type": "fact", "gold_titles": ["No Such Paper"], "key_facts": []},
        {"id": "x1", "question": "q?", "type": "fact", "gold_titles": [climb], "key_facts": []},
        {"id": "x3", "question": "q?", "type": "followup", "key_facts": ["nowhere to be found"],
         "gold_titles": [climb], "history": ["earlier?"]},
    ]
    f = tmp_path / "gold.jsonl"
    f.write_text("\n".join(json.dumps(b) for b in bad))
    problems = "\n".join(validate(load_gold(f), load_corpus(SEEDS)))
    for expected in ("not in the corpus", "duplicate id", "not verbatim"):
        assert expected in problems


GOOD = {"id": "ok", "question": "Which paper?", "type": "which_paper", "gold_titles": ["Some Title"]}
MALFORMED = [  # (change to a good item, words the error must hold)
    ({"question": "   "}, ["question", "must not be empty"]),
    ({"type": "riddle"}, ["type", "'riddle'", "'fact'"]),
    ({"gold_titles": "Some Title"}, ["gold_titles", "array", "'Some Title'"]),
    ({"gold_titles": ["ok", 7]}, ["gold_titles[1]", "string"]),
    ({"gold_titles": []}, ["needs gold_titles"]),
    ({"type": "unanswerable"}, ["unanswerable", "no gold_titles"]),
    ({"type": "followup"}, ["followup", "needs history"]),
    ({"split": "train"}, ["split", "'dev' or 'test'"]),
    ({"type": None}, ["type"]),
    ({"key_facts": "AsyncFlow"}, ["key_facts", "array"]),
]


@pytest.mark.parametrize("change,words", MALFORMED, ids=[json.dumps(c)[:30] for c, _ in MALFORMED])
def test_malformed_gold_item_names_file_line_and_field(tmp_path, change, words):
    f = tmp_path / "g.jsonl"
    f.write_text(json.dumps(GOOD) + "\n\n" + json.dumps({**GOOD, **change}) + "\n")
    with pytest.raises(InputError) as e:
        load_gold(f)
    for word in [f"{f}:3:", *words, "fix that line"]:
        assert word in str(e.value), (word, str(e.value))


def test_gold_item_with_missing_keys_names_them(tmp_path):
    f = tmp_path / "g.jsonl"
    f.write_text('{"id": "a", "question": "q"}\n')
    with pytest.raises(InputError, match=r"g.jsonl:1: .*type: Field required; gold_titles: Field required"):
        load_gold(f)


def test_gold_items_without_split_get_a_stable_one(tmp_path):
    f = tmp_path / "g.jsonl"
    f.write_text("\n".join(json.dumps({**GOOD, "id": f"q{n}"}) for n in range(20)))
    splits = [i.split for i in load_gold(f)]
    assert set(splits) == {"dev", "test"} and splits == [i.split for i in load_gold(f)]


def test_gold_file_errors_name_the_line(tmp_path):
    f = tmp_path / "g.jsonl"
    f.write_text('{"id": "a", "question": "q", "type": "fact", "gold_titles": ["T"]}\nnot json\n')
    with pytest.raises(InputError, match="g.jsonl:2"):
        load_gold(f)
    with pytest.raises(InputError, match="does not exist"):
        load_gold(tmp_path / "missing.jsonl")
