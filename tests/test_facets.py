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


def test_papers_naming_a_rare_thing_the_question_names_are_cited(corpus_settings):
    # searched whole, the question's common words outrank the two abstracts that name OpenBookQA
    q = ("Which papers report results on grade-school science question benchmarks such as OpenBookQA or the "
         "AI2 Reasoning Challenge, and what do they find?")
    whole = [h.title for h in rag.search(q, k=4, settings=corpus_settings)]
    assert not any(t.startswith(("STEM:", "Large Language Models Can Self-Improve")) for t in whole)
    a = rag.ask(q, backend="extractive", settings=corpus_settings)
    titles = " | ".join(c.title for c in a.citations)
    assert a.kind == "multi" and "STEM:" in titles and "Large Language Models Can Self-Improve" in titles


def test_a_name_many_papers_hold_pins_none(corpus_settings):
    from rag.answer.pipeline import NAMED_PAPERS, _named_hits
    assert len(rag.search("GSM8K", k=NAMED_PAPERS + 1, mode="bm25", settings=corpus_settings)) > NAMED_PAPERS
    assert _named_hits("Which papers report GSM8K results?", None, corpus_settings) == []
    assert {h.title.split(":")[0] for h in _named_hits("Which studies use OLMo models?", None, corpus_settings)} == {
        "Where to find Grokking in LLM Pretraining? Monitor Memorization-to-Generalization without Test",
        "Overtrained Language Models Are Harder to Fine-Tune"}
