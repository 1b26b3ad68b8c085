"""Question shapes: the wording decides the layout of the answer."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

import rag
from rag.answer.pipeline import _backed_claims, _checked, _declined, prepare
from rag.answer.shape import asks_for_name, classify, sub_questions
from rag.query.evidence import score_sentences, select, wants_number
from rag.query.retrieval import search

from test_answer import _check_guarantees


@pytest.mark.parametrize("question,kind", [
    ("Where does Bayesian inference show up in the collection?", "multi"),  # "where does X show up"
    ("How many benchmarks did the position paper examine?", "fact"),
    ("What speedup does AsyncFlow report over its baseline?", "fact"),
    ("Which paper proposes an asynchronous streaming RL framework?", "which_paper"),
    ("Is there a paper that skips pipeline stages in distributed training?", "which_paper"),
    ("Which robot-manipulation framework asks for new skills when its library falls short?", "which_paper"),
    ("Which papers use curriculum learning for RL post-training?", "multi"),
    ("Which instruction-tuning methods teach models to refuse unknown questions?", "multi"),
    ("What does the corpus say about theory of mind?", "multi"),
    ("Does metadata conditioning help pretraining? Summarize what the corpus reports.", "multi"),
    ("Compare the bandit curriculum with the distribution-level curriculum.", "multi"),
    ("What work on robotic manipulation does the collection contain?", "multi"),
    ("I'm looking for the paper where a RAG system practices multi-round retrieval by itself.", "which_paper"),
    ("I remember a paper noticing that multimodal models stop looking at the image.", "which_paper"),
    ("Which work argues that API manuals are inadequate for LLMs?", "which_paper"),
    # "compare" inside a clause asks nothing across papers
    ("How many biographies make up the dataset used to test whether models can classify, compare and search "
     "their knowledge?", "fact"),
    ("What listing date does the collection give for the work that synthesizes hard math problems?", "metadata"),
    ("Two synthetic-data studies probe pretrained LMs: what does each find?", "multi"),
    ("Which two works build procedurally generated deduction corpora?", "multi"),
    # asked of the whole collection, even without "papers"
    ("How does entropy come up in the training of LLMs across the collection?", "multi"),
    ("Does anything here test whether LLMs can detect sarcasm?", "multi"),
    ("Are there methods where several LLM agents work together to make training data?", "multi"),
    ("Has anyone used curriculum learning to train models on audio?", "multi"),
    ("Does any paper here evaluate LLM agents in text adventure games?", "multi"),
    ("Is there evidence in the collection that models learn skills in a staged order?", "multi"),
    ("Is there an offline goal-conditioned RL paper that stitches trajectories?", "which_paper"),
    ("Is there a way to make the base model smaller?", "fact"),
    # a count of anything but papers is a detail of one paper
    ("Which three question-answering datasets were used to evaluate MindMap?", "fact"),
    ("How many essays were graded in the study comparing four language models?", "fact"),
    ("By how much did their two mitigation techniques reduce that effect?", "fact"),
    # asked of the one study the question points at, "which models" is a detail of that study
    ("Which language models did the Thought Propagation experiments use?", "fact"),
    ("Which methods train LLMs to decline problems they cannot reliably solve?", "multi"),
    ("Which base model was warmed up before the RLVR stage in the resource-constrained reasoning paper?", "fact"),
    ("Which model's checkpoints were fine-tuned in the Amuro & Char study?", "fact"),
    ("Which re-ranking model did the RAR-b authors fine-tune?", "fact"),
    # what "they" did is a detail of the study an earlier turn named; "how do they work" is not
    ("Which benchmarks did they evaluate it on?", "fact"),
    ("Which instruction-tuning methods teach LLMs to decline questions, and how do they work?", "multi"),
    ("What language model, and at what size, did the sample-order framework use?", "fact"),
    # … and so is the thing somebody used ("which paper was used" still asks for a paper)
    ("Which base language model was used to get the GSM8K gain of the strategy-picking agent?", "fact"),
    ("Which benchmark was chosen to test the verifier?", "fact"),
    ("Which method was proposed for trimming redundant visual tokens?", "which_paper"),
    ("Which organization is behind the paper on RL as a pretraining objective?", "metadata"),
    ("When was the SciBench paper published?", "metadata"),
    ("When did the paper on behaviour handbooks appear?", "metadata"),
    ("Which marketplace was compromised, and when did the attack happen?", "fact"),
    ("How many authors wrote the multilingual benchmarking position paper?", "metadata"),
    ("Who is the first author of the AsyncFlow paper?", "metadata"),
])
def test_classify(question, kind):
    assert classify(question).kind == kind


@pytest.mark.parametrize("question,name", [
    ("Which base model was warmed up on Knights & Knaves data?", True),
    ("Name the large language model that generated the rule templates.", True),
    ("On which academic benchmarks did they show it beats the baselines?", True),
    ("What did the study find about pass@k at large k?", False),
    ("Which paper proposes an asynchronous RL framework?", False),
    ("List the real-world datasets used to check the theory.", True),
    # the thing asked for is the first noun after "which": methods, not the LLMs they teach
    ("Which instruction-tuning methods teach LLMs to decline questions?", False),
    ("Which papers evaluate on the GSM8K benchmark?", False),
    # a noun right after an auxiliary is the subject: the question asks what they could state
    ("What were models trained only on coin-flip outcomes able to state afterwards?", False),
    ("What was the backbone model of the retriever?", True),
    # the thing modifies a measure: sizes are answered by "7B and 13B", not by a name
    ("In the skill-composition study, which model sizes were fine-tuned?", False),
    ("Which dataset sizes did they try?", False),
    ("On the benchmark, what did the best model score?", False),
    ("Which models scored highest on the benchmark?", True),  # "scored" is the verb, models the thing
])
def test_questions_asking_for_a_name(question, name):
    assert asks_for_name(question) == name


def test_common_nouns_in_capitals_are_not_names():
    from rag.answer.citations import entities_in

    # nor is a field's acronym: "LLMs" names no model, "GPT-4" does
    assert entities_in("Which work finds the manuals of external APIs inadequate for LLMs like GPT-4?") == ["GPT-4"]


@pytest.mark.parametrize("question,number", [
    ("What architecture and parameter count did the models trained from scratch have?", True),
    ("What is the number of GPUs they trained on?", True),
    ("By how much did re-reading improve accuracy?", True),
    ("Which datasets did they evaluate on?", False),
    ("What does the paper find about the number line?", False),
    # a quantity behind its modifiers is still a quantity
    ("What SimpleQA accuracy does DeepSeek-R1 report?", True),
    ("What average improvement over its backbone model does it achieve?", True),
    ("What was the largest absolute accuracy drop?", True),
    ("What does the size of the model change?", False),
    ("What kind of data do they use?", False),
    ("It is rewarded by how similar its view is to the task. What failure do the rewards counter?", False),
])
def test_quantity_questions(question, number):
    assert wants_number(question) == number


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
    assert "2025-04-21" in a.text  # the date in ISO form too, where the listing gives a full one
    assert a.completion_tokens is None and any("publication details" in n for n in a.notes)
    _check_guarantees(a)


REFUSAL_Q = "Which papers teach language models to refuse questions they do not know the answer to?"


def test_multi_answer_keeps_a_block_per_paper_whichever_the_model_cites(corpus_settings):
    prep = prepare(REFUSAL_Q, backend="extractive", settings=corpus_settings)
    assert len(prep.sources) >= 2
    a = _checked(prep, f"{prep.sources[0].best_sentence} [1]", 0.9)
    assert a.sentences[0].origin == "model" and a.sentences[0].supported
    assert [s.cites[0] for s in a.sentences if s.origin == "title"] == [s.n for s in prep.sources]
    _check_guarantees(a)


def test_a_title_split_at_its_question_mark_still_only_names_the_paper(corpus_settings):
    """Over weak evidence, an answer that only names papers abstains; a title with a "?" is split
    into two sentences, and its second half is no more a claim than the whole."""
    prep = prepare("Which papers study whether LLMs can learn from their previous mistakes to improve reasoning?",
                   backend="extractive", settings=corpus_settings)
    titled = [s for s in prep.sources if "?" in s.hit.title.rstrip("?")]
    assert prep.shape.kind == "multi" and titled
    a = _checked(prep, f"[{titled[0].n}] {titled[0].hit.title}", 0.5)
    assert not _backed_claims(prep, a) and not [s for s in a.sentences if s.origin == "model"]


def test_multi_answer_declining_for_one_paper_keeps_the_others(corpus_settings):
    prep = prepare(REFUSAL_Q, backend="extractive", settings=corpus_settings)
    partial = f"[1] {prep.sources[0].best_sentence}\n[2] NOT FOUND"
    assert not _declined(prep, partial) and _declined(prep, "[1] NOT FOUND\n\n[2] NOT FOUND")
    a = _checked(prep, partial, 0.9)
    assert not a.unverified and [s.origin for s in a.sentences].count("model") == 1
    # a fact answer that declines anywhere still declines: half an answer there is usually a guess
    fact = prepare("How many multilingual benchmarks did the position paper examine?", backend="extractive",
                   settings=corpus_settings)
    assert _declined(fact, "It examined 2,000 benchmarks [1]. The sources do not mention the countries.")


def test_claim_bonus_ranks_what_a_paper_does_above_its_background(corpus_settings):
    hits = search(REFUSAL_Q, k=2, settings=corpus_settings)
    plain, claims = score_sentences(REFUSAL_Q, hits), score_sentences(REFUSAL_Q, hits, claim_bonus=0.1)
    pairs = [(p, c) for ps, cs in zip(plain, claims) for p, c in zip(ps, cs)]
    assert all(p.relevance == c.relevance for p, c in pairs)  # abstention sees the same relevance
    lifted = [c for p, c in pairs if c.rank > p.rank]
    assert lifted and all(re.search(r"\b(we|our|this (paper|work|study))\b|\bresults?\b|\bexperiments?\b", c.text, re.I)
                          for c in lifted)
    assert any(not re.search(r"\bwe\b", p.text, re.I) and c.rank == p.rank for p, c in pairs)  # background stays


def test_author_names_are_not_in_the_listings_so_the_answer_abstains(corpus_settings):
    a = rag.ask("Who is the first author of the AsyncFlow streaming RL framework paper?", backend="extractive",
                settings=corpus_settings)
    assert a.abstained and any("author names" in n for n in a.notes)


def _scored_with_and_without(q, bonus, settings, monkeypatch):
    """The top paper's sentences scored as shipped, and with the evidence constant `bonus` at 0;
    abstention must see the same relevance either way."""
    from rag.query import evidence

    hits = search(q, k=1, settings=settings)
    shipped = score_sentences(q, hits)[0]
    monkeypatch.setattr(evidence, bonus, 0.0)
    plain = score_sentences(q, hits)[0]
    assert [s.relevance for s in shipped] == [s.relevance for s in plain]
    return shipped, plain


def test_a_question_asking_for_names_ranks_the_sentence_that_names_them_first(corpus_settings, monkeypatch):
    from rag.answer.citations import entities_in, named_in

    q = "Which models were the reasoning-derived control vectors applied to in the representation-engineering study?"
    named, plain = _scored_with_and_without(q, "NAME_BONUS", corpus_settings, monkeypatch)

    def new_names(s):
        return [n for n in entities_in(s.text) if not named_in(n, q.lower()) and not re.fullmatch(r"[A-Z]{2,4}s?", n)]

    best, best_plain = max(named, key=lambda s: s.rank), max(plain, key=lambda s: s.rank)
    assert new_names(best) and not new_names(best_plain)
    # a field acronym (LLM, RL) names nothing: a sentence holding only those is not lifted
    assert all(n.rank == p.rank for n, p in zip(named, plain) if not new_names(p))


@pytest.mark.parametrize("question,parts", [
    ("How does the teacher model the student, and what happens when the teacher is misaligned?", 2),
    ("Which base models is TÜLU 3 built on, and what RL method does it introduce?", 2),
    ("Can it carry out a long procedure reliably? What does the corpus say?", 2),
    ("Which papers study math and reasoning?", 0),
    ("What speedup does AsyncFlow report over its baseline?", 0),
])
def test_a_compound_question_is_split_into_the_questions_it_asks(question, parts):
    assert len(sub_questions(question)) == parts


def test_each_part_of_a_compound_question_brings_its_own_best_sentence(corpus_settings, monkeypatch):
    q = "What speedup does AsyncFlow report, and which storage design does it use for streaming?"
    with_parts, plain = _scored_with_and_without(q, "PART_BONUS", corpus_settings, monkeypatch)
    lifted = [s.pos for s, p in zip(with_parts, plain) if s.rank > p.rank]
    assert 1 <= len(lifted) <= len(sub_questions(q))  # one best sentence per part, per paper


def test_a_runner_up_both_retrievers_rank_high_is_kept(corpus_settings):
    hits = search(REFUSAL_Q, k=4, settings=corpus_settings)
    ranked = [replace(h, bm25_rank=None, dense_rank=None) for h in hits]
    strict = dict(budget=1000, papers=4, within=0.0, score_ratio=1.01)  # the old rule keeps only the top
    assert [s.hit.paper_id for s in select(REFUSAL_Q, ranked, **strict, agree=3)] == [hits[0].paper_id]
    ranked[2] = replace(ranked[2], bm25_rank=3, dense_rank=2)
    ranked[3] = replace(ranked[3], bm25_rank=1, dense_rank=4)  # one list alone is not agreement
    kept = [s.hit.paper_id for s in select(REFUSAL_Q, ranked, **strict, agree=3)]
    assert kept == [hits[0].paper_id, hits[2].paper_id]
    assert len(select(REFUSAL_Q, ranked, **strict, agree=0)) == 1
