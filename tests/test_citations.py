"""Citation markers as small models really write them, and the support check."""

from __future__ import annotations

import pytest

from rag.answer.citations import (abbreviates, answer_sentences, entities_in, expanded_acronyms, missing_numbers, name_markers,
                                  parse_markers, short_name, supports)

# Recorded shapes of SmolLM2 / llama3 outputs (3 numbered sources).
@pytest.mark.parametrize("raw,cited,removed", [
    ("RL helps [1].", [1], []),
    ("RL helps [1, 2].", [1, 2], []),
    ("RL helps [1][3].", [1, 3], []),
    ("RL helps 【2】.", [2], []),
    ("According to Source 2, RL helps.", [2], []),
    ("RL helps (Source 3).", [3], []),
    ("RL helps [Source 1].", [1], []),
    ("RL helps [1-3].", [1, 2, 3], []),
    ("RL helps [4].", [], [4]),
    ("RL helps [2][7][0].", [2], [7, 0]),
    ("RL helps.", [], []),
])
def test_marker_shapes(raw, cited, removed):
    m = parse_markers(raw, n_sources=3)
    assert (m.cited, m.removed) == (cited, removed)
    assert "[" not in m.text and "Source" not in m.text and "【" not in m.text
    assert m.text.startswith(("RL helps", "According to"))


def test_marker_after_full_stop_stays_with_its_sentence():
    assert answer_sentences("It uses 2,000 benchmarks. [1] It covers 148 countries. [2]") == \
        ["It uses 2,000 benchmarks. [1]", "It covers 148 countries. [2]"]


EVIDENCE = ("This position paper examines over 2,000 multilingual (non-English) benchmarks from 148 countries, "
            "published between 2021 and 2024.")


def test_a_marker_that_starts_the_next_sentence_as_its_subject_stays_there():
    assert answer_sentences("Both use analogies [1]. [2] reports a 10% gain.") == [
        "Both use analogies [1].", "[2] reports a 10% gain."]


NAMES = {1: "Thought Propagation", 2: "MetaLadder"}


@pytest.mark.parametrize("raw,text", [
    # a marker used as a noun keeps its paper's name once the marker is taken out
    ("[1] and [2] both use analogous problems.", "Thought Propagation and MetaLadder both use analogous problems."),
    ("Yes, [2] restates the problem.", "Yes, MetaLadder restates the problem."),
    ("TP solves related problems, while [2] recalls them.", "TP solves related problems, while MetaLadder recalls them."),
    ("Accuracy rises 10%, according to [2].", "Accuracy rises 10%, according to MetaLadder."),
    ("It is worth it, as suggested by [2].", "It is worth it, as suggested by MetaLadder."),
    ('"MetaLadder" by [Author] restates the problem.', '"MetaLadder" restates the problem.'),  # an unfilled slot
    ("[2]'s gain is 10%.", "MetaLadder's gain is 10%."),
    # a marker as a citation stays a citation
    ("Accuracy rises 10% [2] and cost falls [1].", "Accuracy rises 10% and cost falls."),
    ("[1] Thought Propagation: An Analogical Approach", "Thought Propagation: An Analogical Approach"),
    ("MetaLadder [2] restates the problem.", "MetaLadder restates the problem."),
])
def test_markers_used_as_nouns_name_their_paper(raw, text):
    assert parse_markers(name_markers(raw, NAMES), 2).text == text


def test_a_short_name_is_the_title_before_its_colon_and_a_question_is_quoted():
    assert short_name("MetaLadder: Ascending Mathematical Solution Quality") == "MetaLadder"
    assert short_name("Are Reasoning Models More Prone to Hallucination?") == \
        "“Are Reasoning Models More Prone to Hallucination?”"


def test_supported_sentence():
    assert supports(EVIDENCE, "The paper examines over 2,000 multilingual benchmarks from 148 countries.").ok


def test_invented_number_is_unsupported():
    s = supports(EVIDENCE, "The paper examines 3,500 multilingual benchmarks.")
    assert not s.ok and "3,500" in s.reason


@pytest.mark.parametrize("sentence, evidence", [
    ("It annotated 8,000 educational interactions.", "a dataset of 8k educational interactions"),
    ("It was tested on 8 reasoning tasks.", "experiments on eight reasoning tasks"),
    ("They release 1,500,000 samples.", "we release 1.5 million samples"),
    ("The 7B model.", "a 7B model"),
    ("It examined 2000 benchmarks.", "over 2,000+ benchmarks"),
])
def test_a_number_in_another_form_is_the_same_number(sentence, evidence):
    assert missing_numbers(sentence, evidence) == []


def test_a_different_number_is_missing_in_every_form():
    assert missing_numbers("It annotated 80,000 interactions and 9 tasks.", "8k interactions, eight tasks") == ["80,000", "9"]
    assert missing_numbers("Scores 1,2 and 12.", "a list: 12") == ["1,2"]


def test_invented_name_is_unsupported():
    s = supports(EVIDENCE, "The benchmarks were collected by OpenAI in multilingual settings.")
    assert not s.ok and "OpenAI" in s.reason


def test_unrelated_sentence_is_unsupported():
    assert not supports(EVIDENCE, "The capital of France is Paris.").ok


SPEEDUP = ("We present AsyncFlow, an asynchronous streaming RL framework. Experiments show that AsyncFlow "
           "achieves an average of 1.59 throughput improvement over the state-of-the-art baseline.")


def test_possessive_s_is_not_a_content_word():
    # "AsyncFlow's" once counted an "s" the abstract lacks, and the backed sentence fell under 60%
    assert supports(SPEEDUP, "AsyncFlow's throughput improvement is 1.59 over the baseline.").ok


ROBOT = ("We introduce RoboFuME, a reset-free fine-tuning system. We leverage pre-trained vision language "
         "models (VLMs) to build a robust reward classifier for providing reward signals.")


def test_compound_of_a_name_and_a_plain_word_needs_only_the_name():
    assert supports(ROBOT, "RoboFuME uses a VLM-based reward classifier.").ok


def test_compound_with_an_absent_name_is_still_unsupported():
    s = supports(ROBOT, "RoboFuME uses a CLIP-based reward classifier.")
    assert not s.ok and "CLIP-based" in s.reason
    assert not supports(ROBOT, "RoboFuME uses GPT-4 as a reward classifier.").ok


def test_a_fields_acronym_is_not_a_name():
    # "built on pre-trained VLMs" names no model; "Mistral-7B-Instruct" and "GPUs" do
    assert entities_in("RoboFuME builds its reward classifier on pre-trained VLMs and LLMs for RL.") == ["RoboFuME"]
    assert entities_in("We apply control vectors to Mistral-7B-Instruct on 8 GPUs.") == ["Mistral-7B-Instruct", "GPUs"]


def test_digits_inside_a_name_are_not_a_number_the_abstract_states():
    abstract = "We distill o1 traces into Qwen2.5-32B and test on GSM8K; a sim0.01% subset of weights suffices."
    assert missing_numbers("1 human annotator wrote the data.", abstract) == ["1"]  # "o1" states no 1
    assert missing_numbers("It trains a 32B model on 8K problems.", abstract) == ["8K"]  # GSM8K is a name
    assert not missing_numbers("A 0.01% subset of the weights suffices.", abstract)  # LaTeX "\sim0.01%"
    assert not missing_numbers("They fine-tune Qwen2.5-32B.", abstract)


def test_a_spelled_out_acronym_names_nothing_new():
    said = "It was trained with Group Relative Policy Optimization on Llama models from Meta."
    assert expanded_acronyms(said, ["GRPO", "LLMs"]) == {"Group", "Relative", "Policy", "Optimization"}
    assert not expanded_acronyms(said, ["DPO", "PPO"])  # no run of capitals spells those


@pytest.mark.parametrize("name,text,expected", [
    ("CoT", "Prolog generation against chain-of-thought on GSM8K", True),
    ("RL", "trained with reinforcement learning", True),
    ("CoT", "Prolog generation on GSM8K", False),
    ("GSM8K", "grade-school math 8k", False),  # a benchmark's name is not an acronym of the question's words
])
def test_an_acronym_of_words_the_text_spells_out(name, text, expected):
    assert abbreviates(name, text) is expected


@pytest.mark.parametrize("name,named", [("o1-style", True), ("VLM-based", True), ("Llama2-chat-7B", True),
                                        ("o3-style", False), ("ARC-AGI-2", False), ("Llama3-chat-7B", False),
                                        ("GPT-4-turbo", False)])
def test_a_name_compounded_with_a_plain_word_is_named_by_the_name(name, named):
    from rag.query.evidence import _named_in, _squash
    text = "this paper reproduces o1-like reasoning systems with vlms and llama2-chat-7b.".lower()
    assert _named_in(name, text, _squash(text)) is named


@pytest.mark.parametrize("question,missing", [
    # the maker of a model the evidence names adds no subject of its own
    ("Which papers reproduce an OpenAI o1-style reasoning system?", []),
    ("Did anyone fine-tune Meta's Llama2-chat-7B?", []),
    ("Which works evaluate Zhipu's open Llama2-chat-7B models?", []),  # a possessive names the maker
    # a capitalised word before another continues one name, which the evidence must hold whole
    ("How does Direct Nash Optimization compare with o1-like systems?", ["Nash"]),
    ("Does the paper evaluate on OpenAI GPT-4?", ["GPT-4", "OpenAI"]),  # the model itself is missing
])
def test_names_the_evidence_never_mentions(question, missing):
    from rag.query.evidence import Source, unmatched_names
    from rag.query.retrieval import Hit
    abstract = "We reproduce o1-like reasoning systems and fine-tune Llama2-chat-7B with direct preference optimization."
    hit = Hit("p1", "Imitate, Explore", 1.0, "p1:0", abstract, {"abstract": abstract})
    assert unmatched_names(question, [Source(1, hit)]) == missing


@pytest.mark.parametrize("question,missing", [
    # a family a kind resembles need not be named; a versioned model must
    ("Which study probes BERT-like encoder-only models on logic?", []),
    ("Which study reproduces an o3-style reasoning system?", ["o3-style"]),
    # one of several alternatives is enough, but not when the evidence names none of them
    ("Which papers report results on benchmarks such as OpenBookQA or GSM8K?", []),
    ("Which papers report results on OpenBookQA or HellaSwag?", ["HellaSwag", "OpenBookQA"]),
    ("Which papers report results on OpenBookQA and GSM8K?", ["OpenBookQA"]),
])
def test_names_a_question_offers_as_kinds_or_alternatives(question, missing):
    from rag.query.evidence import Source, unmatched_names
    from rag.query.retrieval import Hit
    abstract = "Encoder-only transformer language models reach 90% on GSM8K; o1-like systems are reproduced."
    hit = Hit("p1", "Logic probes", 1.0, "p1:0", abstract, {"abstract": abstract})
    assert unmatched_names(question, [Source(1, hit)]) == missing
