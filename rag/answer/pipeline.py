"""The answer pipeline: retrieve → select evidence → (abstain | extract | prompt an LLM) → check.

`ask_stream` yields events — `("prepared", Prepared)`, then `("token", str)` pieces as the LLM
writes them, then `("answer", Answer)` — and `ask` is the same stream consumed. Both share one
preparation step, so the streamed and the returned answer cannot disagree.

Trust rules, enforced here rather than hoped for from the model:
- a citation must name a numbered source; any other number is removed and reported;
- every sentence is checked against the abstracts it cites (`rag.citations.supports`); a
  sentence the model left uncited is attributed only if a source passes the same check;
  sentences that fail stay visible but are marked `[unsupported]`;
- weak evidence, or a model that declines, gives the fixed abstention plus the closest papers.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Iterator

from rag.query import evidence as ev
from rag.answer.types import Answer, Citation, Sentence
from rag.answer.citations import answer_sentences, best_evidence_sentence, content_stems, parse_markers, supports
from rag.llm.base import ChatBackend, get_backend
from rag.answer.prompts import ABSTAIN_CLOSEST, ABSTAIN_TEXT, FOLLOWUP_NOTE, REFUSALS, SYSTEM, SYSTEM_SMALL, USER
from rag.query.questions import MAX_QUESTION_CHARS, check_history as _check_history, check_question as _check_question
from rag.query.retrieval import Filters, Hit, search
from rag.settings import Settings, get_settings

UNSUPPORTED_MARK = "[unsupported]"
EXTRACTIVE_SENTENCES = 3
NEW_SOURCE_WITHIN = 0.1  # tuned on the dev split: citation precision vs key-fact recall
# Words that lean on an earlier turn. Bare "this"/"that" are left out: "in this collection"
# starts a new question as often as not; "this paper" / "this method" do not.
_ANAPHORA = re.compile(r"\b(it|its|they|their|them|the authors|(this|that|these|those) (paper|papers|method|"
                       r"model|approach|study|authors|work|framework|dataset|benchmark|technique|system))\b", re.I)


@dataclass
class Prepared:
    question: str
    retrieval_query: str
    hits: list[Hit]
    sources: list[ev.Source]
    backend: ChatBackend | None
    settings: Settings
    notes: list[str]
    started: float

    @property
    def backend_name(self) -> str:
        return self.backend.name if self.backend else "extractive"

    @property
    def model_name(self) -> str:
        return self.backend.model if self.backend else "none"


def resolve_query(question: str, history: list | None) -> str:
    """The text to retrieve with: a follow-up that leans on an earlier turn carries it along."""
    previous = [h.get("question", "") if isinstance(h, dict) else str(h) for h in (history or [])]
    previous = [p for p in previous if p.strip()]
    if previous and (_ANAPHORA.search(question) or len(content_stems(question)) <= 3):
        return f"{previous[-1]} {question}"
    return question


def prepare(question: str, *, history=None, backend: str | None = None, model: str | None = None,
            k: int | None = None, filters: Filters | None = None, settings: Settings | None = None) -> Prepared:
    started = time.perf_counter()
    question, history = _check_question(question), _check_history(history)
    settings = _settings_for(settings or get_settings(), backend, model, k)
    notes: list[str] = []
    llm = get_backend(settings.backend, settings, notes)
    query = resolve_query(question, history)
    hits = search(query, k=settings.top_k, filters=filters, settings=settings)
    budget = _evidence_budget(llm, settings)
    sources = ev.select(query, hits, budget, settings.sources_in_prompt)
    return Prepared(question, query, hits, sources, llm, settings, notes, started)


def _settings_for(settings: Settings, backend, model, k) -> Settings:
    overrides = {"backend": backend, "top_k": k}
    if model and str(model).endswith(".gguf"):
        overrides["llamacpp_model_path"] = model
    elif model:
        overrides["ollama_model"] = model
    return settings.with_overrides(**overrides)


def _evidence_budget(llm: ChatBackend | None, settings: Settings) -> int:
    if llm is None:
        return settings.ollama_evidence_tokens
    if llm.name == "ollama":  # leave room for instructions, question and answer inside num_ctx
        return max(100, min(settings.ollama_evidence_tokens, llm.context_window - settings.max_answer_tokens - 400))
    return settings.evidence_tokens


def ask_stream(question: str, *, stream: bool = True, **options) -> Iterator[tuple[str, object]]:
    """Events: ("prepared", Prepared), ("token", str)…, ("answer", Answer).
    With stream=False the LLM is called once, non-streaming, and one token event carries it all."""
    prep = prepare(question, **options)
    yield "prepared", prep
    relevance = ev.relevance_signal(prep.sources)
    reason = _abstain_reason(prep, relevance)
    if reason:
        prep.notes.append(reason)
        yield "answer", _abstain(prep, relevance)
        return
    if prep.backend is None:
        answer = _extractive(prep, relevance)
        yield "token", answer.text
        yield "answer", answer
        return
    yield from _generate(prep, relevance, stream)


def _abstain_reason(prep: Prepared, relevance: float) -> str | None:
    """Why the evidence cannot answer the question, or None. Thresholds are tuned on the dev split."""
    if relevance < prep.settings.abstain_below:
        return f"best evidence relevance {relevance:.2f} < {prep.settings.abstain_below:.2f}"
    missing = ev.unmatched_names(prep.question, prep.sources)
    if missing:
        return f"the retrieved abstracts never mention {', '.join(missing)}"
    return None


def ask(question: str, **options) -> Answer:
    """Answer a question from the corpus, with citations: the public `rag.ask`."""
    for kind, payload in ask_stream(question, stream=False, **options):
        if kind == "answer":
            return payload
    raise RuntimeError("ask_stream ended without an answer")  # unreachable: every path yields one


def _messages(prep: Prepared) -> list[dict]:
    question = prep.question
    if prep.retrieval_query != prep.question:
        question += FOLLOWUP_NOTE.format(previous=prep.retrieval_query[: -len(prep.question)].strip())
    sources = "\n\n".join(s.render() for s in prep.sources)
    system = SYSTEM_SMALL if prep.backend.small else SYSTEM
    return [{"role": "system", "content": system}, {"role": "user", "content": USER.format(sources=sources, question=question)}]


def _generate(prep: Prepared, relevance: float, stream: bool) -> Iterator[tuple[str, object]]:
    llm, first, pieces = prep.backend, None, []
    messages = _messages(prep)
    limit = prep.settings.small_answer_tokens if llm.small else prep.settings.max_answer_tokens
    for piece in llm.stream(messages, limit) if stream else [llm.complete(messages, limit)]:
        first = first or time.perf_counter()
        pieces.append(piece)
        yield "token", piece
    raw = "".join(pieces)
    timings = _timings(prep, first)
    if not raw.strip() or any(r in raw.lower() for r in REFUSALS):
        prep.notes.append("the model declined or wrote nothing")
        answer = _abstain(prep, relevance, raw)
    else:
        answer = _checked(prep, raw, relevance)
    answer.prompt_tokens, answer.completion_tokens = llm.usage.prompt_tokens, llm.usage.completion_tokens
    answer.timings = timings
    yield "answer", answer


def _timings(prep: Prepared, first: float | None) -> dict:
    now = time.perf_counter()
    return {"first_token_s": round((first or now) - prep.started, 3), "total_s": round(now - prep.started, 3)}


def _evidence_text(source: ev.Source) -> str:
    return f"{source.hit.title}. {ev.metadata_text(source.hit.meta)}. {source.hit.abstract}"


def _check_sentence(text: str, cites: list[int], by_n: dict[int, ev.Source]) -> Sentence:
    if cites:
        sup = supports(" ".join(_evidence_text(by_n[n]) for n in cites), text)
        return Sentence(text, cites, sup.ok, sup.reason)
    for source in sorted(by_n.values(), key=lambda s: -s.relevance):
        if supports(_evidence_text(source), text).ok:
            return Sentence(text, [source.n], True, "", attributed=True)
    return Sentence(text, [], False, "cites no source and no source backs it")


def _checked(prep: Prepared, raw: str, relevance: float) -> Answer:
    by_n = {s.n: s for s in prep.sources}
    sentences, removed = [], []
    for part in answer_sentences(raw):
        marked = parse_markers(part, len(prep.sources))
        removed += [n for n in marked.removed if n not in removed]
        if marked.text.strip(" .,;:") and marked.text not in {s.text for s in sentences}:  # small models loop
            sentences.append(_check_sentence(marked.text, marked.cited, by_n))
    if not any(s.supported for s in sentences):
        # nothing the model wrote could be verified: add the verified evidence beneath it
        prep.notes.append("no sentence of the model's answer could be verified; the best evidence is quoted")
        sentences += _extractive_sentences(prep)
    answer = _answer(prep, sentences, relevance, raw)
    answer.removed_citations = removed
    if removed:
        answer.notes.append(f"removed citations to unknown sources: {removed}")
    return answer


def _answer(prep: Prepared, sentences: list[Sentence], relevance: float, raw: str) -> Answer:
    by_n = {s.n: s for s in prep.sources}
    cited = sorted({n for s in sentences for n in s.cites})
    citations = [_citation(by_n[n], [s for s in sentences if n in s.cites]) for n in cited]
    return Answer(prep.question, render(sentences), citations, False, prep.backend_name, prep.model_name,
                  sentences=sentences, raw_text=raw, retrieval_query=prep.retrieval_query,
                  sources=[_source_dict(s) for s in prep.sources], retrieved=_retrieved(prep),
                  relevance=relevance, notes=prep.notes)


def render(sentences: list[Sentence]) -> str:
    """Sentences with their [n] markers; unsupported ones carry a visible mark."""
    out = []
    for s in sentences:
        marks = "".join(f"[{n}]" for n in s.cites)
        out.append(" ".join(x for x in (s.text, marks, "" if s.supported else UNSUPPORTED_MARK) if x))
    return " ".join(out)


def _citation(source: ev.Source, sentences: list[Sentence]) -> Citation:
    m = source.hit.meta
    said = " ".join(s.text for s in sentences)
    # the sentence most relevant to the question, if the answer quotes or uses it; else the one
    # sharing most words with what the answer says
    best = source.best_sentence
    evidence = best if not said or best in said else best_evidence_sentence(source.hit.abstract, said)
    return Citation(source.n, source.hit.paper_id, source.hit.title, evidence,
                    source.hit.abstract, m.get("org"), m.get("date"), m.get("date_raw"), m.get("authors"),
                    m.get("upvotes"), m.get("sources", ""), all(s.attributed for s in sentences),
                    arxiv_id=m.get("arxiv_id"), doi=m.get("doi"), url=m.get("url"))


def _retrieved(prep: Prepared) -> list[dict]:
    return [{"paper_id": h.paper_id, "title": h.title, "score": round(h.score, 5)} for h in prep.hits]


def _source_dict(s: ev.Source) -> dict:
    return {"n": s.n, "paper_id": s.hit.paper_id, "title": s.hit.title, "relevance": round(s.relevance, 3),
            "sentences": [t for _, t, _ in sorted(s.sentences)]}


def _extractive_picks(sources: list[ev.Source]) -> list[tuple]:
    """The best sentences; a further paper only when its sentence is nearly as good as the best,
    so a weak third source does not dilute the citations."""
    ranked = sorted(((score, s.n, pos, text) for s in sources for pos, text, score in s.sentences), reverse=True)
    picks: list[tuple] = []
    for cand in ranked:
        if len(picks) == EXTRACTIVE_SENTENCES:
            break
        if not picks or cand[1] in {p[1] for p in picks} or cand[0] >= picks[0][0] - NEW_SOURCE_WITHIN:
            picks.append(cand)
    return picks


def _extractive(prep: Prepared, relevance: float) -> Answer:
    """No LLM: the most relevant evidence sentences, verbatim, each with its citation."""
    answer = _answer(prep, _extractive_sentences(prep), relevance, "")
    answer.timings = _timings(prep, None)
    return answer


def _extractive_sentences(prep: Prepared) -> list[Sentence]:
    picks = _extractive_picks(prep.sources)
    by_n = {s.n: s for s in prep.sources}
    sentences = []
    for n in sorted({p[1] for p in picks}):
        meta = ev.metadata_text(by_n[n].hit.meta)
        header = by_n[n].hit.title + (f" ({meta})" if meta else "") + ":"
        for text in [header] + [p[3] for p in sorted(picks, key=lambda p: p[2]) if p[1] == n]:
            sup = supports(_evidence_text(by_n[n]), text)
            sentences.append(Sentence(text, [n], sup.ok, sup.reason))
    return sentences


def _abstain(prep: Prepared, relevance: float, raw: str = "") -> Answer:
    closest = _retrieved(prep)[:3]
    text = ABSTAIN_TEXT + "\n" + ABSTAIN_CLOSEST + "".join(f"\n- {c['title']}" for c in closest)
    answer = Answer(prep.question, text, [], True, prep.backend_name, prep.model_name, raw_text=raw,
                    retrieval_query=prep.retrieval_query, sources=[_source_dict(s) for s in prep.sources],
                    retrieved=_retrieved(prep), closest=closest, relevance=relevance, notes=prep.notes)
    answer.timings = _timings(prep, None)
    return answer
