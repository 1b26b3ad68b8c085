"""Hybrid retrieval on the real corpus index."""

from __future__ import annotations

import pytest

import rag
from rag.errors import InputError
from rag.retrieval import Filters, get_retriever

# Questions that paraphrase an abstract without repeating its title.
PARAPHRASES = {
    "Does fine-tuning a model on facts it never saw in pretraining make it hallucinate more?":
        "Does Fine-Tuning LLMs on New Knowledge Encourage Hallucinations?",
    "training language models from scratch on a small budget of words, ordered the way children learn":
        "CLIMB: Curriculum Learning for Infant-inspired Model Building",
    "a framework that overlaps rollout generation and training for RL on LLMs to avoid idle GPUs":
        "AsyncFlow: An Asynchronous Streaming RL Framework for Efficient LLM Post-Training",
    "how many non-English evaluation datasets from around the world were surveyed?":
        "The Bitter Lesson Learned from 2,000+ Multilingual Benchmarks",
    "training a model with written feedback instead of numeric rewards":
        "Language Models Can Learn from Verbal Feedback Without Scalar Rewards",
}


@pytest.mark.parametrize("question,title", PARAPHRASES.items())
def test_paraphrased_question_ranks_its_paper_first(corpus_settings, question, title):
    hits = rag.search(question, k=5, settings=corpus_settings)
    assert hits[0].title == title, [h.title for h in hits]


def test_hits_are_unique_papers_with_descending_scores(corpus_settings):
    hits = rag.search("reinforcement learning for reasoning", k=20, settings=corpus_settings)
    assert len(hits) == 20 == len({h.paper_id for h in hits})
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert all(h.chunk_id.startswith(h.paper_id + ":") for h in hits)


def test_hybrid_finds_what_one_retriever_alone_misses(corpus_settings):
    r = get_retriever(corpus_settings)
    q = "SmolLM2 style tiny models trained with curriculum on BabyLM"
    modes = {m: [h.paper_id for h in r.search(q, k=10, mode=m)] for m in ("bm25", "dense", "hybrid")}
    assert set(modes["hybrid"]) <= set(modes["bm25"]) | set(modes["dense"])
    assert modes["hybrid"] != modes["bm25"] or modes["hybrid"] != modes["dense"]


def test_org_filter(corpus_settings):
    hits = rag.search("reinforcement learning", k=10, filters=Filters(org="nvidia"), settings=corpus_settings)
    assert hits and all("nvidia" in h.meta["org"].lower() for h in hits)


def test_date_filter_keeps_only_dated_papers_in_range(corpus_settings):
    f = Filters(date_from="2024-01-01", date_to="2024-12-31")
    hits = rag.search("language model reasoning", k=10, filters=f, settings=corpus_settings)
    assert hits and all("2024-01-01" <= h.meta["date"] <= "2024-12-31" for h in hits)


def test_filter_that_matches_nothing_returns_nothing(corpus_settings):
    assert rag.search("reasoning", filters=Filters(org="no such lab"), settings=corpus_settings) == []


def test_bad_input_names_the_problem(corpus_settings):
    with pytest.raises(InputError, match="empty"):
        rag.search("   ", settings=corpus_settings)
    with pytest.raises(InputError, match="k=0"):
        rag.search("reasoning", k=0, settings=corpus_settings)


def test_public_api_names():
    assert {"search", "ask", "Answer", "Citation", "Filters", "build_index", "Settings", "RagError"} <= set(rag.__all__)
    for name in rag.__all__:
        assert getattr(rag, name) is not None
