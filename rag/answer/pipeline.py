"""The answer pipeline: retrieve → select evidence → (abstain | compose | prompt an LLM) → check.

`ask_stream` yields events — `("prepared", Prepared)` as soon as retrieval and evidence selection
are done (before any model is loaded, so sources reach the screen first), then `("token", str)`
pieces as the LLM writes them, then `("answer", Answer)` — and `ask` is the same stream consumed.
Both share one preparation step, so the streamed and the returned answer cannot disagree.

Trust rules, enforced here rather than hoped for from the model:
- a citation must name a numbered source; any other number is removed and reported;
- every sentence is checked against the abstracts it cites (`rag.answer.citations.supports`); a
  sentence the model left uncited is attributed only if a source passes the same check;
- verified content leads; the model's sentences that fail are set apart (`Answer.unverified`),
  never shown as backed; the evidence below the lead is quoted verbatim (rag.answer.compose);
- weak evidence, a question naming what no source mentions, or a model that answers NOT FOUND
  gives the fixed abstention plus the closest papers.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

from rag.answer import compose
from rag.answer.citations import (abbreviates, answer_sentences, best_evidence_sentence, content_stems, entities_in,
                                  expanded_acronyms, missing_numbers, name_markers, named_in, parse_markers, short_name,
                                  supports, values_in)
from rag.answer.prompts import (ABSTAIN_CLOSEST, ABSTAIN_TEXT, EMBEDDED_RULES, FOLLOWUP_NOTE, REFUSALS, RULES,
                                SMALL_RULES, TASKS, USER)
from rag.answer.shape import FIELD_KEYS, SHAPES, Shape, asked_fields, asks_for_name, asks_whether_exists, classify
from rag.answer.types import Answer, Citation, Sentence
from rag.errors import InputError, RagError
from rag.llm.base import BACKENDS, ChatBackend, get_backend
from rag.query import evidence as ev
from rag.query.facets import facets
from rag.query.questions import MAX_QUESTION_CHARS, check_history as _check_history, check_question as _check_question
from rag.query.retrieval import Filters, Hit, search
from rag.settings import Settings, get_settings

UNSUPPORTED_MARK = compose.UNSUPPORTED_MARK
PER_PAPER = 4  # most sentences of one abstract in a prompt
# Words that lean on an earlier turn. Bare "this"/"that" are left out: "in this collection"
# starts a new question as often as not; "this paper" / "this method" do not.
_ANAPHORA = re.compile(r"\b(it|its|they|their|them|the authors|(this|that|these|those) (paper|papers|method|"
                       r"model|approach|study|authors|work|framework|dataset|benchmark|technique|system))\b", re.I)


# What the model writes that is not a claim to check (_model_sentences, _echoes, _no_number).
# A sentence made only of these words points at a source and claims nothing ("This is described in
# [1].", "It is [1].", "See [2] for details.", "Papers that look at this include [1] and [2]."): its
# citations belong to the sentence before it.
_REFERENCE_WORDS = content_stems("described mentioned discussed reported presented stated explained detailed "
                                 "details see refer referred referenced source sources according look looks "
                                 "include includes number")  # "The source number is [2]."
# "This is supported by [1].", "This mechanism is described in [1].": pointers whose subject is what
# the sentence before said (verbs like "shown" claim something elsewhere: "CoT was shown to help")
_POINTER = re.compile(r"^\s*(this|these|that|those|it|they)(\s+[\w-]+){0,2}?\s+(is|are|was|were)\s+(\w+)\s+(in|by)"
                      r"(\W+and)?\W*$", re.I)  # "… by [1] and [2]." leaves "… by and."
_POINTER_VERBS = _REFERENCE_WORDS | content_stems("supported shown demonstrated covered introduced proposed found")
# stop words for the content check, but an answer to "Does X help?" that adds one of them says something
_POLARITY = re.compile(r"\b(yes|no|not|never|none|neither|nor|cannot|\w+n't)\b", re.I)
# quantities written without digits: "by up to an order of magnitude", "halves", "twice as fast"
_QUANTITY_WORDS = re.compile(r"\b(orders? of magnitude|half|halve[sd]?|twice|double[sd]?|triple[sd]?|\w+fold)\b", re.I)
_PAPER_WORDS = content_stems("paper papers study studies work")  # generic, not a claim


@dataclass
class Prepared:
    question: str
    retrieval_query: str
    hits: list[Hit]
    sources: list[ev.Source]
    shape: Shape
    settings: Settings
    notes: list[str]
    started: float
    backend: ChatBackend | None = None
    connected: bool = False  # False until the backend is chosen (after the sources are shown)
    # the sources as the model reads them: trimmed to its budget; the evidence shown under the
    # answer keeps the full selection (a smaller prompt is no reason to quote less)
    prompt_sources: list[ev.Source] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    preloaded: tuple | None = None  # (backend, notes, error) loaded while retrieval ran (prepare_overlapped)

    @property
    def backend_name(self) -> str:
        if self.backend:
            return self.backend.name
        return "extractive" if self.connected else self.settings.backend

    @property
    def model_name(self) -> str:
        return self.backend.model if self.backend else "none"


def resolve_query(question: str, history: list | None) -> str:
    """The text to retrieve with: a follow-up that leans on an earlier turn carries it along."""
    previous = [h.get("question", "") if isinstance(h, dict) else str(h) for h in (history or [])]
    previous = [p for p in previous if p.strip()]
    if previous and (_ANAPHORA.search(question) or (len(content_stems(question)) <= 3
                                                    and not _names_new(question, previous[-1]))):
        return f"{previous[-1]} {question}"
    return question


def _names_new(question: str, before: str) -> bool:
    """Does a short question name something the previous one did not ("What is GRPO?" after a
    question on data mixing)? Then it stands on its own; "and the baseline?" does not."""
    return any(n.lower() not in before.lower() for n in entities_in(question))


def prepare(question: str, *, history=None, backend: str | None = None, model: str | None = None,
            k: int | None = None, filters: Filters | None = None, settings: Settings | None = None) -> Prepared:
    """Retrieve and select evidence; no model is loaded yet."""
    started = time.perf_counter()
    question, history = _check_question(question), _check_history(history)
    settings = _settings_for(settings or get_settings(), backend, model, k)
    if settings.backend not in BACKENDS:
        raise InputError(f"backend {settings.backend!r} is unknown; choose one of {', '.join(BACKENDS)}")
    query = resolve_query(question, history)
    hits = search(query, k=settings.top_k, filters=filters, settings=settings)
    shape = classify(question)
    pinned = _facet_hits(question, filters, settings) if shape.kind == "multi" else []
    hits = pinned + [h for h in hits if h.paper_id not in {p.paper_id for p in pinned}]
    papers = min(shape.papers, settings.sources_in_prompt)
    sources = ev.select(question, hits, settings.ollama_evidence_tokens, papers, shape.within,
                        max(PER_PAPER, shape.quotes), shape.score_ratio, shape.claim_bonus, pinned=len(pinned),
                        agree=shape.agree)
    prep = Prepared(question, query, hits, sources, shape, settings, [], started)
    if not hits and filters is not None and filters.active():  # the filters, not the question, found nothing
        prep.notes.append(f"no paper matches the filters ({_described(filters)}); widen or remove them "
                          "(papers without a known year never match a date filter)")
    prep.timings["sources_s"] = round(time.perf_counter() - started, 3)
    return prep


def _described(filters: Filters) -> str:
    parts = [f"from {filters.date_from}" if filters.date_from else "",
             f"to {filters.date_to}" if filters.date_to else "",
             f"organisation containing {filters.org!r}" if filters.org else ""]
    return ", ".join(p for p in parts if p)


NAMED_PAPERS = 3  # a name in at most this many papers is specific enough to pin them


def _facet_hits(question: str, filters: Filters | None, settings: Settings) -> list[Hit]:
    """The top paper for each part of a question that describes several ("one on A, one on B"),
    then the papers that name a rare thing the question names (`_named_hits`)."""
    pinned: list[Hit] = []
    for query in facets(question)[:settings.sources_in_prompt]:
        top = search(query, k=1, filters=filters, settings=settings)
        if top and top[0].paper_id not in {h.paper_id for h in pinned}:
            pinned.append(top[0])
    for hit in _named_hits(question, filters, settings):
        if len(pinned) < settings.sources_in_prompt and hit.paper_id not in {h.paper_id for h in pinned}:
            pinned.append(hit)
    return pinned


def _named_hits(question: str, filters: Filters | None, settings: Settings) -> list[Hit]:
    """The papers whose text holds a name the question asks about, when at most NAMED_PAPERS do
    ("which studies use OLMo models", "benchmarks such as OpenBookQA"). Searched with the rest of
    the question, a rare name is outweighed by its many common words: a blind batch's OLMo and
    OpenBookQA papers ranked 5th and below, alone they rank first. A name many papers hold
    ("GSM8K") picks out none of them."""
    out: list[Hit] = []
    for name in entities_in(question):
        hits = search(name, k=NAMED_PAPERS + 1, filters=filters, mode="bm25", settings=settings)
        if len(hits) <= NAMED_PAPERS:
            out += [h for h in hits if h.paper_id not in {o.paper_id for o in out}]
    return out


def _settings_for(settings: Settings, backend, model, k) -> Settings:
    overrides = {"backend": backend, "top_k": k}
    if model and str(model).endswith(".gguf"):
        overrides["llamacpp_model_path"] = model
    elif model:
        overrides["ollama_model"] = model
    return settings.with_overrides(**overrides)


def prepare_overlapped(question: str, **options) -> Prepared:
    """`prepare`, run in a forked child while this process loads the model: for a fresh process
    (`rag ask`), where both are first-time costs (~1 s each on 2 cores). A thread cannot do this:
    xllamacpp holds the GIL for the whole model load, which stalls retrieval (sources 1.3 -> 4.5 s).
    Falls back to plain `prepare` when no embedded model may be loaded, when threads are already
    running (forking them is unsafe), and when the child fails (the error then surfaces here)."""
    import multiprocessing

    question = _check_question(question)  # a bad question costs no model load
    settings = _settings_for(options.get("settings") or get_settings(), options.get("backend"),
                             options.get("model"), options.get("k"))
    if (settings.backend not in ("auto", "llamacpp")  # Ollama's "load" is an HTTP call: nothing to overlap
            or classify(question).kind == "metadata" or threading.active_count() > 1):
        return prepare(question, **options)
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_prepare_child, args=(send, question, options), daemon=True)
    child.start()
    send.close()
    notes: list[str] = []
    loading = time.perf_counter()
    try:
        backend, error = get_backend(settings.backend, settings, notes), None
    except RagError as e:
        backend, error = None, e
    loaded_s = round(time.perf_counter() - loading, 3)
    try:
        prep = receive.recv()
    except EOFError:  # the child died without a word
        prep = None
    child.join()
    if prep is None:
        prep = prepare(question, **options)
    prep.preloaded = (backend, notes, error)
    prep.timings["backend_overlapped_s"] = loaded_s  # choosing and loading it, while the child retrieved
    return prep


def _prepare_child(send, question: str, options: dict) -> None:
    try:
        send.send(prepare(question, **options))
    except BaseException:  # noqa: BLE001 - the parent runs prepare itself and raises the real error
        send.send(None)
    finally:
        send.close()


def _connect(prep: Prepared) -> ChatBackend | None:
    """Choose the backend (auto explains its choice in the notes) and fit the evidence to it."""
    if prep.preloaded is not None:
        prep.backend, notes, error = prep.preloaded
        prep.notes.extend(notes)
        if error is not None:
            raise error
    else:
        prep.backend = get_backend(prep.settings.backend, prep.settings, prep.notes)
    prep.connected = True
    if prep.backend is not None and prep.backend.name != "ollama":
        prep.prompt_sources = ev.trim(prep.sources, prep.settings.evidence_tokens)
    elif prep.backend is not None:  # leave room for instructions, question and answer inside num_ctx
        room = prep.backend.context_window - prep.settings.max_answer_tokens - 400
        prep.prompt_sources = ev.trim(prep.sources, max(100, min(prep.settings.ollama_evidence_tokens, room)))
    return prep.backend


def ask_stream(question: str, *, stream: bool = True, overlap: bool = False, **options) -> Iterator[tuple[str, object]]:
    """Events: ("prepared", Prepared), ("token", str)…, ("answer", Answer).
    With stream=False the LLM is called once, non-streaming, and one token event carries it all.
    overlap=True loads the model while retrieving (prepare_overlapped): for one-shot processes."""
    prep = prepare_overlapped(question, **options) if overlap else prepare(question, **options)
    yield "prepared", prep
    relevance = ev.relevance_signal(prep.sources)
    reason = _abstain_reason(prep, relevance)
    if reason:
        prep.notes.append(reason)
        yield "answer", _abstain(prep, relevance)
        return
    if prep.shape.kind == "metadata" or _connect(prep) is None:
        if prep.shape.kind == "metadata":
            prep.connected = True
            prep.notes.append("answered from the listings' publication details")
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
    if prep.shape.kind == "metadata":
        return _missing_details(prep)
    return None


def _missing_details(prep: Prepared) -> str | None:
    """A metadata question about details the listings do not give cannot be answered."""
    asked = asked_fields(prep.question)
    given = [f for f in asked if any(s.hit.meta.get(k) is not None for s in prep.sources for k in FIELD_KEYS[f])]
    if asked and not given:
        return f"the listings give no {' or '.join(asked)} for the matching papers"
    return None


def ask(question: str, **options) -> Answer:
    """Answer a question from the corpus, with citations: the public `rag.ask`."""
    for kind, payload in ask_stream(question, stream=False, **options):
        if kind == "answer":
            return payload
    raise RuntimeError("ask_stream ended without an answer")  # unreachable: every path yields one


def messages_for(prep: Prepared, rules: str | None = None) -> list[dict]:
    """The prompt; `rules` overrides the backend's instruction line (evals/prompt_variants.py)."""
    question = prep.question
    if prep.retrieval_query != prep.question:
        question += FOLLOWUP_NOTE.format(previous=prep.retrieval_query[: -len(prep.question)].strip())
    # The embedded models copy a heading's "(published …; 10 authors; 2 upvotes)" into their
    # answers, and metadata questions never reach them (answered from the listings): titles only.
    embedded = prep.backend.name == "llamacpp"
    sources = "\n\n".join(s.render(meta=not embedded) for s in prep.prompt_sources or prep.sources)
    if rules is None and embedded:
        rules = SMALL_RULES if prep.backend.small else EMBEDDED_RULES
    elif rules is None:
        rules = RULES
    user = USER.format(sources=sources, question=question, task=TASKS[prep.shape.kind], rules=rules)
    return [{"role": "user", "content": user}]


def _generate(prep: Prepared, relevance: float, stream: bool) -> Iterator[tuple[str, object]]:
    llm, first, pieces = prep.backend, None, []
    messages = messages_for(prep)
    limit = prep.settings.small_answer_tokens if llm.small else prep.settings.max_answer_tokens
    for piece in llm.stream(messages, limit) if stream else [llm.complete(messages, limit)]:
        first = first or time.perf_counter()
        pieces.append(piece)
        yield "token", piece
    raw = "".join(pieces)
    answer = None if _declined(prep, raw) else _checked(prep, raw, relevance)
    # the guess checks are for fact questions and for multi-paper questions asking for names, not
    # papers ("which simulation benchmarks … and how many methods"): asked "which paper …", citing
    # the paper answers ("The study by [1] inserts …"), whatever the question's wording
    fact = prep.shape.kind == "fact"
    named = fact or _names_across(prep)
    quantityless = answer is not None and fact and _no_number(prep, answer)
    nameless = answer is not None and named and _no_name(prep, answer)
    declined = answer is None or (named and _restates(prep, answer))
    if quantityless or nameless:
        prep.notes.append(f"the question asks for a {'quantity' if quantityless else 'name'} and the model's "
                          "answer states none")
        answer = _abstain(prep, relevance, raw)
    # The model's NOT FOUND abstains only over weak evidence: over strong evidence the 1.5B model
    # also declines answerable questions (asked "which papers …", it declines them as a whole),
    # which the evidence, checked by the other abstention signals first, still answers.
    elif declined and relevance < prep.settings.abstain_declined_below:
        prep.notes.append(f"the model found no answer in the sources, and the best evidence relevance "
                          f"{relevance:.2f} < {prep.settings.abstain_declined_below:.2f}")
        answer = _abstain(prep, relevance, raw)
    elif declined:  # strong evidence the model did not use: quote it rather than refuse
        prep.notes.append("the model found no direct answer in the sources; the closest evidence is quoted")
        answer = _answer(prep, compose.evidence(prep.sources, prep.shape), relevance, raw)
    elif fact and (invented := _invented_quantity(prep, answer)):
        prep.notes.append(f"the question asks for a quantity, and the only one the model gave ({invented}) is in "
                          "no retrieved abstract")
        abstained = _abstain(prep, relevance, raw)
        abstained.unverified = answer.unverified  # the guess stays visible, set apart
        answer = abstained
    elif prep.shape.kind == "multi" and (weak := _weak_unbacked(prep, relevance)) and not _backed_claims(prep, answer):
        prep.notes.append(f"nothing the model wrote could be verified beyond naming papers, and {weak}")
        answer = _abstain(prep, relevance, raw)
    elif named and not any(s.supported for s in answer.model_sentences):
        answer = _unbacked(prep, answer, relevance, raw)
    answer.prompt_tokens, answer.completion_tokens = llm.usage.prompt_tokens, llm.usage.completion_tokens
    answer.timings = _timings(prep, first)
    yield "answer", answer


def _invented_quantity(prep: Prepared, answer: Answer) -> str | None:
    """Asked "how many …", the model's backed sentences state no number and its unbacked ones state
    one no retrieved abstract (nor the question) states in any form: that number, else None. The
    backed part is then the question's own setting, the quantity a guess (dev: "which pair of
    domains conflicted most, and how many points were lost?" -> "… lost 10 points" from an abstract
    that gives no points at all)."""
    backed = " ".join(s.text for s in answer.model_sentences if s.supported)
    if not ev.wants_number(prep.question) or not backed:  # nothing backed: `_unbacked` judges it
        return None
    if values_in(backed) - values_in(prep.retrieval_query):
        return None
    unbacked = " ".join(s.text for s in answer.model_sentences if not s.supported)
    invented = missing_numbers(unbacked, _retrieved_text(prep)) if unbacked else []
    return invented[0] if invented else None


def _retrieved_text(prep: Prepared) -> str:
    """What a number the model states may come from: the question and the retrieved abstracts."""
    return " ".join([prep.retrieval_query, *(f"{s.hit.title} {s.hit.abstract}" for s in prep.sources)])


def _weak_unbacked(prep: Prepared, relevance: float) -> str | None:
    """Is the evidence too weak to stand for a multi-paper answer that backs nothing? Below
    `abstain_unbacked_below` always; below `abstain_unagreed_below` when BM25 and dense search do
    not both rank the top paper in their top 3: two independent rankings agreeing on it is what
    on-topic questions the evidence matches weakly still have ("where does data privacy come up"),
    and off-topic ones lack (chip placement, humour: each retriever's nearest paper differs)."""
    floor, unagreed = prep.settings.abstain_unbacked_below, prep.settings.abstain_unagreed_below
    if relevance < floor:
        return f"the best evidence relevance {relevance:.2f} < {floor:.2f}"
    if relevance < unagreed and prep.hits and not ev.agreed(prep.hits[0], SHAPES["multi"].agree):
        return (f"the best evidence relevance {relevance:.2f} < {unagreed:.2f} with the two retrievers "
                "disagreeing on the top paper")
    return None


def _backed_claims(prep: Prepared, answer: Answer) -> bool:
    """Did the model write anything verified besides the papers' names? Over weak evidence, a
    "which papers …" answer that only names the nearest papers (or says what none of them backs)
    is what off-topic questions get: traffic-signal control, sparse autoencoders, temporal
    reasoning in a corpus without them all came back as "[1] <nearest title>". Multi-paper
    questions only: asked "which paper …", naming the top paper *is* the answer, and described in
    a user's own words the right paper's evidence is as weak (a blind batch: two answerable
    which-paper questions at 0.53 and 0.59 declined, one unanswerable caught at 0.55)."""
    return any(s.supported and not _names_only(s.text, prep.sources) for s in answer.model_sentences)


def _unbacked(prep: Prepared, answer: Answer, relevance: float, raw: str) -> Answer:
    """A question asking for a fact or for names, and nothing the model wrote can be backed. When
    the abstracts also lack the thing asked for, or the answer states a number no retrieved
    abstract (nor the question) states in any form, the answer is a guess: abstain (unanswerables
    that got past retrieval were answered with invented learning rates and scores). Otherwise the
    model garbled evidence that holds the answer: quote it. A second signal is required: on the test split,
    abstaining on an unbacked answer alone declined 9 of 75 answerable questions (0.12)."""
    reason = _guess_reason(prep, answer)
    if not reason:
        prep.notes.append("no sentence of the model's answer could be verified; the best evidence is quoted")
        return answer
    prep.notes.append(f"none of the model's sentences could be verified, and {reason}")
    abstained = _abstain(prep, relevance, raw)
    abstained.unverified = answer.unverified
    return abstained


def _no_number(prep: Prepared, answer: Answer) -> bool:
    """Asked "how many …", the model wrote no number the question does not already hold: it found
    none (dev: it restates the question, "the paper periodically re-estimates difficulty …", when
    the abstract lacks the quantity; no answerable dev question was answered that way)."""
    said = _said(answer)
    if not ev.wants_number(prep.question) or _QUANTITY_WORDS.search(said):
        return False
    # a bracketed number naming no source is the model's number too ("[15]" for "+15 points")
    stated = values_in(said) | {str(n) for n in answer.removed_citations}
    return not stated - values_in(prep.retrieval_query)


# "which papers build theory-of-mind datasets, and what are the datasets?" asks for papers first
_PAPERS_ASKED = re.compile(r"\b(which|what|list the|name the)\s+(papers?|studies|works)\b", re.I)


def _names_across(prep: Prepared) -> bool:
    """A multi-paper question that asks for names, not for papers ("list the datasets used to
    check …"): answered without one, the model found none, as for a fact question (dev: "The
    real-world datasets used to check the theory … are [1].")."""
    return prep.shape.kind == "multi" and asks_for_name(prep.question) and not _PAPERS_ASKED.search(prep.question)


def _no_name(prep: Prepared, answer: Answer) -> bool:
    """Asked "which base model / datasets …", the model named nothing the question does not: it
    found none ("RECKONING was evaluated on two multi-hop reasoning datasets [1]."). A source's
    title is where the answer comes from, not what was asked for ("The paper \"Warm Up Before You
    Train …\" warms up the base model …"). Quantity questions are left to `_no_number`."""
    if not asks_for_name(prep.question) or ev.wants_number(prep.question):
        return False
    said = _without_titles(_said(answer), prep.sources)
    asked = prep.retrieval_query.lower()
    spelled = expanded_acronyms(said, entities_in(prep.retrieval_query))  # "Group Relative …" for GRPO
    return not [n for n in entities_in(said) if not named_in(n, asked) and n not in spelled
                and not abbreviates(n, prep.retrieval_query)]  # "CoT" for the question's "chain-of-thought"


def _restates(prep: Prepared, answer: Answer) -> bool:
    """The answer to a fact question only echoes the question: the model found no answer ("The
    three datasets used to evaluate MindMap are [1], [2], and [3]")."""
    said = _without_titles(_said(answer), prep.sources)
    return bool(said.strip()) and _echoes(said, prep.retrieval_query)


def _echoes(text: str, question: str) -> bool:
    """Does `text` say nothing `question` did not: no new content word, number or negation?"""
    new_words = content_stems(text) - content_stems(question) - _REFERENCE_WORDS - _PAPER_WORDS
    polarity = {w.lower() for w in _POLARITY.findall(text)} - {w.lower() for w in _POLARITY.findall(question)}
    return not new_words and not polarity and not values_in(text) - values_in(question)


def _said(answer: Answer) -> str:
    """What the model wrote (its checked sentences, without citation markers)."""
    return " ".join(s.text for s in answer.model_sentences)


def _guess_reason(prep: Prepared, answer: Answer) -> str | None:
    missing = ev.asked_for_missing(prep.question, prep.sources)
    if missing:
        return f"the retrieved abstracts never mention the {' '.join(missing)} asked for"
    said = _said(answer)
    # asked for names, an unbacked answer naming what the top-ranked paper never names (a benchmark
    # a neighbouring abstract mentions) borrowed it
    top = prep.sources[0].hit
    known = f"{prep.retrieval_query} {top.title} {top.abstract}".lower()
    names = [] if ev.wants_number(prep.question) else [n for n in entities_in(said) if not named_in(n, known)]
    if names:
        return f"the top-ranked abstract never names its {names[0]}"
    invented = missing_numbers(said, _retrieved_text(prep))
    if invented:
        return f"no retrieved abstract states its number {invented[0]}"
    return None


def _refuses(text: str) -> bool:
    return any(r in text.lower() for r in REFUSALS)


def _declined(prep: Prepared, raw: str) -> bool:
    """Did the model find nothing? A multi-paper answer may decline for one source and answer for
    another ("[3] NOT FOUND"), so it declines only when every sentence does. Any other answer that
    declines anywhere counts as a refusal: half an answer to a fact question is usually a guess."""
    if prep.shape.kind != "multi":
        return not raw.strip() or _refuses(raw)
    written = _model_sentences(raw, len(prep.sources))[0]
    if not written:  # bare markers ("[2] [3]") point at papers, as titles do: not a refusal
        return not parse_markers(raw, len(prep.sources)).cited
    return all(_refuses(text) for text, _, _ in written)


def _timings(prep: Prepared, first: float | None) -> dict:
    now = time.perf_counter()
    return {**prep.timings, "first_token_s": round((first or now) - prep.started, 3),
            "total_s": round(now - prep.started, 3)}


def _check_sentence(text: str, cites: list[int], by_n: dict[int, ev.Source]) -> Sentence:
    """Checked against what it cites; a sentence that cites nothing, or the wrong source (small
    models mix up numbers), is attributed to a source that backs it on its own, else unsupported."""
    sup = supports(" ".join(compose.evidence_text(by_n[n]) for n in cites), text) if cites else None
    if sup and sup.ok:
        return Sentence(text, cites, True)
    for source in sorted((s for s in by_n.values() if s.n not in cites), key=lambda s: -s.relevance):
        if supports(compose.evidence_text(source), text).ok:
            return Sentence(text, [source.n], True, "", attributed=True)
    if sup:
        return Sentence(text, cites, False, sup.reason)
    return Sentence(text, [], False, "cites no source and no source backs it")


def _model_sentences(raw: str, n_sources: int, names: dict[int, str] | None = None
                     ) -> tuple[list[tuple[str, list[int], str]], list[int]]:
    """(text, cited numbers, shown text) per sentence the model wrote, bullets included; and dangling
    numbers. A sentence that only points at sources adds its citations to the sentence before it.
    The shown text keeps a paper's name where a marker was used as a noun ("[2] finds …" -> "MetaLadder
    finds …"; `names`: number -> name); the text is the sentence as written, markers taken out."""
    out, removed = [], []
    for line in raw.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line)
        for part in answer_sentences(line):
            marked = parse_markers(part, n_sources)
            removed += [n for n in marked.removed if n not in removed]
            if out and _points(marked.text):
                out[-1][1].extend(n for n in marked.cited if n not in out[-1][1])
                continue
            shown = parse_markers(name_markers(part, names or {}), n_sources).text
            if marked.text.strip(" .,;:-") and marked.text not in {t for t, _, _ in out}:  # small models loop
                out.append((marked.text, marked.cited, shown))
    return out, removed


def _points(text: str) -> bool:
    """Does the sentence (its citation markers removed) only point at its sources?"""
    pointer = _POINTER.match(text)
    if pointer and content_stems(pointer.group(4)) <= _POINTER_VERBS:
        return True
    return not content_stems(text) - _REFERENCE_WORDS - _PAPER_WORDS and not _POLARITY.search(text)


def _affirmed(text: str, question: str) -> str:
    """`text` without a leading "Yes," when the question asks whether something exists: the model's
    "Yes, there are methods that …" then restates it, and the evidence blocks show whether it holds."""
    return re.sub(r"^\s*yes\b\W*", "", text, flags=re.I) if asks_whether_exists(question) else text


def _checked(prep: Prepared, raw: str, relevance: float) -> Answer:
    """The model's sentences checked; backed ones lead, the evidence of what they cite follows."""
    by_n = {s.n: s for s in prep.sources}
    names = {s.n: short_name(s.hit.title) for s in prep.sources}
    written, removed = _model_sentences(raw, len(prep.sources), names)
    written = [w for w in written if not _refuses(w[0])]  # "[3] NOT FOUND" claims nothing
    # Asked "which paper …", the model often answers by echoing the question with a citation ("The
    # paper that trains … is [1]"): the citation is the answer, and the paper's block below shows it.
    # Asked whether something exists, "Yes, there are methods that <the question>" claims nothing
    # the evidence blocks do not show, cited or not.
    echoes = [w for w in written if prep.shape.kind != "fact" and (w[1] or asks_whether_exists(prep.retrieval_query))
              and _echoes(_affirmed(w[0], prep.retrieval_query), prep.retrieval_query)]
    checked = [_check_sentence(shown, cites, by_n) for text, cites, shown in written
               if (text, cites, shown) not in echoes]
    lead = [s for s in checked if s.supported]
    cited = {n for s in lead for n in s.cites} | {n for _, cites, _ in echoes for n in cites}
    if not lead and checked and prep.shape.kind == "multi":  # (an echo naming papers was not a claim)
        prep.notes.append("no sentence of the model's answer could be verified; the best evidence is quoted")
    if prep.shape.kind == "multi":  # each paper gets its own block with its title below
        lead = [s for s in lead if not _names_only(s.text, prep.sources)]
    # a multi-paper answer keeps one block per relevant paper, whichever ones the model named
    evidence = compose.evidence(prep.sources, prep.shape, None if prep.shape.kind == "multi" else cited or None,
                                compose.backing_sentences(prep.sources, lead))
    answer = _answer(prep, lead + evidence, relevance, raw)
    answer.unverified = [s for s in checked if not s.supported]
    answer.removed_citations = removed
    if removed:
        answer.notes.append(f"removed citations to unknown sources: {removed}")
    return answer


def _names_only(text: str, sources: list[ev.Source]) -> bool:
    """Does the sentence only name papers ("[1] Title A [2] Title B")? The 1.5B model answers
    "which papers …" that way; leading with the titles run together says nothing the blocks don't.
    A piece of a title counts too: "Can LLMs Learn from Previous Mistakes? Investigating …" is
    split into two sentences at its question mark."""
    piece = text.strip(" .,;:").lower()
    if piece and any(piece in s.hit.title.lower() for s in sources):
        return True
    return not content_stems(_without_titles(text, sources)) - _PAPER_WORDS


def _without_titles(text: str, sources: list[ev.Source]) -> str:
    """`text` with every source's title, and the short name a marker stands for (`name_markers`),
    taken out: a title names a paper, it claims nothing."""
    for source in sources:
        for name in (source.hit.title, short_name(source.hit.title)):
            text = re.sub(re.escape(name), " ", text, flags=re.I)
    return text


def _answer(prep: Prepared, sentences: list[Sentence], relevance: float, raw: str) -> Answer:
    by_n = {s.n: s for s in prep.sources}
    cited = sorted({n for s in sentences for n in s.cites})
    citations = [_citation(by_n[n], [s for s in sentences if n in s.cites]) for n in cited]
    return Answer(prep.question, compose.render(sentences), citations, False, prep.backend_name, prep.model_name,
                  sentences=sentences, kind=prep.shape.kind, raw_text=raw, retrieval_query=prep.retrieval_query,
                  sources=[_source_dict(s) for s in prep.sources], retrieved=_retrieved(prep),
                  relevance=relevance, notes=prep.notes)


def render(sentences: list[Sentence]) -> str:
    """The answer text for a list of checked sentences (rag.answer.compose.render)."""
    return compose.render(sentences)


def _citation(source: ev.Source, sentences: list[Sentence]) -> Citation:
    m = source.hit.meta
    said = " ".join(s.text for s in sentences if s.origin != "title")
    # the sentence most relevant to the question, if the answer quotes or uses it; else the one
    # sharing most words with what the answer says
    best = source.best_sentence
    evidence = best if not said or best in said else best_evidence_sentence(source.hit.abstract, said)
    return Citation(source.n, source.hit.paper_id, source.hit.title, evidence,
                    source.hit.abstract, m.get("org"), m.get("date"), m.get("date_raw"), m.get("authors"),
                    m.get("upvotes"), m.get("sources", ""),
                    all(s.attributed for s in sentences if s.origin == "model") and
                    any(s.origin == "model" for s in sentences),
                    arxiv_id=m.get("arxiv_id"), doi=m.get("doi"), url=m.get("url"))


def _retrieved(prep: Prepared) -> list[dict]:
    return [{"paper_id": h.paper_id, "title": h.title, "score": round(h.score, 5)} for h in prep.hits]


def _source_dict(s: ev.Source) -> dict:
    return {"n": s.n, "paper_id": s.hit.paper_id, "title": s.hit.title, "relevance": round(s.relevance, 3),
            "sentences": [x.text for x in sorted(s.sentences, key=lambda x: x.pos)]}


def _extractive(prep: Prepared, relevance: float) -> Answer:
    """No LLM: per chosen paper its heading and best sentences, verbatim, each cited."""
    answer = _answer(prep, compose.evidence(prep.sources, prep.shape), relevance, "")
    answer.timings = _timings(prep, None)
    return answer


def _abstain(prep: Prepared, relevance: float, raw: str = "") -> Answer:
    closest = _retrieved(prep)[:3]
    text = ABSTAIN_TEXT + ("\n" + ABSTAIN_CLOSEST + "".join(f"\n- {c['title']}" for c in closest) if closest else "")
    answer = Answer(prep.question, text, [], True, prep.backend_name, prep.model_name, raw_text=raw,
                    kind=prep.shape.kind, retrieval_query=prep.retrieval_query,
                    sources=[_source_dict(s) for s in prep.sources],
                    retrieved=_retrieved(prep), closest=closest, relevance=relevance, notes=prep.notes)
    answer.timings = _timings(prep, None)
    return answer
