"""3. Retrieval latency in-process: hybrid, BM25-only and dense-only, p50/p95 over ~50 gold questions.

Ours: the warm, cached `Retriever` (`get_retriever(settings)`) after a few untimed warm-up queries,
timed around `.search(q, k=10, mode=…)`; the public `rag.retrieval.search()` is timed too, since it
also checks on every call that the cached retriever still matches the live collection. Questions
are spread over all of evals/gold.jsonl (every type), and the modes take turns per question so
load spikes hit all modes alike.

Baseline: no caching — a fresh `Retriever(settings)` per query (open the collection, read every
chunk, build the BM25 index), then the same search. That is what each query would cost if the
retriever were built per request; it is slow, so it runs on fewer questions.
"""

from __future__ import annotations

import time

from .common import Workspace, gold_questions, spread, summary
from .report import Row, Section

MODES = ("hybrid", "bm25", "dense")
TARGET_P95_MS = 30.0


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def warm_latencies(settings, questions: list[str]) -> dict[str, list[float]]:
    from rag.query.retrieval import get_retriever, search

    retriever = get_retriever(settings)
    for q in questions[:3]:  # untimed: load MiniLM, touch Chroma's HNSW files
        for mode in MODES:
            retriever.search(q, k=10, mode=mode)
    out = {m: [] for m in MODES + ("search()",)}
    for i, q in enumerate(questions):
        order = MODES[i % 3:] + MODES[:i % 3]
        for mode in order:
            out[mode].append(_ms(lambda: retriever.search(q, k=10, mode=mode)))
        out["search()"].append(_ms(lambda: search(q, k=10, settings=settings)))
    return out


def naive_latencies(settings, questions: list[str]) -> dict[str, list[float]]:
    from rag.query.retrieval import Retriever

    out = {m: [] for m in MODES}
    for i, q in enumerate(questions):
        mode = MODES[i % 3]
        out[mode].append(_ms(lambda: Retriever(settings).search(q, k=10, mode=mode)))
    return out


LABELS = {"hybrid": "hybrid, warm Retriever", "bm25": "bm25, warm Retriever", "dense": "dense, warm Retriever",
          "search()": "public rag.retrieval.search() (hybrid)"}


def _rows(ours: dict, naive: dict) -> list[Row]:
    rows = []
    for name, label in LABELS.items():
        mode = "hybrid" if name == "search()" else name
        mine, base = summary(ours[name]), summary(naive[mode])
        rows += [Row(f"{label} {stat}", mine[stat], base[stat], "ms", f"fresh Retriever per query ({mode})",
                     TARGET_P95_MS if stat == "p95" else None, mine["n"]) for stat in ("p50", "p95")]
    return rows


def run(ws: Workspace, n_questions: int = 50, n_naive: int = 30) -> Section:
    settings = ws.indexed_settings()
    questions = [g["question"] for g in spread(gold_questions(), n_questions)]
    print(f"  warm retriever: {len(questions)} questions × {len(MODES)} modes + search()…", flush=True)
    ours = warm_latencies(settings, questions)
    print(f"  naive: fresh Retriever per query, {n_naive} queries…", flush=True)
    naive = naive_latencies(settings, spread(questions, n_naive))
    notes = [f"{len(questions)} questions spread over evals/gold.jsonl; naive baseline on {n_naive} of them, "
             "modes taking turns (so n per naive mode is a third of that)."]
    return Section("retrieval", "3. Retrieval latency (in-process)", _rows(ours, naive), notes=notes,
                   raw={"ours_ms": ours, "naive_ms": naive, "questions": questions})
