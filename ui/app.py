"""The chat page: Gradio layout plus thin handlers over the same library calls as the CLI.

    ChatPage(settings).respond(...)  -> rag.answer.ask_stream   (streamed, per-session history)
    ChatPage(settings).reindex(...)  -> rag.indexing.build_index (with gr.Progress)
    ChatPage(settings).status()      -> rag.status.index_status

Handlers are methods of `ChatPage` so the page and the tests share one settings object without
a module global; conversation state lives only in `gr.State` (one copy per browser session)
and is copied, never mutated, so two sessions cannot see each other's questions. All HTML
comes from `ui.render`. Answering and re-indexing share one queue slot (`concurrency_id`):
the embedded model is single-threaded, and users wait their turn in Gradio's queue.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from rag.answer.pipeline import ask_stream
from rag.corpus.formats import ACCEPTED
from rag.corpus.manage import add_files
from rag.errors import InputError, RagError, SettingsError
from rag.index import store
from rag.index.build import build_index
from rag.query.dates import date_range
from rag.query.retrieval import Filters, get_retriever
from rag.settings import Settings, get_settings
from rag.index.status import index_status

from . import render

log = logging.getLogger(__name__)

BACKEND_CHOICES = [("Auto", "auto"), ("Ollama", "ollama"), ("Embedded (llama.cpp)", "llamacpp"),
                   ("Extractive (no LLM)", "extractive")]
EXAMPLES = ["How many multilingual benchmarks did the position paper on multilingual evaluation examine?",
            "Which paper proposes an asynchronous streaming RL framework for LLM post-training?",
            "How much faster was its throughput than the baseline?"]
QUEUE_SLOT = "rag"  # answering and re-indexing share one worker
# After an answer, show its beginning: the Chatbot's autoscroll leaves the view at the bottom of
# the last source card. Waits (≤ 5 s) for the last bot bubble to hold the answer or error, lets
# Gradio's own scroll-to-bottom run (it fires 300 ms after each update), then moves only the
# chat's scroll box, never the page.
SHOW_ANSWER_JS = """() => {
  const until = performance.now() + 5000;
  const tick = () => {
    const bots = document.querySelectorAll('#rag-chat [data-testid=bot]');
    const last = bots.length ? bots[bots.length - 1].querySelector('.rag-answer, .rag-error') : null;
    if (!last) { if (performance.now() < until) setTimeout(tick, 50); return; }
    setTimeout(() => {
      const box = last.closest('[role=log]');
      if (box) box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 36;
    }, 700);
  };
  tick();
}"""


def new_session() -> dict:
    """Per-session state: earlier questions (for follow-ups) and a turn counter (for anchor ids)."""
    return {"history": [], "turn": 0}


def _user(question: str) -> dict:
    return {"role": "user", "content": render.question_html(question)}


def _bot(html: str) -> dict:
    return {"role": "assistant", "content": html}


def read_options(backend, model, k, date_from, date_to, org, settings: Settings) -> dict:
    """The page's settings controls as `ask_stream` keyword arguments (validated here)."""
    start, end = date_range(date_from, date_to)
    return {"backend": backend or "auto", "model": (model or "").strip() or None,
            "k": int(k) if k else None, "settings": settings,
            "filters": Filters(date_from=start, date_to=end, org=(org or "").strip() or None)}


def _working_status(prep) -> str:
    n = len(prep.sources)
    return f"{n} source{'s' if n != 1 else ''} found · the answer is being written ({prep.backend_name})"


class ChatPage:
    """The handlers, bound to one Settings. `build()` lays them out as a gr.Blocks page."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()

    def respond(self, message, chat, session, backend, model, k, date_from, date_to, org):
        """Stream one turn. Yields (chat, session, textbox) after each step, ending with the
        checked answer and its source cards, or with an error bubble (the page keeps working)."""
        question = message or ""
        session = {"history": list(session["history"]), "turn": session["turn"] + 1}
        chat = list(chat or []) + ([_user(question)] if question.strip() else [])
        yield chat + [_bot(render.working_html("Searching the papers…"))], session, ""
        try:
            options = read_options(backend, model, k, date_from, date_to, org, self.settings)
            for html in self._turn(question, session, options):
                yield chat + [_bot(html)], session, ""
        except Exception as err:  # noqa: BLE001 - the UI edge: every failure becomes a message
            err = self._explained(err)
            keep = question if isinstance(err, InputError) and question.strip() else ""  # to edit and resend
            yield chat + [_bot(self._report(err))], session, keep

    @staticmethod
    def _turn(question: str, session: dict, options: dict):
        """HTML of the assistant bubble after each event; on the answer, records the question."""
        status, streamed, preview = "", "", ""
        for kind, payload in ask_stream(question, history=session["history"], **options):
            if kind == "prepared":  # evidence first: the sources show before any model runs
                status, preview = _working_status(payload), render.evidence_preview_html(payload.sources)
            elif kind == "token":
                streamed += payload
            else:  # "answer": the checked answer replaces the raw stream
                session["history"].append(question.strip())
                yield render.answer_html(payload, session["turn"]) + render.sources_html(payload, session["turn"])
                return
            yield render.working_html(status, streamed, preview)

    @staticmethod
    def _report(err: Exception, title: str = "Could not answer") -> str:
        """Toast + bubble for an error; unexpected ones are logged with their traceback too."""
        if not isinstance(err, RagError):
            log.exception("unexpected error: %s", title)
        gr.Warning(render.error_message(err), title=title)  # escaped: toasts render HTML
        return render.error_html(err)

    def _explained(self, err: Exception) -> Exception:
        """chromadb failing after the store opened, as the StoreError that names the fix."""
        from rag.index import store_health

        return store_health.explain(err, self.settings) if store_health.from_chroma(err) else err

    def status(self) -> str:
        try:
            return render.status_html(index_status(self.settings))
        except Exception as err:  # noqa: BLE001 - a broken store must not stop the page from starting
            return render.error_html(self._explained(err))

    def reindex(self, rebuild, progress=gr.Progress()):
        """Build or update the index with a progress bar; returns (status html, report html)."""
        def step(done: int, total: int) -> None:
            progress((done, total), desc=f"embedding chunks {done}/{total}", unit="chunks")

        try:
            progress(0, desc="reading the seed files")
            moved = store.recover(self.settings) if rebuild else None  # a corrupted store is moved aside
            report = build_index(self.settings, rebuild=bool(rebuild), progress=step)
        except Exception as err:  # noqa: BLE001 - shown on the page, which keeps working
            return self.status(), self._report(self._explained(err), "Re-index failed")
        return self.status(), render.report_html(report) + (render.note_html(moved) if moved else "")

    def add_papers(self, files, skip_bad, progress=gr.Progress()):
        """Upload: the same library `add` as the CLI, then an incremental re-index; returns
        (status html, report html) saying per file what was added or rejected and why."""
        paths = [getattr(f, "name", f) for f in (files or [])]
        if not paths:
            return self.status(), render.error_html(InputError("no file chosen; pick .bib, .xml, .atom, .jsonl, "
                                                               ".csv or .txt files first"))
        if forged := [p for p in paths if not _uploaded(p)]:
            return self.status(), render.error_html(InputError(
                f"{len(forged)} file(s) did not come through this page's upload; choose them with the file picker"))
        try:
            progress(0, desc="checking the files")
            report = add_files(paths, self.settings, skip_bad=bool(skip_bad))
            indexed = None
            if report.to_index:
                progress(0, desc="indexing the new papers")
                indexed = build_index(self.settings, progress=lambda d, t: progress((d, t), desc="embedding chunks"))
        except Exception as err:  # noqa: BLE001 - shown on the page, which keeps working
            return self.status(), self._report(err, "Adding papers failed")
        return self.status(), render.added_html(report, indexed)

    def organisations(self) -> list[str]:
        """Organisations in the index, for the filter's suggestions (empty until there is one)."""
        try:
            metas = get_retriever(self.settings).papers().values()
        except Exception:  # noqa: BLE001 - no suggestions; status() shows what is wrong
            return []
        return sorted({m["org"] for m in metas if m.get("org")}, key=str.casefold)

    def papers(self) -> int | None:
        try:
            return index_status(self.settings).papers or None
        except Exception:  # noqa: BLE001 - the header goes without a count; status() shows why
            return None

    def build(self) -> gr.Blocks:
        """The page. Call `launch(...)` (below) to serve it."""
        with gr.Blocks(title="Paper RAG — cited answers", analytics_enabled=False) as demo:
            session = gr.State(new_session())
            gr.HTML(render.header_html(self.papers()))
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=480):
                    chat, box, send, clear = self._chat_column()
                with gr.Column(scale=1, min_width=300):
                    options = self._settings_panel()
                    status, rebuild, reindex, report = self._index_panel()
                    upload, skip_bad, add, added = self._library_panel()
            gr.on([box.submit, send.click], self.respond, [box, chat, session, *options], [chat, session, box],
                  concurrency_id=QUEUE_SLOT, show_progress="hidden").then(None, None, None, js=SHOW_ANSWER_JS)
            clear.click(lambda: ([], new_session(), ""), None, [chat, session, box], queue=False)
            chat.clear(new_session, None, session, queue=False)  # the Chatbot's own trash button
            reindex.click(self.reindex, [rebuild], [status, report], concurrency_id=QUEUE_SLOT)
            add.click(self.add_papers, [upload, skip_bad], [status, added], concurrency_id=QUEUE_SLOT)
            demo.load(self.status, None, status, queue=False)
        demo.queue(default_concurrency_limit=1)
        return demo

    def _chat_column(self):
        chat = gr.Chatbot(label="Conversation", elem_id="rag-chat", height=640, render_markdown=False,
                          sanitize_html=True, allow_tags=False, feedback_options=None, buttons=["copy_all"],
                          group_consecutive_messages=False,
                          placeholder="Ask about the papers. Answers cite their sources; click a [n] to see it.")
        with gr.Row(equal_height=True):
            box = gr.Textbox(show_label=False, placeholder="Ask a question about the papers…", lines=1,
                             max_lines=6, scale=6, elem_id="rag-question", autofocus=True)
            send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="rag-send")
        clear = gr.Button("New conversation", size="sm", elem_id="rag-clear")
        gr.Examples(EXAMPLES, inputs=box, label="Try (the last one is a follow-up to the one before)")
        return chat, box, send, clear

    def _settings_panel(self):
        s = self.settings
        with gr.Accordion("Answer settings", open=True):
            backend = gr.Radio(BACKEND_CHOICES, value=s.backend, label="Backend", elem_id="rag-backend",
                               info="Auto: Ollama when it runs with the model, else the embedded model")
            model = gr.Textbox(s.ollama_model, label="Ollama model", info="used by Ollama and Auto")
            k = gr.Slider(1, 20, value=s.top_k, step=1, label="Papers to retrieve (k)")
            with gr.Row():
                date_from = gr.Textbox(label="From", placeholder="YYYY-MM-DD", min_width=100)
                date_to = gr.Textbox(label="To", placeholder="YYYY-MM-DD", min_width=100)
            org = gr.Dropdown(self.organisations(), value=None, label="Organisation", allow_custom_value=True,
                              info="any part of the name; empty = all")
        return backend, model, k, date_from, date_to, org

    def _index_panel(self):
        with gr.Accordion("Index", open=True):
            status = gr.HTML(self.status(), elem_id="rag-status")
            rebuild = gr.Checkbox(False, label="Rebuild from scratch (about a minute)")
            reindex = gr.Button("Re-index", size="sm", elem_id="rag-reindex")
            report = gr.HTML("")
        return status, rebuild, reindex, report


    def _library_panel(self):
        with gr.Accordion("Add your papers", open=False, elem_id="rag-library"):
            upload = gr.File(label="BibTeX, arXiv Atom XML, JSON Lines, CSV (title + abstract) or listing pages",
                             file_count="multiple", file_types=list(ACCEPTED), type="filepath", elem_id="rag-upload")
            skip_bad = gr.Checkbox(False, label="Leave out bad entries (otherwise a file with any is rejected whole)",
                                   elem_id="rag-skip-bad")
            add = gr.Button("Add to library and index", size="sm", elem_id="rag-add")
            added = gr.HTML("", elem_id="rag-added")
        return upload, skip_bad, add, added


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    return ChatPage(settings).build()


def _theme() -> gr.themes.Base:
    """Gradio's default look with the machine's own fonts: the bundled Source Sans subset lacks
    some bold capitals (titles rendered 'B' and 'R' from a fallback font)."""
    return gr.themes.Default(font=("ui-sans-serif", "system-ui", "sans-serif"),
                             font_mono=("ui-monospace", "Consolas", "monospace"))


def _uploaded(path) -> bool:
    """Is `path` in Gradio's upload folder? A client can post any server path as a file (the
    page's API takes JSON): reading it would copy or echo a server file (found by probes)."""
    from gradio.utils import get_upload_folder

    return Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve())


def launch(demo: gr.Blocks, settings: Settings, **kwargs):
    """Serve on the configured host/port only, never a public share link; returns at once
    (the server runs in a thread: `python -m ui` then blocks, tests drive it). A port that cannot
    be bound is a SettingsError naming our setting (Gradio's own message names GRADIO_SERVER_PORT)."""
    host, port = settings.ui_host, settings.ui_port
    try:
        app, url, _ = demo.launch(server_name=host, server_port=port, share=False, ssr_mode=False,
                                  css=render.CSS, theme=_theme(), show_error=True, quiet=True,
                                  prevent_thread_lock=True, **kwargs)
    except OSError:  # Gradio turns every bind failure into "Cannot find empty port"
        raise SettingsError(f"cannot serve on {host}:{port} (RAG_UI_PORT={port}): the port is in use (another "
                            "server, or this page already running) or cannot be bound; stop the other server, or "
                            "set RAG_UI_PORT (or --port) to a free port") from None
    print(f"Paper RAG is serving on {url} (this machine only; no public share link)", flush=True)
    return app, url
