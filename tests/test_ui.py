"""The chat page, in-process: its handlers are driven directly against the real index, the real
MiniLM and (in one test) the real embedded LLM; the Ollama server is the loopback fake. The
HTML renderers are checked on hand-built answers carrying hostile corpus text."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import gradio as gr
import pytest

from rag.answer.pipeline import MAX_QUESTION_CHARS, Answer, Citation, Sentence, ask
from rag.corpus.listing import load_corpus
from rag.errors import BackendUnavailable, IndexMissingError, InputError, StoreError
from rag.query.retrieval import Filters
from rag.index.status import index_status
from ui import render
from ui.app import ChatPage, build_demo, launch, new_session, read_options

ROOT = Path(__file__).resolve().parent.parent
Q1 = "Which paper proposes an asynchronous streaming RL framework for LLM post-training?"
Q2 = "How much faster was its throughput than the baseline?"
Q3 = "How many multilingual benchmarks did the position paper on multilingual evaluation examine?"
EXTRACTIVE = {"backend": "extractive", "model": "", "k": 8, "date_from": "", "date_to": "", "org": ""}


# --- helpers -----------------------------------------------------------------------------------

class Markup(HTMLParser):
    """Tags, ids and in-page links of an HTML fragment, as a browser would parse them."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.links: list[str] = []
        self.attrs: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attrs |= set(attrs)
        if attrs.get("id"):
            self.ids.append(attrs["id"])
        if (attrs.get("href") or "").startswith("#"):
            self.links.append(attrs["href"][1:])


def run_turn(page: ChatPage, question: str, session=None, chat=None, **options) -> list[tuple]:
    """Every (chat, session, textbox) value the handler yields for one question."""
    opts = {**EXTRACTIVE, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gr.Warning outside a running app falls back to warnings.warn
        return list(page.respond(question, chat or [], session or new_session(), opts["backend"], opts["model"],
                                 opts["k"], opts["date_from"], opts["date_to"], opts["org"]))


def last_bubble(outputs) -> str:
    chat, _, _ = outputs[-1]
    assert chat[-1]["role"] == "assistant"
    return chat[-1]["content"]


def whole_chat(outputs) -> str:
    return "".join(m["content"] for m in outputs[-1][0])


@pytest.fixture(scope="module")
def page(corpus_settings) -> ChatPage:
    return ChatPage(corpus_settings)


# --- answering ------------------------------------------------------------------------------------

def test_question_streams_then_shows_cards_for_every_citation(page, corpus_settings):
    outputs = run_turn(page, Q1)
    assert len(outputs) >= 3, "a pending bubble, progress, then the answer"
    assert "rag-working" in outputs[0][0][-1]["content"]
    assert all(box == "" for _, _, box in outputs), "the textbox is cleared as the question is sent"
    chat, session, _ = outputs[-1]
    assert chat[0] == {"role": "user", "content": render.question_html(Q1)}
    expected = ask(Q1, backend="extractive", settings=corpus_settings)
    assert expected.citations, "the fixture question must produce citations"
    html = last_bubble(outputs)
    markup = Markup(html)
    assert {render.card_id(1, c.n) for c in expected.citations} <= set(markup.ids)
    assert html.count('class="rag-card"') == len(expected.citations)
    assert markup.links and set(markup.links) <= set(markup.ids), "every [n] points at a card on the page"
    assert "<mark" in html and "backend <b>extractive</b>" in html and 'class="rag-query"' in html
    assert session == {"history": [Q1], "turn": 1}


@pytest.mark.slow
def test_embedded_llm_answer_streams_token_by_token(corpus_settings):
    page = ChatPage(corpus_settings.with_overrides(max_answer_tokens=40))  # short: the stream is what matters
    outputs = run_turn(page, Q1, backend="llamacpp")
    streamed = [o[0][-1]["content"] for o in outputs if "rag-stream-text" in o[0][-1]["content"]]
    assert len(streamed) >= 3, "tokens arrive as separate updates"
    assert len(set(streamed)) >= 3 and len(streamed[-1]) > len(streamed[0])
    html = last_bubble(outputs)
    assert "rag-working" not in html, "the checked answer replaces the raw stream"
    assert "backend <b>llamacpp</b>" in html and corpus_settings.llamacpp_model in html and "tokens " in html and "first token" in html
    markup = Markup(html)
    assert set(markup.links) <= set(markup.ids)
    assert outputs[-1][1]["history"] == [Q1]


def test_follow_up_retrieves_with_the_earlier_question(page):
    first = run_turn(page, Q1)
    session_1 = first[-1][1]
    second = run_turn(page, Q2, session=session_1, chat=first[-1][0])
    html = last_bubble(second)
    assert "follow-up" in html
    retrieval = html.split('class="rag-query"', 1)[1].split("</details>", 1)[0]
    assert render.esc(Q1) in retrieval and render.esc(Q2) in retrieval
    assert second[-1][1] == {"history": [Q1, Q2], "turn": 2}
    assert session_1 == {"history": [Q1], "turn": 1}, "the earlier state object is not mutated"
    markup = Markup(whole_chat(second))
    assert len(markup.ids) == len(set(markup.ids)), "anchor ids are unique across turns"
    assert set(markup.links) <= set(markup.ids)
    assert any(link.startswith("rag-t2-src") for link in Markup(html).links)


def test_two_sessions_keep_separate_histories(page):
    fresh = new_session()
    a = run_turn(page, Q1, session=fresh)[-1][1]
    b = run_turn(page, Q3, session=fresh)[-1][1]
    assert fresh == new_session()
    assert a["history"] == [Q1] and b["history"] == [Q3]
    follow_b = run_turn(page, Q2, session=b)
    retrieval = last_bubble(follow_b).split('class="rag-query"', 1)[1]
    assert render.esc(Q3) in retrieval and render.esc(Q1) not in retrieval
    assert follow_b[-1][1]["history"] == [Q3, Q2] and a["history"] == [Q1]


def test_filters_from_the_settings_panel_reach_retrieval(page):
    html = last_bubble(run_turn(page, "Does RL improve traversal of hierarchical knowledge in LLMs?", org="Meta"))
    cards = html.split('class="rag-card"')[1:]
    assert cards and all("Meta" in card for card in cards)
    opts = read_options("extractive", " ", 5, "2025", "2025-03", " Meta ", page.settings)
    assert opts["filters"] == Filters(date_from="2025-01-01", date_to="2025-03-31", org="Meta")
    assert opts["model"] is None and opts["k"] == 5
    assert read_options("auto", "", 5, "", "2024-02", "", page.settings)["filters"].date_to == "2024-02-29"


@pytest.mark.parametrize("date_from, date_to, needle", [("2025-13-01", "", "not a date"), ("soon", "", "not a date"),
                                                       ("2025-06-01", "2025-01-01", "empty")])
def test_bad_dates_are_input_errors(page, date_from, date_to, needle):
    with pytest.raises(InputError, match=needle):
        read_options("extractive", "", 5, date_from, date_to, "", page.settings)
    assert needle in last_bubble(run_turn(page, Q1, date_from=date_from, date_to=date_to))


# --- errors -----------------------------------------------------------------------------------------

def test_empty_question_gives_an_error_bubble_and_a_warning(page):
    with pytest.warns(UserWarning, match="empty"):
        outputs = list(page.respond("   ", [], new_session(), *EXTRACTIVE.values()))
    chat, session, box = outputs[-1]
    assert [m["role"] for m in chat] == ["assistant"], "no user bubble for nothing"
    assert 'class="rag-error"' in chat[-1]["content"] and "the question is empty" in chat[-1]["content"]
    assert session["history"] == [] and box == ""


def test_too_long_question_is_refused_and_kept_for_editing(page):
    question = "What does the corpus say about " + "reasoning " * 120
    assert len(question) > MAX_QUESTION_CHARS
    outputs = run_turn(page, question)
    html = last_bubble(outputs)
    assert f"{len(question)} characters" in html and f"under {MAX_QUESTION_CHARS}" in html
    assert outputs[-1][2] == question, "the text goes back into the box to be shortened"


def test_ollama_down_names_the_fix_and_the_page_keeps_working(page):
    outputs = run_turn(page, Q1, backend="ollama")
    html = last_bubble(outputs)
    assert "<code>ollama serve</code>" in html and "not reachable" in html and "Backend" in html
    again = run_turn(page, Q1, session=outputs[-1][1], chat=outputs[-1][0])
    assert 'class="rag-card"' in last_bubble(again)
    assert again[-1][1] == {"history": [Q1], "turn": 2}, "the failed turn is not history"
    markup = Markup(whole_chat(again))
    assert len(markup.ids) == len(set(markup.ids))


def test_model_not_pulled_names_ollama_pull(corpus_settings):
    from ollama_fake import FakeOllama

    with FakeOllama(models=["llama3.2:3b"]) as fake:
        page = ChatPage(corpus_settings.with_overrides(ollama_host=fake.url))
        html = last_bubble(run_turn(page, Q1, backend="ollama", model="qwen3:4b"))
    assert "<code>ollama pull qwen3:4b</code>" in html


def test_ollama_answer_shows_model_and_token_counts(corpus_settings):
    from ollama_fake import FakeOllama

    with FakeOllama(reply="The position paper examined over 2,000 multilingual benchmarks [1].") as fake:
        page = ChatPage(corpus_settings.with_overrides(ollama_host=fake.url))
        outputs = run_turn(page, Q3, backend="auto")
    html = last_bubble(outputs)
    assert "backend <b>ollama</b>" in html and "model <b>llama3.2:3b</b>" in html
    assert "tokens " in html and " in → " in html
    assert set(Markup(html).links) == {render.card_id(1, 1)} and render.card_id(1, 1) in Markup(html).ids


def test_question_markup_is_shown_as_text(page):
    question = '<script>alert(1)</script><img src=x onerror="alert(2)"> multilingual benchmarks?'
    outputs = run_turn(page, question)
    html = whole_chat(outputs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html and "<img" not in html
    assert not {"script", "img"} & set(Markup(html).tags)


# --- rendering hostile corpus text --------------------------------------------------------------

EVIL_TITLE = "<script>alert('title')</script> Attention Is All You Need"
EVIL_EVIDENCE = 'We find <img src=x onerror="alert(1)"> heads & tails matter.'
EVIL_ABSTRACT = f"Intro sentence with <b>bold</b>. {EVIL_EVIDENCE} Closing </p></div><script>x()</script>."


def evil_answer(**overrides) -> Answer:
    citation = Citation(1, "p1", EVIL_TITLE, EVIL_EVIDENCE, EVIL_ABSTRACT, org='Org" onmouseover="x()',
                        date="2025-01-02", date_raw="Jan 2, 2025", authors=7, upvotes=3,
                        sources="<i>000.txt</i>")
    sentences = [Sentence("Heads <u>and</u> tails matter.", [1], True),
                 Sentence('It beats "<b>GPT-9</b>" by 50%.', [1], False, 'number 50 is not in "the" abstract'),
                 Sentence("Attention helps.", [1], True, attributed=True)]
    fields = dict(question="<q>?", text="", citations=[citation], abstained=False, backend="llamacpp",
                  model="<m>", sentences=sentences, retrieval_query="<script>q</script>", prompt_tokens=120,
                  completion_tokens=30, timings={"first_token_s": 1.234, "total_s": 2.5}, notes=["<n>"])
    return Answer(**{**fields, **overrides})


def test_renderers_escape_corpus_model_and_user_text():
    html = render.answer_html(evil_answer(), "7") + render.sources_html(evil_answer(), "7")
    markup = Markup(html)
    assert not {"script", "img", "u", "i", "q", "m", "n"} & set(markup.tags)
    assert "&lt;b&gt;GPT-9&lt;/b&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html and "&lt;m&gt;" in html
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in html
    assert not [a for a in markup.attrs if a.startswith("on")], "no event-handler attribute got through"
    assert '<mark class="rag-evidence">We find &lt;img src=x onerror=&quot;alert(1)&quot;&gt; heads &amp; tails ' \
           'matter.</mark>' in html
    assert set(markup.links) == {"rag-t7-src1"} and markup.ids.count("rag-t7-src1") == 1


def test_unsupported_and_attributed_sentences_are_marked():
    html = render.answer_html(evil_answer(), 1)
    unsupported = html.split('class="rag-sent rag-unsupported"', 1)[1]
    assert unsupported.startswith(' title="Not backed by the cited abstracts: number 50 is not in &quot;the&quot; '
                                  'abstract"')
    assert "⚠" in unsupported and "rag-unsupported-tag" in unsupported
    assert html.count("rag-unsupported-tag") == 1
    assert 'class="rag-cite rag-cite-attributed"' in html
    assert "tokens 120 in → 30 out" in html and "first token 1.23 s" in html and "2/3 model sentences backed" in html


def test_abstention_looks_different_and_lists_the_closest_papers():
    closest = [{"paper_id": "p9", "title": "<b>Near</b> miss", "score": 0.02}]
    answer = evil_answer(abstained=True, citations=[], sentences=[], closest=closest)
    html = render.answer_html(answer, 3)
    assert 'class="rag-answer rag-abstained"' in html and "Closest papers" in html
    assert "&lt;b&gt;Near&lt;/b&gt; miss" in html and "The corpus does not say." in html
    assert render.sources_html(answer, 3) == ""
    assert "rag-abstained" not in render.answer_html(evil_answer(), 3)
    assert "rag-unverified" not in html


def test_an_abstention_keeps_the_models_unbackable_guess_collapsed():
    guess = Sentence("The coefficient was <0.01>.", [1], False, "number 0.01 is not in the abstract")
    html = render.answer_html(evil_answer(abstained=True, citations=[], sentences=[], unverified=[guess]), 4)
    collapsed = html.split('<details class="rag-unverified">', 1)[1]
    assert "&lt;0.01&gt;" in collapsed and "rag-unsupported-tag" in collapsed
    assert "The corpus does not say." in html.split("<details", 1)[0]


def test_evidence_missing_from_the_abstract_is_still_shown():
    html = render.highlight("An abstract <x>.", "A sentence that is <not> there.")
    assert html.startswith('<mark class="rag-evidence">A sentence that is &lt;not&gt; there.</mark>')
    assert html.endswith("An abstract &lt;x&gt;.")


def test_error_html_names_kind_and_fix():
    html = render.error_html(BackendUnavailable("Ollama is down — start it with `ollama serve` <now>"))
    assert "<code>ollama serve</code>" in html and "&lt;now&gt;" in html and "Backend" in html
    assert "Re-index" in render.error_html(IndexMissingError("no index; run `python -m rag index`"))
    assert "ValueError: bad &lt;x&gt;" in render.error_html(ValueError("bad <x>"))
    from rag.index.lock import IndexBusyError  # a wait, not a failure: not titled like a broken store
    assert render._error_title(IndexBusyError("another index run")) != render._error_title(StoreError("broken"))


# --- index status, re-index, start-up ----------------------------------------------------------

def test_status_html_shows_the_live_index(corpus_settings, tmp_path):
    st = index_status(corpus_settings)
    html = ChatPage(corpus_settings).status()
    for value in (st.papers, st.chunks, st.fingerprint, st.built_at):
        assert f"<dd>{value}</dd>" in html
    assert st.papers == 275
    missing = ChatPage(corpus_settings.with_overrides(data_dir=tmp_path / "none")).status()
    assert "No index yet" in missing and "Re-index" in missing


class ProgressRecorder:
    """Stands in for gr.Progress: records every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))


def test_reindex_button_reports_progress_and_refreshes_status(small_settings):
    papers = len(load_corpus(small_settings.seed_dir))
    page = ChatPage(small_settings)
    recorder = ProgressRecorder()
    status, report = page.reindex(False, progress=recorder)
    assert f"<dt>Papers</dt><dd>{papers}</dd>" in status and f"added {papers}" in report
    steps = [args[0] for args, _ in recorder.calls if isinstance(args[0], tuple)]
    assert steps and steps[-1][0] == steps[-1][1], "progress reaches the total number of chunks"
    status, report = page.reindex(False, progress=ProgressRecorder())
    assert f"unchanged {papers}" in report and "0 chunks embedded" in report


def test_reindex_failure_is_a_message(small_settings, tmp_path):
    page = ChatPage(small_settings.with_overrides(seed_dir=tmp_path / "no-such-folder"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status, report = page.reindex(False, progress=ProgressRecorder())
    assert 'class="rag-error"' in report and "no *.txt seed files" in report and "No index yet" in status


def test_start_up_builds_a_missing_index_once(small_settings, capsys):
    from ui.__main__ import ensure_index

    papers = len(load_corpus(small_settings.seed_dir))
    assert ensure_index(small_settings, out=sys.stdout) is not None
    out = capsys.readouterr().out
    assert "building it now" in out and "embedding chunks" in out and f"index ready: {papers} papers" in out
    assert ensure_index(small_settings, out=sys.stdout) is None
    assert f"index: {papers} papers" in capsys.readouterr().out


# --- the page itself ---------------------------------------------------------------------------------

def test_page_is_queued_with_per_session_state(corpus_settings):
    demo = build_demo(corpus_settings)
    blocks = list(demo.blocks.values())
    chatbot = next(b for b in blocks if isinstance(b, gr.Chatbot))
    assert chatbot.render_markdown is False and chatbot.sanitize_html is True
    assert next(b for b in blocks if isinstance(b, gr.State)).value == new_session()
    assert demo._queue.default_concurrency_limit == 1
    heavy = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") in ("respond", "reindex")]
    assert len(heavy) == 2 and {f.concurrency_id for f in heavy} == {"rag"}


def test_launch_serves_locally_without_a_share_link(corpus_settings):
    class Recorder:
        def launch(self, **kwargs):
            self.kwargs = kwargs
            return None, "http://127.0.0.1:7860/", None

    demo = Recorder()
    launch(demo, corpus_settings)
    assert demo.kwargs["share"] is False
    assert (demo.kwargs["server_name"], demo.kwargs["server_port"]) == ("127.0.0.1", 7860)


def test_port_in_use_is_one_line_naming_rag_ui_port(corpus_settings):
    """`python -m ui` on a port something else holds: exit 2 and one line, not Gradio's traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env.update(RAG_DATA_DIR=str(corpus_settings.data_dir), RAG_SEED_DIR=str(corpus_settings.seed_dir),
                   RAG_LIBRARY_DIR=str(corpus_settings.library_dir), RAG_UI_PORT=str(port), PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-m", "ui"], capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    error = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(error) == 1, proc.stderr[-3000:]
    for word in (f"127.0.0.1:{port}", f"RAG_UI_PORT={port}", "in use", "stop the other server", "free port"):
        assert word in error[0], (word, error[0])
    assert "GRADIO_SERVER_PORT" not in proc.stderr


def test_library_and_renderer_never_import_gradio():
    code = ("import sys, rag.cli, rag.answer.pipeline, rag.index.build, rag.index.status, ui.render, ui.__main__; "
            "print('gradio' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_add_papers_reads_only_files_uploaded_through_the_page(corpus_settings, tmp_path):
    """The page's API takes file paths as JSON: a forged server path must not be read or copied.
    (A real upload, which lands in Gradio's upload folder, is tests/test_library_browser.py.)"""
    page = ChatPage(corpus_settings.with_overrides(library_dir=tmp_path / "library"))
    forged = [str(ROOT / "tests" / "data" / "library" / "refs.bib"), "/usr/lib/python3.11/LICENSE.txt"]
    _, html = page.add_papers(forged, False, progress=lambda *a, **k: None)
    assert "did not come through this page" in html and "HISTORY" not in html
    assert not (tmp_path / "library").exists()
