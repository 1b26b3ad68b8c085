"""4–5. `ask` with the embedded model (llama.cpp, the default RAG_LLAMACPP_MODEL) and with the extractive backend.

From process start: `python -m rag ask "Q" --backend llamacpp|extractive` as a subprocess, timed
to its first stdout byte (the CLI prints the retrieved sources there first — evidence first — then
the model's draft token by token, then the checked answer; everything else goes to stderr) and to
its exit. An abstention has no tokens: its first byte is the fixed
abstention text.

In-process, warm (model, MiniLM and retriever loaded; one untimed warm-up question), each question
is asked twice back to back:
- ours: `rag.answer.ask_stream(q, backend="llamacpp")`, timed from the call to the first "token"
  event and to the "answer" event (so retrieval, evidence selection, generation and the citation
  check all count); prompt tokens from `Answer.prompt_tokens`;
- naive: retrieve the top 4 papers, put their WHOLE abstracts in the prompt, in our own prompt
  template (`rag.answer.prompts.USER`, the fact task), stream it through the same `LlamaCppBackend`
  with the same answer-token cap; timed from before the retrieval.
The two alternate, so consecutive prompts differ and llama.cpp reuses little from its KV cache.

The from-process-start rows use the naive in-process figures as their baseline (as the brief asks):
that ratio is conservative, because ours pays start-up and the baseline does not.
"""

from __future__ import annotations

import time

from .common import Workspace, child_env, gold_questions, summary
from .proc import run_timed
from .report import Row, Section

MULTILINGUAL = "How many multilingual benchmarks did the position paper on multilingual evaluation examine?"
PICK_TYPES = ("fact", "which_paper", "metadata", "unanswerable")  # first gold question of each type
TARGET_FIRST_S, TARGET_TOTAL_S = 6.0, 15.0


def pick_questions() -> list[dict]:
    gold = [g for g in gold_questions() if g["question"] != MULTILINGUAL and not g.get("history")]
    picked = [{"id": "multilingual", "type": "fact", "question": MULTILINGUAL}]
    for kind in PICK_TYPES:
        g = next(g for g in gold if g["type"] == kind)
        picked.append({"id": g["id"], "type": kind, "question": g["question"]})
    return picked


def cli_ask(ws: Workspace, question: str, backend: str) -> dict:
    run = run_timed(["-m", "rag", "ask", question, "--backend", backend], child_env(ws.index_dir))
    return {"first_byte_s": run.first_byte_s if run.first_byte_s is not None else run.wall_s,
            "wall_s": run.wall_s, "stdout_head": run.stdout.strip()[:100]}


def naive_messages(question: str, settings, system: str = "") -> list[dict]:
    """The top 4 retrieved papers' whole abstracts, in our own prompt template."""
    from rag.answer.prompts import RULES, TASKS, USER
    from rag.query.retrieval import search

    hits = search(question, k=4, settings=settings)
    sources = "\n\n".join(f"[{n}] {h.title}\n{h.abstract}" for n, h in enumerate(hits, 1))
    user = USER.format(sources=sources, question=question, task=TASKS["fact"], rules=RULES)
    return [{"role": "user", "content": user}]


def answer_limit(llm, settings) -> int:
    """The answer-token cap ours gives this backend (mirrors `rag.answer._generate`)."""
    if getattr(llm, "small", False):
        return getattr(settings, "small_answer_tokens", settings.max_answer_tokens)
    return settings.max_answer_tokens


def ours_in_process(question: str, settings) -> tuple[dict, str]:
    """Timings and tokens of one warm ask, and the system prompt it used."""
    from rag.answer.pipeline import ask_stream, messages_for

    t0, first, answer, prep = time.perf_counter(), None, None, None
    for kind, payload in ask_stream(question, backend="llamacpp", settings=settings):
        if kind == "token" and first is None:
            first = time.perf_counter() - t0
        prep = payload if kind == "prepared" else prep
        answer = payload if kind == "answer" else answer
    total = time.perf_counter() - t0
    return ({"first_s": total if first is None else first, "total_s": total, "abstained": answer.abstained,
             "prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
             "lib_timings": answer.timings, "text": answer.text[:160]},
            messages_for(prep)[0]["content"] if prep.backend else "")


def naive_in_process(question: str, settings, llm, system: str) -> dict:
    t0, first, pieces = time.perf_counter(), None, []
    for piece in llm.stream(naive_messages(question, settings, system), answer_limit(llm, settings)):
        first = first or time.perf_counter() - t0
        pieces.append(piece)
    total = time.perf_counter() - t0
    return {"first_s": total if first is None else first, "total_s": total,
            "prompt_tokens": llm.usage.prompt_tokens, "completion_tokens": llm.usage.completion_tokens,
            "text": "".join(pieces)[:160]}


def subprocess_runs(ws: Workspace, questions: list[dict], reps: int) -> list[dict]:
    out = []
    for rep in range(reps):
        for q in questions:
            print(f"  `rag ask` subprocess ({q['id']}, rep {rep + 1})…", flush=True)
            out.append({"id": q["id"], "llamacpp": cli_ask(ws, q["question"], "llamacpp"),
                        "extractive": cli_ask(ws, q["question"], "extractive")})
    return out


def in_process_runs(ws: Workspace, questions: list[dict], reps: int) -> list[dict]:
    from rag.llm.llamacpp import LlamaCppBackend

    settings = ws.indexed_settings(backend="llamacpp")
    llm = LlamaCppBackend.load(settings)
    ours_in_process(gold_questions()[-1]["question"], settings)  # untimed warm-up
    out = []
    for rep in range(reps):
        for q in questions:
            print(f"  in-process ours vs naive ({q['id']}, rep {rep + 1})…", flush=True)
            ours, system = ours_in_process(q["question"], settings)
            out.append({"id": q["id"], "ours": ours, "naive": naive_in_process(q["question"], settings, llm, system)})
    return out


def _vals(runs: list[dict], side: str, key: str) -> list[float]:
    return [r[side][key] for r in runs if r[side].get(key) is not None]


def _stat_rows(label: str, ours: list[float], base: list[float], vs: str, target: float | None) -> list[Row]:
    mine, theirs = summary(ours), summary(base)
    return [Row(f"{label} {stat}", mine[stat], theirs[stat], "s", vs, target, mine["n"]) for stat in ("p50", "p95")]


def _rows(sub: list[dict], inp: list[dict]) -> list[Row]:
    naive_first, naive_total = _vals(inp, "naive", "first_s"), _vals(inp, "naive", "total_s")
    vs = "naive prompt, in-process warm"
    rows = _stat_rows("`rag ask` llamacpp: first answer byte from process start", _vals(sub, "llamacpp", "first_byte_s"),
                      naive_first, vs, TARGET_FIRST_S)
    rows += _stat_rows("`rag ask` llamacpp: full answer (exit) from process start", _vals(sub, "llamacpp", "wall_s"),
                       naive_total, vs, TARGET_TOTAL_S)
    rows += _stat_rows("ask_stream() llamacpp in-process warm: first token", _vals(inp, "ours", "first_s"),
                       naive_first, vs, None)
    rows += _stat_rows("ask_stream() llamacpp in-process warm: full answer", _vals(inp, "ours", "total_s"),
                       naive_total, vs, None)
    answered = [r for r in inp if not r["ours"]["abstained"]]
    rows.append(Row("prompt tokens (answered questions, median)", summary(_vals(answered, "ours", "prompt_tokens"))["median"],
                    summary(_vals(answered, "naive", "prompt_tokens"))["median"], "tokens", "naive: 4 whole abstracts",
                    None, len(answered)))
    return rows + _extractive_rows(sub)


def _extractive_rows(sub: list[dict]) -> list[Row]:
    vs, n = "our `rag ask` llamacpp", len(sub)
    first, wall = (summary(_vals(sub, "extractive", k))["median"] for k in ("first_byte_s", "wall_s"))
    return [Row("`rag ask` extractive: first answer byte from process start", first,
                summary(_vals(sub, "llamacpp", "first_byte_s"))["median"], "s", vs, TARGET_FIRST_S, n),
            Row("`rag ask` extractive: full answer (exit) from process start", wall,
                summary(_vals(sub, "llamacpp", "wall_s"))["median"], "s", vs, TARGET_TOTAL_S, n)]


def _details(questions: list[dict], sub: list[dict], inp: list[dict]) -> list[dict]:
    rows = []
    for q in questions:
        s = next(r for r in sub if r["id"] == q["id"])
        i = next(r for r in inp if r["id"] == q["id"])
        rows.append({"question": f"{q['id']} ({q['type']}): {q['question'][:60]}…",
                     "CLI first/total s": f"{s['llamacpp']['first_byte_s']:.2f} / {s['llamacpp']['wall_s']:.2f}",
                     "in-proc first/total s": f"{i['ours']['first_s']:.2f} / {i['ours']['total_s']:.2f}",
                     "naive first/total s": f"{i['naive']['first_s']:.2f} / {i['naive']['total_s']:.2f}",
                     "prompt tok ours/naive": f"{i['ours']['prompt_tokens']} / {i['naive']['prompt_tokens']}",
                     "answer tok ours/naive": f"{i['ours']['completion_tokens']} / {i['naive']['completion_tokens']}",
                     "ours abstained": _abstention(i["ours"]),
                     "extractive first/total s": f"{s['extractive']['first_byte_s']:.2f} / {s['extractive']['wall_s']:.2f}"})
    return rows


def _abstention(ours: dict) -> str:
    if not ours["abstained"]:
        return "no"
    return "yes, weak evidence (no LLM call)" if ours["prompt_tokens"] is None else "yes, model declined"


def run(ws: Workspace, reps: int = 1) -> Section:
    questions = pick_questions()
    if ws.index_dir is None:
        ws.indexed_settings()
    sub = subprocess_runs(ws, questions, reps)
    inp = in_process_runs(ws, questions, reps)
    notes = ["Per-question figures below are from the first repetition.",
             "An abstention on weak evidence makes no LLM call: its first byte is the fixed abstention text and "
             "it has no prompt tokens. The same answer-token cap applies to ours and naive."]
    return Section("ask", "4–5. Ask (embedded llama.cpp model; extractive for reference)", _rows(sub, inp),
                   notes=notes, details=_details(questions, sub, inp), raw={"questions": questions,
                                                                             "subprocess": sub, "in_process": inp})
