"""1–2. Whole-corpus cold index, and re-index with nothing changed.

Cold index: `python -m rag index --json` into an empty temp data dir, timed from process start
(wall), plus the `IndexReport.seconds` that process measured around `build_index` itself (so
"in-process build_index" and "what the user waits for" are both shown; the difference is
interpreter start-up and the CLI's imports). Baseline: `python -m bench.naive_index`, the same
`build_index` with a one-chunk-per-ONNX-call embedder, run the same way, alternating with ours
(ours, naive, ours, naive…) so drifting machine load hits both alike.

No-op re-index on the finished index: in-process (warm, after one untimed call pays the imports)
and as `python -m rag index` from process start. It must embed nothing: we check the report's
`chunks_embedded` and MiniLM's own `texts_embedded` counter. Baseline: the cold index.
"""

from __future__ import annotations

import json
import time

from .common import BenchError, Workspace, child_env, summary
from .proc import run_timed
from .report import Row, Section

TARGET_COLD_S, TARGET_NOOP_S = 25.0, 2.0


def cold_ours(ws: Workspace, rep: int) -> dict:
    data_dir = ws.data_dir(f"cold-ours-{rep}")
    run = run_timed(["-m", "rag", "index", "--json"], child_env(data_dir))
    rep_ = json.loads(run.stdout)
    ws.index_dir = data_dir  # the newest complete index serves the later sections
    return {"wall_s": run.wall_s, "build_s": rep_["seconds"], "chunks": rep_["chunks_embedded"],
            "chunks_total": rep_["chunks_total"], "papers": rep_["papers"]}


def cold_naive(ws: Workspace, rep: int) -> dict:
    data_dir = ws.data_dir(f"cold-naive-{rep}")
    run = run_timed(["-m", "bench.naive_index"], child_env(data_dir))
    out = json.loads(run.stdout)
    return {"wall_s": run.wall_s, "build_s": out["seconds"], "chunks": out["chunks_embedded"],
            "onnx_calls": out["onnx_calls"]}


def noop_in_process(ws: Workspace, n: int) -> list[dict]:
    from rag.index.embedding import get_minilm
    from rag.index.build import build_index

    settings = ws.indexed_settings()
    build_index(settings)  # untimed: pays the imports and model load once
    samples = []
    for _ in range(n):
        before = get_minilm().texts_embedded
        t0 = time.perf_counter()
        report = build_index(settings)
        samples.append({"s": time.perf_counter() - t0, "chunks_embedded": report.chunks_embedded,
                        "texts_embedded": get_minilm().texts_embedded - before})
    return samples


def noop_subprocess(ws: Workspace, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        run = run_timed(["-m", "rag", "index", "--json"], child_env(ws.index_dir))
        rep = json.loads(run.stdout)
        out.append({"wall_s": run.wall_s, "build_s": rep["seconds"], "chunks_embedded": rep["chunks_embedded"]})
    return out


def embed_workload(settings) -> dict:
    """MiniLM word pieces the index embeds vs. embedding each title+abstract once (not timed)."""
    from rag.index.chunking import chunk_paper
    from rag.corpus.listing import load_corpus
    from rag.index.embedding import get_minilm

    wp, papers = get_minilm().word_pieces, load_corpus(settings.seed_dir)
    chunks = [c.embed_text(p.title) for p in papers
              for c in chunk_paper(p, settings.chunk_tokens, settings.chunk_overlap_sentences)]
    return {"chunk_word_pieces": sum(map(wp, chunks)),
            "abstract_word_pieces": sum(wp(f"{p.title}\n{p.abstract}") for p in papers)}


def _check_same_chunks(ours: list[dict], naive: list[dict]) -> None:
    counts = {r["chunks"] for r in ours + naive}
    if len(counts) != 1:
        raise BenchError(f"ours and the naive baseline embedded different chunk counts {counts}: "
                         "did rag/ change during the run?")


def _med(samples: list[dict], key: str) -> float:
    return summary([s[key] for s in samples])["median"]


def _cold_rows(ours: list[dict], naive: list[dict]) -> list[Row]:
    n = len(ours)
    return [Row("cold index, `rag index` from process start", _med(ours, "wall_s"), _med(naive, "wall_s"),
                "s", "naive: 1 chunk per ONNX call", TARGET_COLD_S, n),
            Row("cold index, build_index() in that process", _med(ours, "build_s"), _med(naive, "build_s"),
                "s", "naive: 1 chunk per ONNX call", TARGET_COLD_S, n)]


def _noop_rows(warm: list[dict], sub: list[dict], ours: list[dict]) -> list[Row]:
    cold_build, cold_wall = _med(ours, "build_s"), _med(ours, "wall_s")
    embedded = max(s["chunks_embedded"] + s["texts_embedded"] for s in warm)
    embedded = max([embedded] + [s["chunks_embedded"] for s in sub])
    return [Row("no-op re-index, build_index() warm in-process", _med(warm, "s"), cold_build, "s",
                "our cold build_index()", TARGET_NOOP_S, len(warm)),
            Row("no-op re-index, `rag index` from process start", _med(sub, "wall_s"), cold_wall, "s",
                "our cold `rag index`", TARGET_NOOP_S, len(sub)),
            Row("no-op re-index, chunks embedded (worst run)", embedded, ours[0]["chunks"], "count",
                "chunks in a cold index", 0, len(warm) + len(sub))]


def run(ws: Workspace, reps: int) -> Section:
    ours, naive = [], []
    for rep in range(reps):
        print(f"  cold index {rep + 1}/{reps}: ours…", flush=True)
        ours.append(cold_ours(ws, rep))
        print(f"  cold index {rep + 1}/{reps}: naive…", flush=True)
        naive.append(cold_naive(ws, rep))
    _check_same_chunks(ours, naive)
    print("  no-op re-index…", flush=True)
    warm, sub = noop_in_process(ws, 5), noop_subprocess(ws, 3)
    work = embed_workload(ws.indexed_settings())
    notes = [f"{ours[0]['papers']} papers → {ours[0]['chunks_total']} chunks in the index; the naive run made "
             f"{naive[0]['onnx_calls']} ONNX calls for {naive[0]['chunks']} chunks.",
             f"The chunks hold {work['chunk_word_pieces']:,} MiniLM word pieces, "
             f"{work['chunk_word_pieces'] / work['abstract_word_pieces']:.2f}× the {work['abstract_word_pieces']:,} of "
             "embedding each title+abstract once (repeated titles and overlap sentences).",
             "`build_index()` seconds are the `IndexReport.seconds` of the CLI process (they include the "
             "lazy llama-index import and model load inside build_index); wall = from `Popen` to exit."]
    raw = {"cold_ours": ours, "cold_naive": naive, "noop_in_process": warm, "noop_subprocess": sub, "workload": work}
    return Section("index", "1–2. Index: cold and no-op", _cold_rows(ours, naive) + _noop_rows(warm, sub, ours),
                   notes=notes, raw=raw)
