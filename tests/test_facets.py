"""Multi-paper questions that describe each paper in its own clause (rag.query.facets)."""

from __future__ import annotations

import rag
from rag.query.facets import facets


def test_clauses_become_one_query_each():
    assert facets("Two methods speed up decoding: one on draft models, one on early exits. What does each report?") == [
        "Two methods speed up decoding on draft models", "Two methods speed up decoding on early exits"]
    assert facets("Which works cut memory by (a) quantising the KV cache and (b) paging it to disk?") == [
        "Which works cut memory by quantising the KV cache", "Which works cut memory by paging it to disk"]
    assert facets("A sparse router and a dense mixer both lower training cost. How?") == [
        "sparse router lower training cost", "dense mixer lower training cost"]


def test_questions_without_parts_have_none():
    for q in ("Which papers study overthinking?", "How many benchmarks did one paper examine?",
              "What is the one result that matters, and why?"):
        assert facets(q) == []


def test_each_described_paper_is_cited(corpus_settings):
    # searched whole, the shared head ("pretraining data") finds only the second paper
    q = ("Two papers study pretraining data for language models: one on fictitious synthetic data improving "
         "factuality, one on the effects of data age and toxicity filtering. What does each find?")
    a = rag.ask(q, backend="extractive", settings=corpus_settings)
    titles = " | ".join(c.title for c in a.citations)
    assert a.kind == "multi" and not a.abstained
    assert "Fictitious Synthetic Data" in titles and "A Pretrainer's Guide" in titles
