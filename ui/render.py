"""Pure HTML for the chat page: answers, source cards, index status, errors. No Gradio here.

Trust boundary: every string that comes from the corpus, the model or the user enters the
markup only through `esc` (html.escape, quotes included, so it is also safe inside an
attribute). The page's Chatbot renders these strings as HTML with Markdown off — Markdown
would turn `__init__` or `*` in an abstract into formatting and could split our markup — and
keeps Gradio's own sanitizer on as a second line; that sanitizer keeps the `id`, `class`,
`title` and `href="#…"` attributes used here.

Everything is rendered from the structured `Answer` (sentences, citations, timings); nothing
here re-reads rendered text. Anchor ids carry the turn number, so the `[1]` of the third
answer links to the third answer's card 1, not the first one's.
"""

from __future__ import annotations

import html
import re

from rag.errors import (BackendError, IndexMissingError, InputError, SettingsError, StoreCorrupted, StoreError)
from rag.answer.prompts import ABSTAIN_TEXT
from rag.corpus.library import LibraryBusyError
from rag.index.lock import IndexBusyError
from rag.index.store import IndexStaleError


def esc(text: object) -> str:
    """The one way untrusted text enters the markup."""
    return html.escape("" if text is None else str(text), quote=True)


def _code_spans(escaped: str) -> str:
    """`cmd` in a library message becomes <code>cmd</code>; input is already escaped, so no tags."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


# --- anchors ---------------------------------------------------------------------------------

def turn_anchor(turn_id: object) -> str:
    """The id of one answer; only [A-Za-z0-9_-] survive, whatever the caller passes."""
    return "rag-t" + re.sub(r"[^A-Za-z0-9_-]", "", str(turn_id))


def card_id(turn_id: object, n: int) -> str:
    """The id of source card `n` of one answer: unique across turns on the page."""
    return f"{turn_anchor(turn_id)}-src{int(n)}"


# --- chat bubbles while a turn runs ------------------------------------------------------------

def question_html(question: str) -> str:
    """The user's bubble: their text verbatim (escaped, line breaks kept by CSS)."""
    return f'<div class="rag-question">{esc(question)}</div>'


def working_html(status: str, streamed: str = "", preview: str = "") -> str:
    """The assistant bubble before the checked answer exists: a status line, the evidence found
    so far (shown as soon as retrieval finishes) and the model's raw draft as it streams."""
    text = f'<div class="rag-stream-text">{esc(streamed)}<span class="rag-caret">▍</span></div>' if streamed else ""
    return (f'<div class="rag-working"><div class="rag-working-status"><span class="rag-spinner"></span>'
            f'{esc(status)}</div>{preview}{text}</div>')


def evidence_preview_html(sources) -> str:
    """The retrieved sources with their best sentence, before the model has written anything."""
    items = "".join(f'<li><span class="rag-title">[{int(s.n)}] {esc(s.hit.title)}</span>'
                    f'<div class="rag-quote">“{esc(s.best_sentence)}”</div></li>' for s in sources)
    return f'<ol class="rag-preview" id="rag-preview">{items}</ol>' if items else ""


# --- the checked answer ---------------------------------------------------------------------

def answer_html(answer, turn_id: object) -> str:
    """One answer: sentences with linked [n] markers, or an abstention; then its metadata."""
    if answer.abstained:  # an unbackable guess may be why it abstained: kept, collapsed, marked
        body, cls = _abstention(answer) + _unverified(answer, turn_id, {}), "rag-answer rag-abstained"
    else:
        body, cls = _sentences(answer, turn_id), "rag-answer"
    return (f'<div class="{cls}" id="{turn_anchor(turn_id)}">{body}{_notes(answer)}'
            f'{_query(answer)}{_footer(answer)}</div>')


def _sentences(answer, turn_id) -> str:
    """The verified lead, then one evidence item per cited paper, then what the checker could
    not back, collapsed and marked: it never leads and never looks backed."""
    titles = {c.n: c.title for c in answer.citations}
    lead = [_sentence(s, turn_id, titles) for s in answer.sentences if s.origin == "model"]
    if not answer.sentences:  # an Answer built without sentences: show its text, still escaped
        lead = [esc(answer.text)]
    parts = [f'<p class="rag-text">{" ".join(lead)}</p>'] if lead else []
    items = []
    for s in answer.sentences:
        if s.origin == "title":
            items.append([_marker(s.cites[0], False, turn_id, titles), f'<span class="rag-title">{esc(s.text)}</span>'])
        elif s.origin == "quote" and items:
            items[-1].append(f'<span class="rag-quote">“{esc(s.text)}”</span>')
    if items:
        lis = "".join(f"<li>{' '.join(i)}</li>" for i in items)
        parts.append(f'<div class="rag-evidence-head">Evidence</div><ul class="rag-evidence-list">{lis}</ul>')
    parts.append(_unverified(answer, turn_id, titles))
    return "".join(parts)


def _unverified(answer, turn_id, titles: dict[int, str]) -> str:
    if not answer.unverified:
        return ""
    bad = " ".join(_sentence(s, turn_id, titles) for s in answer.unverified)
    return (f'<details class="rag-unverified"><summary>⚠ {len(answer.unverified)} sentence(s) the checker '
            f'could not back (hidden)</summary><p>{bad}</p></details>')


def _sentence(s, turn_id, titles: dict[int, str]) -> str:
    marks = "".join(_marker(n, s.attributed, turn_id, titles) for n in s.cites)
    if s.supported:
        return f'<span class="rag-sent">{esc(s.text)}{marks}</span>'
    why = esc(f"Not backed by the cited abstracts: {s.reason or 'no source supports it'}")
    return (f'<span class="rag-sent rag-unsupported" title="{why}"><span class="rag-warn">⚠</span>'
            f'{esc(s.text)}{marks}<span class="rag-unsupported-tag">unsupported</span></span>')


def _marker(n: int, attributed: bool, turn_id, titles: dict[int, str]) -> str:
    if n not in titles:  # cannot happen for a checked answer; never emit a dangling link
        return f'<span class="rag-cite rag-cite-missing">[{int(n)}]</span>'
    tip = f"Source {n}: {titles[n]}"
    if attributed:
        tip += " (attached by the checker: the model did not cite it for this sentence)"
    cls = "rag-cite rag-cite-attributed" if attributed else "rag-cite"
    return f'<a class="{cls}" href="#{card_id(turn_id, n)}" title="{esc(tip)}">[{int(n)}]</a>'


def _abstention(answer) -> str:
    """Looks unlike an answer on purpose: a grey panel that says so, plus where to look next."""
    items = "".join(f'<li><span class="rag-closest-title">{esc(c.get("title"))}</span>'
                    f'<span class="rag-score">id {esc(c.get("paper_id"))}</span></li>' for c in answer.closest)
    closest = (f'<div class="rag-closest-head">Closest papers in the corpus</div>'
               f'<ol class="rag-closest">{items}</ol>') if items else ""
    return (f'<div class="rag-abstain-head">∅ No answer in the corpus</div>'
            f'<p class="rag-abstain-text">{esc(ABSTAIN_TEXT)}</p>{closest}')


def _notes(answer) -> str:
    notes = list(answer.notes)
    if not notes:
        return ""
    return '<ul class="rag-notes">' + "".join(f"<li>{_code_spans(esc(n))}</li>" for n in notes) + "</ul>"


def _query(answer) -> str:
    """The text retrieval actually used, collapsed: it differs from the question on follow-ups."""
    followup = answer.retrieval_query.strip() != answer.question.strip()
    label = "Retrieval query" + (" (follow-up: includes your earlier question)" if followup else "")
    return (f'<details class="rag-query"><summary>{label}</summary>'
            f'<code>{esc(answer.retrieval_query)}</code></details>')


def _footer(answer) -> str:
    """Backend, model, tokens, timings and how much of the answer the checker could back."""
    parts = [f"backend <b>{esc(answer.backend)}</b>"]
    if answer.model and answer.model != "none":
        parts.append(f"model <b>{esc(answer.model)}</b>")
    if answer.prompt_tokens is not None or answer.completion_tokens is not None:
        parts.append(f"tokens {esc(answer.prompt_tokens)} in → {esc(answer.completion_tokens)} out")
    t = answer.timings or {}
    if "first_token_s" in t:
        parts.append(f"first token {float(t['first_token_s']):.2f} s")
    if "total_s" in t:
        parts.append(f"total {float(t['total_s']):.2f} s")
    written = answer.model_sentences
    if written and not answer.abstained:
        parts.append(f"{sum(s.supported for s in written)}/{len(written)} model sentences backed")
    return f'<div class="rag-footer">{" · ".join(parts)}</div>'


# --- source cards ----------------------------------------------------------------------------

def sources_html(answer, turn_id: object) -> str:
    """Numbered cards, one per citation, each the target of its [n] links."""
    if not answer.citations:
        return ""
    cards = "".join(_card(c, turn_id, _quoted(answer, c.n)) for c in answer.citations)
    return (f'<div class="rag-sources"><div class="rag-sources-head">Sources · {len(answer.citations)}</div>'
            f'{cards}</div>')


def _quoted(answer, n: int) -> list[str]:
    """Answer sentences citing source n: those copied verbatim (extractive answers) get a light mark."""
    return [s.text for s in answer.sentences if n in s.cites]


def _card(c, turn_id, quoted: list[str]) -> str:
    badge = ('<span class="rag-badge" title="The model did not cite this source for it; the checker found this '
             'source backs it.">attached by checker</span>') if c.attributed else ""
    files = f'<div class="rag-files">source file: {esc(c.sources)}</div>' if c.sources else ""
    return (f'<div class="rag-card" id="{card_id(turn_id, c.n)}">'
            f'<div class="rag-card-head"><span class="rag-num">{int(c.n)}</span>'
            f'<span class="rag-title">{esc(c.title)}</span>{badge}</div>'
            f'<div class="rag-card-meta">{_card_meta(c)}</div>'
            f'<p class="rag-abstract">{highlight(c.abstract, c.evidence, quoted)}</p>{files}</div>')


def _card_meta(c) -> str:
    bits = [c.date_raw or c.date, c.org, f"{c.authors} authors" if c.authors else None,
            f"▲ {c.upvotes} upvotes" if c.upvotes is not None else None, f"id {c.paper_id}"]
    return "".join(f"<span>{esc(b)}</span>" for b in bits if b) + _links(c)


_ARXIV_ID = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z][a-z.-]*(?:\.[A-Z]{2})?/\d{7})$", re.I)


def _links(c) -> str:
    """arXiv and DOI links (and the paper's own URL) when its source file gave them; ids are
    checked again here so only a well-formed id or an http(s) address becomes an href."""
    arxiv, doi, url = c.arxiv_id, c.doi, c.url
    links = []
    if arxiv and _ARXIV_ID.match(arxiv):
        links.append((f"https://arxiv.org/abs/{arxiv}", f"arXiv:{arxiv}"))
    if doi and re.match(r"^10\.\d{4,9}/\S+$", doi):
        links.append((f"https://doi.org/{doi}", f"doi:{doi}"))
    if url and re.match(r"^https?://\S+$", url) and not (arxiv and "arxiv.org" in url):
        links.append((url, "link"))
    return "".join(f'<span><a class="rag-link" href="{esc(h)}" target="_blank" rel="noopener noreferrer">'
                   f'{esc(t)}</a></span>' for h, t in links)


def _spans(text: str, phrases: list[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) of the phrases found verbatim in text, in order."""
    found = sorted((at, at + len(p)) for p in {p.strip() for p in phrases if p and p.strip()}
                   if (at := text.find(p)) >= 0)
    out: list[tuple[int, int]] = []
    for start, end in found:
        if not out or start >= out[-1][1]:
            out.append((start, end))
    return out


def highlight(abstract: str, evidence: str, quoted: list[str] = ()) -> str:
    """The abstract with the evidence sentence in <mark> (and quoted sentences lightly marked);
    all text escaped, only the marks are ours.

    If the evidence is not found verbatim (it always should be), it is shown marked above the
    abstract rather than dropped: the reader must still see what was relied on."""
    abstract, evidence = abstract or "", (evidence or "").strip()
    spans = _spans(abstract, [evidence, *quoted])
    lead = "" if not evidence or evidence in abstract else f'<mark class="rag-evidence">{esc(evidence)}</mark><br>'
    out, pos = [lead], 0
    for start, end in spans:
        cls = "rag-evidence" if abstract[start:end] == evidence else "rag-quoted"
        out.append(f'{esc(abstract[pos:start])}<mark class="{cls}">{esc(abstract[start:end])}</mark>')
        pos = end
    return "".join(out) + esc(abstract[pos:])


# --- index status and errors -----------------------------------------------------------------

def status_html(status) -> str:
    """What the live index holds, or how to create it."""
    if not status.exists:
        return (f'<div class="rag-status rag-status-missing">No index yet in <code>{esc(status.where)}</code>. '
                f'Press <b>Re-index</b> (about a minute), or run <code>python -m rag index</code>.</div>')
    rows = [("Papers", status.papers), ("Chunks", status.chunks), ("Last built", status.built_at or "unknown"),
            ("Fingerprint", status.fingerprint), ("Collection", status.collection), ("Location", status.where)]
    cells = "".join(f"<dt>{name}</dt><dd>{esc(value)}</dd>" for name, value in rows)
    stale = ('<div class="rag-status-stale">⚠ Built with other settings than the current ones '
             f'({esc(status.changed or "fingerprint now " + status.current_fingerprint)}): press Re-index, or set '
             'them back.</div>') if status.stale else ""
    return f'<div class="rag-status"><dl>{cells}</dl>{stale}</div>'


def report_html(report) -> str:
    """One line on what a re-index changed."""
    how = f"rebuilt ({esc(report.reason)})" if report.rebuilt else "updated in place"
    return (f'<div class="rag-report">Index {how}: added {report.added}, updated {report.updated}, '
            f'removed {report.removed}, unchanged {report.unchanged}; {report.chunks_embedded} chunks '
            f'embedded in {report.seconds:.1f} s.</div>')


def added_html(report, indexed=None) -> str:
    """What `add` did with each uploaded file: added (new / merged), unchanged, or rejected and why."""
    rows = "".join(_added_file(f) for f in report.files)
    index = report_html(indexed) if indexed is not None else ""
    return f'<div class="rag-added">{rows}{index}</div>'


def _added_file(f) -> str:
    name = f.file.rsplit("/", 1)[-1]

    def short(text: str) -> str:  # an upload's temp path means nothing to the user: show the file name
        return esc(text.replace(f.file, name))

    if f.status == "rejected":
        head = f'<div class="rag-added-head rag-rejected">✗ {esc(name)}: rejected, nothing added</div>' \
               f'<div>{_code_spans(short(f.reason))}</div>'
    elif f.status == "unchanged":
        head = f'<div class="rag-added-head">= {esc(name)}: {short(f.reason)}</div>'
    else:
        head = (f'<div class="rag-added-head rag-accepted">✓ {esc(name)}: {esc(f.status)} — {f.papers} papers, '
                f'{len(f.new)} new, {len(f.merged)} merged with papers already known</div>')
    titles = "".join(f"<li>{esc(t)}</li>" for t in f.new)
    lists = [("conflict", f.conflicts), ("bad entry", f.bad), ("note", f.notes)]
    extra = "".join(f'<li class="rag-added-{label.split()[0]}">{label}: {short(x)}</li>' for label, xs in lists for x in xs)
    body = f'<ul class="rag-added-list">{titles}{extra}</ul>' if titles or extra else ""
    return f'<div class="rag-added-file">{head}{body}</div>'


def note_html(note: str) -> str:
    """A line of what a re-index did besides indexing (e.g. where a broken store was moved)."""
    return f'<div class="rag-report">Note: {esc(note)}</div>'


_PAGE_HINTS = {
    BackendError: "On this page: choose another <b>Backend</b> in Answer settings "
                  "(Embedded llama.cpp or Extractive work offline).",
    IndexMissingError: "On this page: press <b>Re-index</b> in the Index panel.",
    StoreCorrupted: "On this page: tick <b>Rebuild from scratch</b> and press <b>Re-index</b>.",
}


def _error_title(err: BaseException) -> str:
    for kind, title in ((InputError, "Check your input"), (BackendError, "The answering backend is unavailable"),
                        (IndexMissingError, "No usable index"), ((IndexBusyError, LibraryBusyError), "Busy: try again"),
                        (IndexStaleError, "The index needs an index run"), (StoreError, "The vector store failed"),
                        (SettingsError, "A setting is invalid")):
        if isinstance(err, kind):
            return title
    return "Something went wrong"


def error_message(err: BaseException) -> str:
    """The error's own message, escaped (also for Gradio's toast, which renders HTML)."""
    message = _code_spans(esc(err))
    if not isinstance(err, (InputError, BackendError, IndexMissingError, StoreError, SettingsError)):
        message = f"{esc(type(err).__name__)}: {message}"
    return message


def error_html(err: BaseException) -> str:
    """An error bubble: what failed and the fix the library named (plus where on this page)."""
    message = error_message(err)
    hint = next((h for kind, h in _PAGE_HINTS.items() if isinstance(err, kind)), "")
    hint = f'<div class="rag-error-hint">{hint}</div>' if hint else ""
    return (f'<div class="rag-error"><div class="rag-error-title">⚠ {_error_title(err)}</div>'
            f'<div class="rag-error-msg">{message}</div>{hint}</div>')


def header_html(papers: int | None) -> str:
    count = f"{papers} research-paper abstracts" if papers else "research-paper abstracts"
    return (f'<div class="rag-header"><h1>Paper RAG</h1><p>Ask questions about {esc(count)}. Every claim '
            f'links to the abstract it comes from; sentences the checker cannot back are marked ⚠.</p></div>')


CSS = """
.rag-header h1 { margin: 0 0 2px; font-size: 1.45rem; font-weight: 600; }
.rag-header p { margin: 0; color: var(--body-text-color-subdued); }
#rag-chat .rag-question { white-space: pre-wrap; overflow-wrap: anywhere; }
#rag-chat .rag-answer, #rag-chat .rag-error, #rag-chat .rag-working { line-height: 1.55; }
.rag-text { margin: 0 0 6px; }
.rag-sent { margin-right: 2px; }
.rag-cite { display: inline-block; margin-left: 2px; padding: 0 4px; border-radius: 4px; font-size: 0.8em;
  font-weight: 600; vertical-align: 1px; text-decoration: none !important; color: #1d4ed8 !important;
  background: #dbeafe; }
.rag-cite:hover { background: #bfdbfe; }
.rag-cite-attributed { background: transparent; border: 1px dashed #60a5fa; }
.rag-cite-missing { color: #6b7280 !important; background: #f3f4f6; }
.rag-unsupported { background: #fff7ed; border-bottom: 2px dashed #f97316; color: #7c2d12; cursor: help; }
.rag-warn { margin-right: 3px; }
.rag-unsupported-tag { margin-left: 4px; padding: 0 5px; border-radius: 8px; font-size: 0.72em;
  background: #fed7aa; color: #7c2d12; text-transform: uppercase; letter-spacing: 0.03em; }
.rag-abstained { border-left: 4px solid #9ca3af; background: #f9fafb; color: #374151; padding: 8px 12px;
  border-radius: 6px; }
.rag-abstain-head { font-weight: 600; color: #4b5563; }
.rag-abstain-text { margin: 4px 0 6px; font-style: italic; }
.rag-closest-head { font-size: 0.85em; font-weight: 600; color: #6b7280; }
.rag-closest { margin: 2px 0 4px 1.2em; padding: 0; font-size: 0.9em; }
.rag-score { margin-left: 8px; font-size: 0.8em; color: #6b7280; }
.rag-notes { margin: 4px 0; padding-left: 1.2em; font-size: 0.8em; color: #6b7280; }
.rag-query { margin: 4px 0; font-size: 0.85em; }
.rag-query summary { cursor: pointer; color: #6b7280; }
.rag-query code { display: block; margin-top: 3px; white-space: pre-wrap; overflow-wrap: anywhere; }
.rag-footer { margin-top: 4px; font-size: 0.78em; color: #6b7280; }
.rag-sources { margin-top: 10px; display: flex; flex-direction: column; gap: 8px; }
.rag-sources-head { font-size: 0.8em; font-weight: 600; text-transform: uppercase; letter-spacing: 0.05em;
  color: #6b7280; }
.rag-card { border: 1px solid var(--border-color-primary, #e5e7eb); border-radius: 8px; padding: 8px 12px;
  background: var(--background-fill-primary, #fff); scroll-margin: 12px; transition: box-shadow 0.3s; }
.rag-card:target { border-color: #2563eb; box-shadow: 0 0 0 3px rgba(37, 99, 235, 0.35); }
.rag-card-head { display: flex; align-items: baseline; gap: 8px; }
.rag-num { flex: none; min-width: 1.5em; height: 1.5em; line-height: 1.5em; text-align: center; border-radius: 50%;
  background: #1d4ed8; color: #fff; font-size: 0.8em; font-weight: 600; }
.rag-title { font-weight: 600; }
.rag-badge { margin-left: auto; flex: none; font-size: 0.7em; padding: 1px 6px; border-radius: 8px;
  border: 1px dashed #60a5fa; color: #1d4ed8; }
.rag-card-meta { margin: 2px 0 4px; font-size: 0.78em; color: #6b7280; }
.rag-card-meta span + span::before { content: "·"; margin: 0 6px; }
.rag-abstract { margin: 0; font-size: 0.86em; line-height: 1.5; overflow-wrap: anywhere; }
.rag-abstract mark { color: inherit; padding: 0 2px; border-radius: 2px; }
mark.rag-evidence { background: #fde68a; color: #1f2937; }
mark.rag-quoted { background: #fef3c7; color: #1f2937; }
.rag-files { margin-top: 4px; font-size: 0.72em; color: #9ca3af; overflow-wrap: anywhere; }
.rag-error { border-left: 4px solid #dc2626; background: #fef2f2; color: #7f1d1d; padding: 8px 12px;
  border-radius: 6px; }
.rag-error-title { font-weight: 600; }
.rag-error-msg { overflow-wrap: anywhere; }
.rag-error-hint { margin-top: 4px; font-size: 0.85em; }
.rag-error code, .rag-status code, .rag-notes code { background: rgba(0, 0, 0, 0.06); padding: 0 4px;
  border-radius: 3px; }
.rag-working-status { font-size: 0.85em; color: #6b7280; }
.rag-stream-text { white-space: pre-wrap; margin-top: 4px; color: #6b7280; }
.rag-evidence-head, .rag-preview-head { margin-top: 6px; font-size: 0.78em; font-weight: 600; text-transform: uppercase;
  letter-spacing: 0.05em; color: #6b7280; }
.rag-evidence-list, .rag-preview { margin: 2px 0 6px 1.1em; padding: 0; }
.rag-evidence-list li, .rag-preview li { margin-bottom: 4px; }
.rag-quote { font-size: 0.92em; color: #374151; }
.rag-evidence-list .rag-title { font-size: 0.92em; }
.rag-unverified { margin: 4px 0; font-size: 0.85em; }
.rag-unverified summary { cursor: pointer; color: #9a3412; }
.rag-caret { animation: rag-blink 1s steps(1) infinite; color: #6b7280; }
@keyframes rag-blink { 50% { opacity: 0; } }
.rag-spinner { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 6px; vertical-align: -1px;
  border: 2px solid #d1d5db; border-top-color: #2563eb; border-radius: 50%; animation: rag-spin 0.8s linear infinite; }
@keyframes rag-spin { to { transform: rotate(360deg); } }
.rag-status dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 0; font-size: 0.85em; }
.rag-status dt { color: #6b7280; }
.rag-status dd { margin: 0; overflow-wrap: anywhere; }
.rag-status-missing, .rag-status-stale { color: #92400e; font-size: 0.85em; }
.rag-report { font-size: 0.82em; color: #065f46; }
.rag-added { font-size: 0.82em; }
.rag-added-file { margin: 4px 0; }
.rag-added-head { font-weight: 600; }
.rag-accepted { color: #065f46; }
.rag-rejected { color: #991b1b; }
.rag-added-list { margin: 2px 0 2px 1.1em; padding: 0; overflow-wrap: anywhere; }
.rag-added-conflict { color: #92400e; }
.rag-added-bad { color: #991b1b; }
.dark .rag-abstained { background: #1f2937; color: #e5e7eb; }
.dark .rag-abstain-head { color: #d1d5db; }
.dark .rag-unsupported { background: #431407; color: #fed7aa; }
.dark .rag-error { background: #450a0a; color: #fecaca; }
.dark .rag-cite { background: #1e3a8a; color: #bfdbfe !important; }
"""
