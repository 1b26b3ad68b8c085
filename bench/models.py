"""6. The candidate embedded models side by side: `rag ask` from process start, per model.

Each model answers the same questions (the ask section's picks plus a multi-paper question) in
fresh `python -m rag ask Q --backend llamacpp` processes with `RAG_LLAMACPP_MODEL=<model>`, in
the same run, so the rows compare under the same load. From process start:
- sources: the first stdout byte (the CLI prints the retrieved sources before any model loads);
- first token: when the draft header reaches stdout (it is printed with the first model token);
- total: exit, after the checked answer.
An abstention on weak evidence makes no model call (no first token); the model the CLI really
used is read from the draft header, so a fallback (a model that failed its probe) shows.
Targets (GUIDE, issue #9) apply to the default model: sources ≤ 2 s, first token ≤ 6 s, total ≤ 15 s.
"""

from __future__ import annotations

import re

from .ask import pick_questions
from .common import Workspace, child_env, summary
from .proc import run_timed
from .report import Row, Section

MULTI = ("Which papers study whether RL really expands the reasoning abilities of LLMs beyond the base model?")
DRAFT = re.compile(r"\nDraft \((.+?), checked when it is done\)")
TARGETS = {"sources_s": 2.0, "first_token_s": 6.0, "total_s": 15.0}
LABELS = {"sources_s": "sources on screen", "first_token_s": "first model token", "total_s": "full answer (exit)"}


def ask_once(ws: Workspace, question: str, model: str) -> dict:
    run = run_timed(["-m", "rag", "ask", question, "--backend", "llamacpp"],
                    {**child_env(ws.index_dir), "RAG_LLAMACPP_MODEL": model})
    drafted = DRAFT.search(run.stdout)
    return {"sources_s": run.first_byte_s, "first_token_s": run.time_of("\nDraft (") if drafted else None,
            "total_s": run.wall_s, "used": drafted.group(1) if drafted else None}


def run(ws: Workspace, reps: int = 1) -> Section:
    from rag.llm.models import DEFAULT_MODEL, MODELS

    questions = [*pick_questions(), {"id": "multi-rl", "type": "multi", "question": MULTI}]
    if ws.index_dir is None:
        ws.indexed_settings()
    runs: dict[str, list[dict]] = {}
    for model in MODELS:
        for rep in range(reps):
            for q in questions:
                print(f"  {model}: `rag ask` ({q['id']}, rep {rep + 1})…", flush=True)
                runs.setdefault(model, []).append({"id": q["id"], **ask_once(ws, q["question"], model)})
    stats = {m: {k: summary([r[k] for r in rs if r[k] is not None]) for k in TARGETS} for m, rs in runs.items()}
    rows = [Row(f"{m}: {LABELS[k]} p50", stats[m][k]["p50"], stats[DEFAULT_MODEL][k]["p50"], "s",
                f"{DEFAULT_MODEL} (default)", TARGETS[k] if m == DEFAULT_MODEL else None, stats[m][k]["n"])
            for m in MODELS for k in TARGETS if stats[m][k]["n"]]
    details = [{"model": m, **{f"{LABELS[k]} p50 / p95 s": _pair(stats[m][k]) for k in TARGETS},
                "drafted": f"{sum(r['used'] is not None for r in rs)}/{len(rs)}",
                "model used (draft header)": ", ".join(sorted({r["used"] for r in rs if r["used"]})) or "—"}
               for m, rs in runs.items()]
    notes = [f"Questions: {', '.join(q['id'] for q in questions)}; {reps} repetition(s); fresh process per ask.",
             "Ratio = this model / the default model, same question set, same run."]
    return Section("models", "6. Candidate models, `rag ask` from process start", rows, notes=notes,
                   details=details, raw={"questions": questions, "runs": runs})


def _pair(s: dict) -> str:
    return f"{s['p50']:.2f} / {s['p95']:.2f}" if s.get("n") else "—"
