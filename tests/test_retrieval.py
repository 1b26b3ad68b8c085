"""Hybrid retrieval on the real corpus index."""

from __future__ import annotations

import pytest

import rag
from rag.errors import InputError
from rag.query.retrieval import Filters, get_retriever

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


FUSION_CASES = [  # (question, gold title, the retriever that misses it at rank 1)
    ("When was the systematic study of what makes long chain-of-thought emerge under SFT and RL published?",
     "Demystifying Long Chain-of-Thought Reasoning in LLMs", "dense"),
    ("Which papers build datasets to test theory-of-mind reasoning in language models?",
     "SimpleToM: Exposing the Gap between Explicit ToM Inference and Implicit ToM Application in LLMs", "bm25"),
]


@pytest.mark.parametrize("question,title,weak", FUSION_CASES)
def test_hybrid_recovers_what_one_retriever_misses(corpus_settings, question, title, weak):
    r = get_retriever(corpus_settings)
    top = {m: [h.title for h in r.search(question, k=5, mode=m)] for m in ("bm25", "dense", "hybrid")}
    strong = "bm25" if weak == "dense" else "dense"
    assert top[weak][0] != title and top[strong][0] == title  # the premise: one of them misses
    assert title in top["hybrid"][:2]


def test_org_filter(corpus_settings):
    hits = rag.search("reinforcement learning", k=10, filters=Filters(org="nvidia"), settings=corpus_settings)
    assert hits and all("nvidia" in h.meta["org"].lower() for h in hits)


def test_date_filter_keeps_only_dated_papers_in_range(corpus_settings):
    f = Filters(date_from="2024-01-01", date_to="2024-12-31")
    hits = rag.search("language model reasoning", k=10, filters=f, settings=corpus_settings)
    assert hits and all("2024-01-01" <= h.meta["date"] <= "2024-12-31" for h in hits)


def test_k_papers_come_back_when_the_corpus_has_them(corpus_settings):
    """k counts papers; a paper has several chunks, so k chunks per retriever held fewer (100 -> 73)."""
    hits = rag.search("language model", k=100, settings=corpus_settings)
    assert len(hits) == 100 and len({h.paper_id for h in hits}) == 100


def test_filter_that_matches_nothing_returns_nothing(corpus_settings):
    assert rag.search("reasoning", filters=Filters(org="no such lab"), settings=corpus_settings) == []


def test_ask_whose_filters_match_nothing_says_the_filters_are_why(corpus_settings):
    a = rag.ask("What is GRPO?", backend="extractive", filters=Filters(date_from="2099-01-01"),
                settings=corpus_settings)
    assert a.abstained and not a.citations and not a.closest
    assert any("no paper matches the filters (from 2099-01-01)" in n for n in a.notes)


def test_bad_input_names_the_problem(corpus_settings):
    with pytest.raises(InputError, match="empty"):
        rag.search("   ", settings=corpus_settings)
    with pytest.raises(InputError, match="k=0"):
        rag.search("reasoning", k=0, settings=corpus_settings)


def test_public_api_names():
    assert {"search", "ask", "Answer", "Citation", "Filters", "build_index", "Settings", "RagError"} <= set(rag.__all__)
    for name in rag.__all__:
        assert getattr(rag, name) is not None


@pytest.mark.parametrize("value,bound,day", [("2024-02", "to", "2024-02-29"), ("2023-02", "to", "2023-02-28"),
                                            ("2024", "from", "2024-01-01"), ("9999", "to", "9999-12-31"),
                                            ("9999-12", "to", "9999-12-31")])
def test_date_bounds_cover_the_whole_period(value, bound, day):
    from rag.query.dates import date_bound

    assert date_bound(value, bound) == day


def test_an_rrf_tie_goes_to_the_paper_bm25_ranks_higher():
    """A word only one paper holds: BM25 ranks it 1st, dense ranks another 1st, neither list has the
    other's paper, so both score 1/61; -k 1 must not return the paper that merely sits first in storage."""
    from rag.query.retrieval import _fuse

    fused = _fuse({"bm25": [(7, 70, 12.0)], "dense": [(3, 30, 0.41)]}, 60)
    assert [f["prow"] for f in fused] == [7, 3] and fused[0]["score"] == fused[1]["score"]
    mirrored = _fuse({"bm25": [(5, 50, 9.0), (2, 20, 8.0)], "dense": [(2, 21, 0.6), (5, 51, 0.5)]}, 60)
    assert [f["prow"] for f in mirrored] == [5, 2]


def test_a_paper_bm25_singles_out_leads_the_fusion():
    """BM25 scores one paper far above the rest; dense search ranks it nowhere: it still comes first,
    with the best fused score, and a close BM25 call leaves the plain fusion alone."""
    from rag.query.retrieval import _fuse, _lead

    lists = {"bm25": [(7, 70, 30.0), (3, 30, 12.0), (4, 40, 11.0)],
             "dense": [(3, 31, 0.6), (4, 41, 0.5), (9, 90, 0.4)]}
    fused = _fuse(lists, 60)
    assert fused[0]["prow"] == 3  # in both lists: plain fusion puts it first
    led = _lead(fused, lists["bm25"], 1.4)
    assert [f["prow"] for f in led][:2] == [7, 3] and led[0]["score"] == led[1]["score"]
    assert _lead(fused, lists["bm25"], 3.0) == fused and _lead(fused, lists["bm25"], 0.0) == fused


def test_a_paraphrase_dense_search_misses_is_found_by_its_rare_words(corpus_settings):
    question = ("Which paper reports a model that selectively complies with its training objective while it "
                "believes it is being trained, and tries to copy out its own weights when given the chance?")
    dense = [h.title for h in rag.search(question, k=10, mode="dense", settings=corpus_settings)]
    assert "Alignment faking in large language models" not in dense[:5]  # the case this is about
    hits = rag.search(question, k=3, settings=corpus_settings)
    assert hits[0].title == "Alignment faking in large language models"
    plain = rag.search(question, k=3, settings=corpus_settings.with_overrides(bm25_lead=0.0))
    assert plain[0].title != hits[0].title
