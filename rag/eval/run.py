"""The eval harness: run gold questions, compute metrics, compare with the baseline, gate.

    python -m rag eval [--gold FILE] [--split dev|test|all] [--backend extractive ...]
                       [--out DIR] [--no-answers] [--gate] [--json]

Retrieval is measured for BM25 alone, dense alone and hybrid in one run; answers for each
requested backend. A backend may name its model, `llamacpp:qwen2.5-coder-0.5b` or
`ollama:llama3.2:3b`, so one run compares models on the same questions (`make eval-models`). Reports: results.json (per-question records and aggregates), summary.md
and PNG charts in --out. Deltas are printed against evals/baseline.json; --gate fails when an
aggregate falls below evals/thresholds.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rag.eval import metrics as m
from rag.answer.pipeline import ask, resolve_query
from rag.errors import BackendError, InputError, RagError
from rag.eval.gold import GoldItem, load_gold, select_split, validate
from rag.query.retrieval import get_retriever
from rag.settings import Settings

MODES = ("bm25", "dense", "hybrid")
ANSWER_BACKENDS = ("extractive", "llamacpp", "ollama")
_EVALS = Path(__file__).resolve().parents[2] / "evals"  # the project's, from whatever folder eval runs in
BASELINE = _EVALS / "baseline.json"
THRESHOLDS = _EVALS / "thresholds.json"


def _bar(items, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="q", file=sys.stderr, leave=False)


def run_retrieval(items: list[GoldItem], settings: Settings) -> list[dict]:
    retriever, records = get_retriever(settings), []
    for it in _bar([i for i in items if i.answerable], "retrieval"):
        query, gold = resolve_query(it.question, it.history), set(it.gold_titles)
        rec = {"id": it.id, "type": it.type, "split": it.split, "question": it.question, "query": query}
        for mode in MODES:
            ranked = [h.title for h in retriever.search(query, k=10, mode=mode)]
            rec[mode] = {"ranked": ranked, **m.retrieval_scores(ranked, gold)}
        records.append(rec)
    return records


def backend_spec(text: str) -> tuple[str, dict]:
    """`name[:model]` -> (backend name, settings overrides); the error names the choices."""
    from rag.llm.models import MODELS

    name, _, model = text.partition(":")
    if name not in ANSWER_BACKENDS:
        raise InputError(f"--backend {text!r}: choose one of {', '.join(ANSWER_BACKENDS)}, optionally with "
                         f":<model> (e.g. llamacpp:{next(iter(MODELS))})")
    if not model:
        return name, {}
    if name == "llamacpp" and model not in MODELS:
        raise InputError(f"--backend {text!r}: the embedded models are {', '.join(MODELS)}")
    if name == "extractive":
        raise InputError(f"--backend {text!r}: the extractive backend has no model")
    return name, {"llamacpp_model" if name == "llamacpp" else "ollama_model": model}


def answer_record(it: GoldItem, backend: str, settings: Settings) -> dict:
    rec = {"id": it.id, "type": it.type, "split": it.split, "question": it.question, "backend": backend}
    name, overrides = backend_spec(backend)
    try:
        a = ask(it.question, history=it.history, backend=name, settings=settings.with_overrides(**overrides))
    except RagError as e:
        return {**rec, "error": str(e)}
    gold = {t for t in it.gold_titles}
    cited_titles = [c.title for c in a.citations]
    return {**rec, "answer": a.text, "raw": a.raw_text, "notes": a.notes, "relevance": round(a.relevance, 3),
            "abstained": a.abstained, "answerable": it.answerable,
            "citations": [{"n": c.n, "paper_id": c.paper_id, "title": c.title} for c in a.citations],
            "ranked": [r["title"] for r in a.retrieved], "timings": a.timings,
            "prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
            "supported_share": a.supported_share if a.sentences else None, "model": a.model,
            "kind": a.kind, "model_supported_share": a.model_supported_share,
            "key_fact_recall": None if a.abstained else m.key_fact_recall(a.text, it.key_facts),
            # what the model itself wrote, apart from the quotes the system adds beneath it
            "model_key_fact_recall": (m.key_fact_recall(a.raw_text, it.key_facts)
                                      if a.raw_text and not a.abstained else None),
            "title_named": m.title_named(a.text, gold) if it.type == "which_paper" and not a.abstained else None,
            "citation_validity": m.citation_validity([c.paper_id for c in a.citations],
                                                     [r["paper_id"] for r in a.retrieved]),
            "citation_precision": m.citation_precision(cited_titles, gold),
            "citation_recall": m.citation_recall(cited_titles, gold) if it.answerable else None}


def run_answers(items: list[GoldItem], backend: str, settings: Settings) -> list[dict]:
    return [answer_record(it, backend, settings) for it in _bar(items, f"answers ({backend})")]


def aggregate_retrieval(records: list[dict]) -> dict:
    def agg(recs, mode):
        keys = ("hit@1", "hit@5", "recall@5", "mrr@10", "ndcg@10")
        return {k: m.mean_of([r[mode][k] for r in recs]) for k in keys} | {"n": len(recs)}

    types = sorted({r["type"] for r in records})
    splits = sorted({r["split"] for r in records})
    return {mode: {"overall": agg(records, mode),
                   "by_type": {t: agg([r for r in records if r["type"] == t], mode) for t in types},
                   "by_split": {s: agg([r for r in records if r["split"] == s], mode) for s in splits}}
            for mode in MODES}


def _answer_agg(recs: list[dict]) -> dict:
    ok = [r for r in recs if "error" not in r]
    answerable = [r for r in ok if r["answerable"]]
    unanswerable = [r for r in ok if not r["answerable"]]
    firsts = [r["timings"].get("first_token_s") for r in ok if r["timings"]]
    sources = [r["timings"].get("sources_s") for r in ok if r["timings"].get("sources_s") is not None]
    totals = [r["timings"].get("total_s") for r in ok if r["timings"]]
    return {
        "n": len(recs), "errors": len(recs) - len(ok),
        "key_fact_recall": m.mean_of([r["key_fact_recall"] for r in answerable]),
        "model_key_fact_recall": m.mean_of([r.get("model_key_fact_recall") for r in answerable]),
        "model_supported_share": m.mean_of([r.get("model_supported_share") for r in ok if not r["abstained"]]),
        "which_paper_title_named": m.mean_of([r.get("title_named") for r in answerable]),
        "multi_paper_recall": m.mean_of([r["citation_recall"] for r in answerable if r["type"] == "multi"]),
        "citation_validity": m.mean_of([r["citation_validity"] for r in ok]),
        "citation_precision": m.mean_of([r["citation_precision"] for r in answerable]),
        "citation_recall": m.mean_of([r["citation_recall"] for r in answerable]),
        "supported_share": m.mean_of([r["supported_share"] for r in ok if not r["abstained"]]),
        "abstention_accuracy": m.mean_of([float(r["abstained"]) for r in unanswerable]),
        "false_abstention_rate": m.mean_of([float(r["abstained"]) for r in answerable]),
        "sources_p50_s": m.percentile(sources, 50), "sources_p95_s": m.percentile(sources, 95),
        "first_token_p50_s": m.percentile(firsts, 50), "first_token_p95_s": m.percentile(firsts, 95),
        "total_p50_s": m.percentile(totals, 50), "total_p95_s": m.percentile(totals, 95),
        "prompt_tokens_mean": m.mean_of([r["prompt_tokens"] for r in ok]),
        "completion_tokens_mean": m.mean_of([r["completion_tokens"] for r in ok]),
    }


def aggregate_answers(records: list[dict]) -> dict:
    types = sorted({r["type"] for r in records})
    splits = sorted({r["split"] for r in records})
    return {"overall": _answer_agg(records),
            "by_type": {t: _answer_agg([r for r in records if r["type"] == t]) for t in types},
            "by_split": {s: _answer_agg([r for r in records if r["split"] == s]) for s in splits},
            "by_split_type": {s: {t: _answer_agg([r for r in records if r["split"] == s and r["type"] == t])
                                  for t in types} for s in splits}}


def flatten(aggregates: dict) -> dict[str, float]:
    """Overall figures as dotted names, e.g. 'retrieval.hybrid.hit@5', 'answers.extractive.key_fact_recall'."""
    flat = {}
    for mode, agg in aggregates.get("retrieval", {}).items():
        flat.update({f"retrieval.{mode}.{k}": v for k, v in agg["overall"].items() if k != "n"})
    for backend, agg in aggregates.get("answers", {}).items():
        flat.update({f"answers.{backend}.{k}": v for k, v in agg["overall"].items() if k not in ("n", "errors")})
    return {k: v for k, v in flat.items() if v is not None}


def deltas(current: dict[str, float], baseline: dict[str, float]) -> list[tuple[str, float, float | None]]:
    return [(k, v, (v - baseline[k]) if k in baseline else None) for k, v in sorted(current.items())]


def gate(current: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    """Thresholds name a minimum (or, for names ending in _s / _rate, a maximum)."""
    failures = []
    for name, limit in thresholds.items():
        value = current.get(name)
        upper = name.endswith("_s") or name.endswith("_rate")
        if value is None or (value > limit if upper else value < limit):
            failures.append(f"{name} = {value} {'>' if upper else '<'} threshold {limit}")
    return failures


def evaluate(items: list[GoldItem], settings: Settings, backends: list[str], answers: bool = True) -> dict:
    started = time.time()
    results = {"records": {"retrieval": run_retrieval(items, settings)}, "aggregates": {}}
    results["aggregates"]["retrieval"] = aggregate_retrieval(results["records"]["retrieval"])
    results["records"]["answers"] = {}
    for backend in backends if answers else []:
        recs = run_answers(items, backend, settings)
        results["records"]["answers"][backend] = recs
        results["aggregates"].setdefault("answers", {})[backend] = aggregate_answers(recs)
    results["meta"] = {"questions": len(items), "backends": backends if answers else [],
                       "seconds": round(time.time() - started, 1),
                       "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    return results


def main(args, settings: Settings) -> int:
    from rag.eval.report import prepare_out, write_reports

    items = _checked_gold(args.gold, args.split, settings)  # every input is checked before the (long) run
    prepare_out(Path(args.out))
    backends = args.backend or ["extractive"]
    for backend in backends:
        backend_spec(backend)  # a typo fails here, not after an hour of answers
    results = evaluate(items, settings, backends, answers=not args.no_answers)
    results["meta"].update({"gold": str(args.gold), "split": args.split})
    current = flatten(results["aggregates"])
    baseline = json.loads(BASELINE.read_text()) if BASELINE.is_file() else {}
    results["deltas"] = [{"metric": k, "value": v, "delta": d} for k, v, d in deltas(current, baseline)]
    paths = write_reports(results, Path(args.out))
    if args.json:
        print(json.dumps({"aggregates": results["aggregates"], "deltas": results["deltas"],
                          "reports": [str(p) for p in paths]}, indent=2, default=str))
    else:
        _print_deltas(results["deltas"], paths)
    failures = gate(current, json.loads(THRESHOLDS.read_text())) if args.gate else []
    for f in failures:
        print(f"GATE FAILED: {f}", file=sys.stderr)
    if errors := [(b, r["error"]) for b, recs in results["records"]["answers"].items() for r in recs if "error" in r]:
        # the figures above leave failed answers out: a run where the backend was down must not pass
        raise BackendError(f"{len(errors)} answers failed and are not in the figures; the first, by {errors[0][0]}: "
                           f"{errors[0][1]}")
    return 1 if failures else 0


def _checked_gold(path, split: str, settings: Settings) -> list[GoldItem]:
    """The gold items of `split`, each checked against the corpus (titles, key facts, unique ids):
    a typo would otherwise score 0 without a word."""
    from rag.corpus import load_all

    items = select_split(load_gold(path), split)
    if not items:
        raise InputError(f"{path} has no gold items{'' if split == 'all' else f' in the {split} split'}; "
                         "add some (one JSON object a line) or choose --split all")
    if problems := validate(items, load_all(settings)):
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise InputError(f"{path}: {'; '.join(problems[:3])}{more}; fix the gold file")
    return items


def _print_deltas(rows: list[dict], paths: list[Path]) -> None:
    print(f"{'metric':45} {'value':>8} {'vs baseline':>12}")
    for r in rows:
        delta = "new" if r["delta"] is None else f"{r['delta']:+.3f}"
        print(f"{r['metric']:45} {r['value']:8.3f} {delta:>12}")
    print("reports: " + ", ".join(str(p) for p in paths), file=sys.stderr)
