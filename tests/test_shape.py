"""Question shapes: the wording decides the layout of the answer."""

from __future__ import annotations

import pytest

import rag
from rag.answer.shape import classify

from test_answer import _check_guarantees


@pytest.mark.parametrize("question,kind", [
    ("How many benchmarks did the position paper examine?", "fact"),
    ("What speedup does AsyncFlow report over its baseline?", "fact"),
    ("Which paper proposes an asynchronous streaming RL framework?", "which_paper"),
    ("Is there a paper that skips pipeline stages in distributed training?", "which_paper"),
    ("Which robot-manipulation framework asks for new skills when its library falls short?", "which_paper"),
    ("Which papers use curriculum learning for RL post-training?", "multi"),
    ("Which instruction-tuning methods teach models to refuse unknown questions?", "multi"),
    ("What does the corpus say about theory of mind?", "multi"),
    ("Compare the bandit curriculum with the distribution-level curriculum.", "multi"),
    ("Two synthetic-data studies probe pretrained LMs: what does each find?", "multi"),
    ("Which organization is behind the paper on RL as a pretraining objective?", "metadata"),
    ("When was the SciBench paper published?", "metadata"),
    ("How many authors wrote the multilingual benchmarking position paper?", "metadata"),
])
def test_classify(question, kind):
    assert classify(question).kind == kind


def test_multi_paper_question_gets_one_cited_block_per_paper(corpus_settings):
    a = rag.ask("Which papers teach language models to refuse questions they do not know the answer to?",
                backend="extractive", settings=corpus_settings)
    assert a.kind == "multi" and not a.abstained
    titles = [s for s in a.sentences if s.origin == "title"]
    assert len(titles) >= 2 and len({s.cites[0] for s in titles}) == len(titles)
    assert a.text.count("\n- ") + a.text.startswith("- ") == len(titles)  # one bullet per paper
    assert any(c.title.startswith("R-Tuning") for c in a.citations)
    _check_guarantees(a)


def test_which_paper_answer_names_the_paper(corpus_settings):
    a = rag.ask("Which paper proposes an asynchronous streaming RL framework for LLM post-training?",
                backend="extractive", settings=corpus_settings)
    assert a.kind == "which_paper" and a.citations[0].title.startswith("AsyncFlow")
    assert a.citations[0].title in a.text
    _check_guarantees(a)


def test_metadata_question_is_answered_from_the_listing(corpus_settings):
    a = rag.ask("How many authors wrote the position paper on multilingual benchmarking practices, "
                "and when was it published?", settings=corpus_settings)  # auto: no model needed
    assert a.kind == "metadata" and "10 authors" in a.text and "Apr 21, 2025" in a.text
    assert a.completion_tokens is None and any("publication details" in n for n in a.notes)
    _check_guarantees(a)
