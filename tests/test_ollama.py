"""The Ollama backend against a loopback server speaking Ollama's REST API (tests/ollama_fake.py).

The real Ollama server cannot be installed here; the fake builds its responses from the
`ollama` client's own types, so the unmodified client and llama-index's Ollama LLM talk to it."""

from __future__ import annotations

import re
import socket

import pytest

import rag
from rag.cli import main as cli_main
from rag.answer.pipeline import prepare
from rag.answer.prompts import NOT_FOUND
from rag.errors import BackendError, BackendUnavailable, ContextOverflow

from ollama_fake import FakeOllama

Q = "How many multilingual benchmarks did the position paper on multilingual evaluation examine?"


def echo_first_source(request: dict) -> str:
    """Answer like a good model: quote the first sentence under source [1], cite it."""
    user = request["messages"][-1]["content"]
    first = re.search(r"^\[1\] .*\n(.+)$", user, re.M).group(1)
    return f"{first.split('. ')[0].rstrip('.')} [1]."


@pytest.fixture
def fake():
    with FakeOllama(models=["llama3.2:3b"], reply=echo_first_source) as server:
        yield server


def _settings(corpus_settings, fake, **kw):
    return corpus_settings.with_overrides(ollama_host=fake.url, ollama_model="llama3.2:3b", **kw)


@pytest.mark.parametrize("stream", [True, False])
def test_happy_path_streaming_and_not(corpus_settings, fake, stream):
    settings = _settings(corpus_settings, fake)
    events = list(rag.ask_stream(Q, backend="ollama", settings=settings, stream=stream))
    answer = events[-1][1]
    assert answer.backend == "ollama" and answer.model == "llama3.2:3b" and not answer.abstained
    assert answer.citations[0].title.startswith("The Bitter Lesson") and answer.sentences[0].supported
    assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
    tokens = [p for k, p in events if k == "token"]
    assert len(tokens) > 3 if stream else len(tokens) == 1
    sent = fake.chat_requests[-1]
    assert sent["stream"] is stream
    assert sent["options"]["num_ctx"] == settings.ollama_num_ctx
    assert sent["options"]["num_predict"] == settings.max_answer_tokens


def test_auto_prefers_a_reachable_ollama(corpus_settings, fake):
    answer = rag.ask(Q, settings=_settings(corpus_settings, fake))
    assert answer.backend == "ollama" and not answer.notes


def test_model_not_pulled(corpus_settings, fake):
    settings = _settings(corpus_settings, fake).with_overrides(ollama_model="qwen2.5:7b")
    with pytest.raises(BackendUnavailable, match=r"ollama pull qwen2.5:7b"):
        rag.ask(Q, backend="ollama", settings=settings)
    auto = rag.ask(Q, settings=settings)  # auto falls back to the embedded model and says why
    assert auto.backend == "llamacpp" and any("ollama pull" in n for n in auto.notes)


def test_model_removed_between_probe_and_chat(corpus_settings, fake):
    settings = _settings(corpus_settings, fake)
    from rag.llm.ollama import OllamaBackend

    backend = OllamaBackend.connect(settings)
    fake.models = []
    with pytest.raises(BackendUnavailable, match="ollama pull"):
        list(backend.stream([{"role": "user", "content": "hi"}], 10))


def test_server_error(corpus_settings, fake):
    fake.fail_status = 500
    with pytest.raises(BackendError, match="HTTP 500"):
        rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake))


def test_an_error_line_inside_the_stream_is_named_not_called_http_minus_one(corpus_settings, fake):
    fake.stream_error = "llama runner process has terminated: signal: killed"
    with pytest.raises(BackendError, match="failed mid-answer: llama runner process has terminated") as e:
        list(rag.ask_stream(Q, backend="ollama", settings=_settings(corpus_settings, fake), stream=True))
    assert "-1" not in str(e.value)


def test_https_to_plain_http_ollama_says_use_http(corpus_settings, fake):
    settings = _settings(corpus_settings, fake).with_overrides(ollama_host=fake.url.replace("http://", "https://"))
    with pytest.raises(BackendUnavailable, match="does not speak HTTPS.*use http://"):
        rag.ask(Q, backend="ollama", settings=settings)


def test_connection_refused_names_the_fix(corpus_settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    settings = corpus_settings.with_overrides(ollama_host=f"http://127.0.0.1:{port}")
    with pytest.raises(BackendUnavailable, match="ollama serve"):
        rag.ask(Q, backend="ollama", settings=settings)


def test_slow_server_hits_the_timeout(corpus_settings, fake):
    fake.delay = 10
    settings = _settings(corpus_settings, fake, ollama_timeout=1.0)
    with pytest.raises(BackendError, match="RAG_OLLAMA_TIMEOUT"):
        rag.ask(Q, backend="ollama", settings=settings)


def test_truncated_prompt_is_an_error_not_an_answer(corpus_settings, fake):
    settings = _settings(corpus_settings, fake)
    fake.prompt_eval_count = settings.ollama_num_ctx  # the model's own count filled the window: cut
    with pytest.raises(ContextOverflow, match="RAG_OLLAMA_NUM_CTX"):
        rag.ask(Q, backend="ollama", settings=settings)


def test_a_cached_prompt_counted_small_is_an_answer_not_a_truncation(corpus_settings, fake):
    fake.prompt_eval_count = 5  # Ollama before 0.30.2 counted only the tokens not in its cache
    answer = rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake))
    assert not answer.abstained and answer.citations


def test_a_stream_that_ends_before_done_is_an_error_not_the_answer(corpus_settings, fake):
    fake.finish = False
    with pytest.raises(BackendError, match="stopped before its answer was done"):
        list(rag.ask_stream(Q, backend="ollama", settings=_settings(corpus_settings, fake), stream=True))


def test_prompt_is_packed_to_fit_num_ctx(corpus_settings, fake):
    settings = _settings(corpus_settings, fake, ollama_num_ctx=1024, sources_in_prompt=6)
    answer = rag.ask(Q, backend="ollama", settings=settings)
    assert not answer.abstained
    assert answer.prompt_tokens + settings.max_answer_tokens <= 1024


def test_model_declining_becomes_an_abstention_when_the_evidence_is_weak(corpus_settings, fake):
    fake.reply = "I'm sorry, but the sources do not mention that."
    settings = _settings(corpus_settings, fake, abstain_declined_below=2.0)  # every evidence counts as weak
    answer = rag.ask(Q, backend="ollama", settings=settings)
    assert answer.abstained and answer.citations == []


def test_model_declining_strong_evidence_quotes_it_instead(corpus_settings, fake):
    fake.reply = "NOT FOUND"
    answer = rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake, abstain_declined_below=0.0))
    assert not answer.abstained and answer.citations[0].title.startswith("The Bitter Lesson")
    assert not any(s.origin == "model" for s in answer.sentences)  # nothing attributed to the model
    assert any("closest evidence is quoted" in n for n in answer.notes)


@pytest.mark.parametrize("weak", [True, False])
def test_model_declining_a_multi_paper_question(corpus_settings, fake, weak):
    # a 1.5B model declines "which papers …" as a whole; strong evidence still answers paper by
    # paper, weak evidence (a topic no paper covers) abstains
    fake.reply = "The sources do not provide any information about that."
    settings = _settings(corpus_settings, fake, abstain_declined_below=2.0 if weak else 0.0)
    answer = rag.ask("Which papers teach language models to refuse questions they do not know the answer to?",
                     backend="ollama", settings=settings)
    assert answer.kind == "multi" and answer.abstained == weak
    assert weak or (len(answer.citations) >= 2 and any("closest evidence is quoted" in n for n in answer.notes))


def test_an_unbacked_answer_about_what_no_abstract_mentions_abstains(corpus_settings, fake):
    fake.reply = "The position paper used a KL penalty coefficient of 0.05 [1]."  # invented
    answer = rag.ask("What KL penalty coefficient did the position paper on multilingual benchmarks use?",
                     backend="ollama", settings=_settings(corpus_settings, fake))
    assert answer.abstained and answer.citations == []
    assert [s.text for s in answer.unverified] and not any(s.supported for s in answer.unverified)
    assert any("never mention" in n and "coeffici" in n for n in answer.notes)


def test_an_unbacked_answer_over_evidence_that_holds_the_answer_quotes_it(corpus_settings, fake):
    fake.reply = "The position paper examined over 2,000 benchmarks curated by UNESCO [1]."  # garbled: a foreign name
    answer = rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake))
    assert not answer.abstained and answer.citations[0].title.startswith("The Bitter Lesson")
    assert "2,000" in answer.text and "UNESCO" not in answer.text and answer.unverified
    assert any("best evidence is quoted" in n for n in answer.notes)


def test_an_unbacked_answer_with_a_number_no_abstract_states_abstains(corpus_settings, fake):
    fake.reply = "The position paper examined exactly 7,315 benchmarks from 96 countries [1]."  # invented
    answer = rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake))
    assert answer.abstained and answer.citations == [] and "7,315" not in answer.text
    assert [s.text for s in answer.unverified]
    assert any("7,315" in n for n in answer.notes)


def test_an_answer_without_the_quantity_asked_for_abstains(corpus_settings, fake):
    fake.reply = "The position paper on multilingual evaluation examined multilingual benchmarks [1]."  # restates
    answer = rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake))
    assert answer.abstained and answer.citations == []
    assert any("states none" in n for n in answer.notes)


@pytest.mark.parametrize("reply,names", [("The study pretrained a model on 4 trillion tokens [1].", False),
                                         ("The study pretrained OLMo2-7B on 4 trillion tokens [1].", True)])
def test_an_answer_without_the_name_asked_for_abstains(corpus_settings, fake, reply, names):
    fake.reply = reply
    answer = rag.ask("In the study of reflection during pre-training, which model was pretrained to show "
                     "self-correction of corrupted chains of thought?", backend="ollama",
                     settings=_settings(corpus_settings, fake))
    assert answer.kind == "fact" and answer.abstained != names
    assert names or any("asks for a name" in n for n in answer.notes)
    assert not names or "OLMo2-7B" in answer.text


RL_PRETRAINING = ("List the benchmarks used to evaluate reinforcement pretraining in the papers that apply RL "
                  "during pretraining.")
REFUSAL_COUNTS = ("List the datasets used to check refusal-aware tuning in the papers that teach models to refuse "
                  "unknown questions, and how many questions each holds.")


@pytest.mark.parametrize("question,reply,why", [
    # no name the question does not hold: the model found none
    (RL_PRETRAINING, "The benchmarks used to evaluate reinforcement pretraining in these papers are [1] and [2].",
     "asks for a name"),
    (RL_PRETRAINING, "Reinforcement active pretraining improves Qwen3-4B-Base on MMLU-Pro and SuperGPQA [1].", None),
    # asked for names and a count, an unbacked answer with a number no abstract states is a guess,
    # as for a fact question; one the abstracts back stands
    (REFUSAL_COUNTS, "The papers check it on 7,315 questions of the FactQuest-9 suite [1][2].",
     "none of the model's sentences could be verified"),
    (REFUSAL_COUNTS, "They teach models to refuse questions beyond their knowledge [1][2].", None)])
def test_a_multi_paper_question_asking_for_names_gets_the_fact_checks(corpus_settings, fake, question, reply, why):
    fake.reply = reply
    answer = rag.ask(question, backend="ollama", settings=_settings(corpus_settings, fake))
    assert answer.kind == "multi" and answer.abstained == bool(why)
    assert not why or any(why in n for n in answer.notes)
    assert why or any(s.origin == "model" and s.supported for s in answer.sentences)  # the backed answer leads


LIMITATIONS = "How many limitations of multilingual evaluation does the position paper on multilingual benchmarks highlight?"


@pytest.mark.parametrize("count,invented", [("9", True), ("6", False)])
def test_a_quantity_no_abstract_states_abstains_beside_a_backed_sentence(corpus_settings, fake, count, invented):
    # the backed sentence states no number; the quantity asked for is only in the unbacked one
    fake.reply = (f"The position paper highlights limitations in current multilingual evaluation practices [1]. "
                  f"It counts {count} such limitations [1].")
    answer = rag.ask(LIMITATIONS, backend="ollama", settings=_settings(corpus_settings, fake))
    assert answer.kind == "fact" and answer.abstained == invented
    assert invented == any("the only one the model gave (9)" in n for n in answer.notes)
    assert not invented or [s.text for s in answer.unverified if "9" in s.text]  # the guess is shown apart


REFUSING = "Which papers teach language models to refuse questions they do not know the answer to?"
R_TUNING = "R-Tuning: Teaching Large Language Models to Refuse Unknown Questions"


@pytest.mark.parametrize("reply,threshold,abstains", [
    # only the nearest paper's name, or generalities nothing backs: over weak evidence, off topic
    (f"[1] {R_TUNING}", 2.0, True),
    ("These papers study this widely used technique in great depth across many settings [1][2].", 2.0, True),
    ("These papers study this widely used technique in great depth across many settings [1][2].", 0.0, False),
    # a backed claim about a paper stands, however weak the evidence
    ("R-Tuning constructs refusal-aware data to tune LLMs to refrain from responding to questions beyond their "
     "parametric knowledge [1].", 2.0, False)])
def test_a_papers_answer_backing_nothing_abstains_over_weak_evidence(corpus_settings, fake, reply, threshold, abstains):
    fake.reply = reply
    answer = rag.ask(REFUSING, backend="ollama",
                     settings=_settings(corpus_settings, fake, abstain_unbacked_below=threshold))
    assert answer.kind == "multi" and answer.abstained == abstains
    assert abstains == any("beyond naming papers" in n for n in answer.notes)
    assert abstains or any(c.title == R_TUNING for c in answer.citations)


@pytest.mark.parametrize("question,abstains", [
    (REFUSING, False),  # both retrievers rank R-Tuning first
    # off topic: each retriever's nearest paper is another
    ("Which papers use reinforcement learning to optimise traffic signal control at city intersections?", True)])
def test_over_middling_evidence_a_papers_answer_backing_nothing_needs_the_retrievers_to_agree(
        corpus_settings, fake, question, abstains):
    fake.reply = "[1] and [2] study this."
    answer = rag.ask(question, backend="ollama", settings=_settings(
        corpus_settings, fake, abstain_unbacked_below=0.0, abstain_unagreed_below=2.0))
    assert answer.kind == "multi" and answer.abstained == abstains
    assert abstains == any("disagreeing on the top paper" in n for n in answer.notes)


@pytest.mark.parametrize("reply,declined", [("[1] [2]", False), ("No, the collection does not include such work.", True)])
def test_bare_citations_name_papers_and_a_collection_wide_no_declines(corpus_settings, fake, reply, declined):
    """Asked "which papers …", "[1] [2]" points at two papers, as their titles would; "the
    collection does not include …" declines."""
    fake.reply = reply
    answer = rag.ask(REFUSING, backend="ollama", settings=_settings(
        corpus_settings, fake, abstain_unbacked_below=0.0, abstain_unagreed_below=0.0, abstain_declined_below=2.0))
    assert answer.kind == "multi" and answer.abstained == declined
    assert declined == any("found no answer" in n for n in answer.notes)


def test_a_which_paper_answer_naming_the_paper_stands_over_weak_evidence(corpus_settings, fake):
    """Asked "which paper …", naming the paper is the answer, however weakly the user's own
    description matches its abstract."""
    fake.reply = f"[1] {R_TUNING}"
    answer = rag.ask("Which paper teaches language models to refuse questions they do not know the answer to?",
                     backend="ollama", settings=_settings(corpus_settings, fake, abstain_unbacked_below=2.0))
    assert answer.kind == "which_paper" and not answer.abstained
    assert answer.citations[0].title == R_TUNING


@pytest.mark.parametrize("weak", [True, False])
def test_an_answer_that_only_restates_the_question_counts_as_declined(corpus_settings, fake, weak):
    question = "What did the position paper on multilingual evaluation conclude about translated benchmarks?"
    fake.reply = "The position paper on multilingual evaluation concluded about translated benchmarks [1]."
    settings = _settings(corpus_settings, fake, abstain_declined_below=2.0 if weak else 0.0)
    answer = rag.ask(question, backend="ollama", settings=settings)
    assert answer.kind == "fact" and answer.abstained == weak
    assert not any(s.origin == "model" for s in answer.sentences)  # the echo never leads
    assert weak or answer.citations[0].title.startswith("The Bitter Lesson")


def test_a_negative_answer_to_a_yes_no_question_is_not_an_echo(corpus_settings, fake):
    question = "Does the position paper on multilingual evaluation find that translated benchmarks suffice?"
    fake.reply = "The position paper on multilingual evaluation does not find that translated benchmarks suffice [1]."
    answer = rag.ask(question, backend="ollama", settings=_settings(corpus_settings, fake, abstain_declined_below=2.0))
    assert answer.kind == "fact" and not answer.abstained  # an echo would count as declining


@pytest.mark.parametrize("pointer", ["This is described in [1].", "This is supported by [1].",
                                     "This benchmark collection is described in [1].", "See [1] for details."])
def test_a_sentence_that_only_points_at_a_source_cites_for_the_one_before(corpus_settings, fake, pointer):
    fake.reply = f"The position paper examined over 2,000 multilingual benchmarks. {pointer}"
    answer = rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake))
    lead = [s for s in answer.sentences if s.origin == "model"]
    assert [s.cites for s in lead] == [[1]] and lead[0].supported and not lead[0].attributed
    assert answer.unverified == [] and answer.model_supported_share == 1.0


def test_a_source_number_used_as_a_subject_is_shown_as_the_papers_name(corpus_settings, fake):
    fake.reply = "[1] examines over 2,000 multilingual benchmarks."
    answer = rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake))
    lead = [s for s in answer.sentences if s.origin == "model"]
    title = answer.citations[0].title
    assert lead[0].supported and lead[0].cites == [1] and lead[0].text.startswith(title.split(":")[0])
    assert answer.text.startswith(lead[0].text)  # not "examines over 2,000 …" without its subject


@pytest.mark.parametrize("question,reply", [
    ("Are there papers that teach language models to refuse questions they do not know the answer to?",
     "Yes, there are papers that teach language models to refuse questions they do not know the answer to [1]."),
    ("Has anyone taught language models to refuse questions they do not know the answer to?",  # uncited
     "Yes, language models have been taught to refuse questions they do not know the answer to."),
])
def test_a_yes_restating_a_question_about_what_exists_is_not_a_claim(corpus_settings, fake, question, reply):
    """Asked "are there papers that …", "Yes, there are papers that …" restates the question: the
    evidence blocks answer it, and nothing unverifiable is left over."""
    fake.reply = reply
    answer = rag.ask(question, backend="ollama", settings=_settings(corpus_settings, fake, abstain_unbacked_below=0.0))
    assert answer.kind == "multi" and not answer.abstained
    assert answer.model_sentences == [] and answer.citations
    assert not any("could be verified" in n for n in answer.notes)  # nothing was checked, nothing failed


def test_a_yes_answering_whether_something_holds_is_a_claim(corpus_settings, fake):
    question = "Does the position paper on multilingual evaluation find that translated benchmarks suffice?"
    fake.reply = "Yes, the position paper on multilingual evaluation finds that translated benchmarks suffice [1]."
    answer = rag.ask(question, backend="ollama", settings=_settings(corpus_settings, fake, abstain_declined_below=0.0))
    # the "Yes" is what the answer claims: it is checked, not dropped as a restatement
    assert [s.text[:4] for s in answer.model_sentences] == ["Yes,"]


def test_a_which_paper_answer_that_echoes_the_question_shows_the_cited_paper(corpus_settings, fake):
    question = "Which paper proposes an asynchronous streaming RL framework for LLM post-training?"
    fake.reply = "The paper that proposes an asynchronous streaming RL framework for LLM post-training is [1]."
    answer = rag.ask(question, backend="ollama", settings=_settings(corpus_settings, fake))
    assert answer.kind == "which_paper" and not answer.abstained
    assert answer.citations[0].title.startswith("AsyncFlow") and answer.citations[0].title in answer.text
    assert answer.unverified == [] and not any(s.origin == "model" for s in answer.sentences)


def test_an_unbacked_answer_naming_what_the_top_paper_never_names_abstains(corpus_settings, fake):
    fake.reply = "The position paper evaluated its benchmarks with GSM8K and HumanEval."  # borrowed names
    answer = rag.ask("What evaluation suites did the position paper on multilingual benchmarks rely on?",
                     backend="ollama", settings=_settings(corpus_settings, fake))
    assert answer.kind == "fact" and answer.abstained and answer.citations == []
    assert any("never names" in n for n in answer.notes)


@pytest.mark.parametrize("reply", ["The position paper examined [2000] benchmarks.",  # a number in brackets
                                   "The position paper examined benchmarks from twice as many countries as before [1]."])
def test_a_quantity_written_without_plain_digits_is_not_a_missing_number(corpus_settings, fake, reply):
    fake.reply = reply
    answer = rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake))
    assert not any("states none" in n for n in answer.notes)


def test_a_number_copied_in_another_form_is_backed(corpus_settings, fake):
    fake.reply = "The position paper examined more than two thousand benchmarks from 148 countries [1]."
    answer = rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake))
    assert not answer.abstained and any(s.origin == "model" and s.supported for s in answer.sentences)


def test_an_unbacked_multi_paper_answer_still_stands_on_the_evidence(corpus_settings, fake):
    fake.reply = "Both papers use 7,315 invented benchmarks [1][2]."
    answer = rag.ask("Which papers teach language models to refuse questions they do not know the answer to?",
                     backend="ollama", settings=_settings(corpus_settings, fake))
    assert answer.kind == "multi" and not answer.abstained and len(answer.citations) >= 2
    assert answer.unverified and not any(s.origin == "model" for s in answer.sentences)


def test_a_multi_paper_answer_that_only_names_the_papers_leads_with_their_blocks(corpus_settings, fake):
    def titles_only(request: dict) -> str:
        heads = re.findall(r"^\[(\d)\] (.+?)(?: \((?:published|organisation|\d+ authors|\d+ upvotes)[^\n]*)?$",
                           request["messages"][-1]["content"], re.M)
        return " ".join(f"[{n}] {title}" for n, title in heads)

    fake.reply = titles_only
    answer = rag.ask("Which papers teach language models to refuse questions they do not know the answer to?",
                     backend="ollama", settings=_settings(corpus_settings, fake))
    assert not answer.abstained and len(answer.citations) >= 2
    assert not any(s.origin == "model" for s in answer.sentences)  # no run-together titles lead
    assert all(f"[{c.n}]" in answer.text for c in answer.citations)


def test_ollama_is_offered_the_not_found_sentinel(corpus_settings, fake):
    rag.ask(Q, backend="ollama", settings=_settings(corpus_settings, fake))
    assert NOT_FOUND in fake.chat_requests[-1]["messages"][-1]["content"]


def test_cli_exit_codes(corpus_settings, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(corpus_settings.data_dir))
    from rag.settings import get_settings

    get_settings.cache_clear()
    assert cli_main(["ask", Q, "--backend", "ollama"]) == 4  # Ollama at a closed port
    assert "ollama serve" in capsys.readouterr().err
    assert cli_main(["ask", "", "--backend", "extractive"]) == 2
    assert cli_main(["ask", Q, "--backend", "extractive", "--json"]) == 0


def test_ollama_embeddings_option_indexes_and_searches(small_settings):
    """RAG_EMBED_BACKEND=ollama: the same index and query path, vectors from Ollama's /api/embed."""
    from rag.index.build import build_index
    from rag.index.build import fingerprint

    with FakeOllama(models=["all-minilm"]) as server:
        settings = small_settings.with_overrides(embed_backend="ollama", ollama_embed_model="all-minilm",
                                                 ollama_host=server.url)
        report = build_index(settings)
        assert report.added == 13 and fingerprint(settings) != fingerprint(small_settings)
        assert any(path == "/api/embed" for _, path, _ in server.requests)
        hits = rag.search("Grading Handwritten Engineering Exams with Multimodal Large Language Models",
                          k=3, mode="dense", settings=settings)
        assert hits[0].title.startswith("Grading Handwritten Engineering Exams")
        assert build_index(settings).unchanged == 13


def test_ollama_embeddings_honour_the_timeout_and_reuse_one_client(small_settings):
    """A silent embedding host must fail within RAG_OLLAMA_TIMEOUT (the `ollama` client alone waits
    forever), as one BackendError naming the fix, and the query path must not build a new client
    per question (~70 ms each)."""
    import threading
    import time

    from rag.index.embedding import query_vector
    from rag.index.llama_embedding import embed_model_for

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        settings = small_settings.with_overrides(embed_backend="ollama", ollama_timeout=1.0,
                                                 ollama_host=f"http://127.0.0.1:{listener.getsockname()[1]}")
        assert embed_model_for(settings) is embed_model_for(settings)
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="did not answer within RAG_OLLAMA_TIMEOUT=1 s"):
            query_vector(settings, "grading handwritten exams")
        assert time.monotonic() - started < 10
        with pytest.raises(BackendUnavailable, match="is not reachable.*ollama serve"):
            query_vector(settings.with_overrides(ollama_host="http://127.0.0.1:9"), "grading handwritten exams")
        with FakeOllama(models=["llama3.2:3b"]) as server, pytest.raises(BackendUnavailable, match="ollama pull all-minilm"):
            query_vector(settings.with_overrides(ollama_host=server.url), "grading handwritten exams")
    finally:
        for conn, _ in accepted:
            conn.close()
        listener.close()


def test_the_sentence_that_backs_a_claim_is_quoted_under_it(corpus_settings, fake):
    """The model reads more of a paper than its block quotes; what it draws from an unquoted
    sentence brings that sentence into the block, so the claim can be checked by eye."""
    settings = _settings(corpus_settings, fake)
    prep = prepare(Q, backend="ollama", settings=settings)
    top = prep.sources[0]
    unquoted = [s.text for s in top.sentences if s not in top.quotes(prep.shape.quotes)]
    assert unquoted, "the fixture needs a paper with more prompt sentences than quotes"
    fake.reply = f"{unquoted[0]} [1]"
    answer = rag.ask(Q, backend="ollama", settings=settings)
    assert answer.model_sentences[0].supported
    quotes = [s.text for s in answer.sentences if s.origin == "quote" and s.cites == [1]]
    assert unquoted[0] in quotes
