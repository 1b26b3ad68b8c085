"""Eval reports: results.json, summary.md and PNG charts (matplotlib, headless)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rag.errors import InputError

RETRIEVAL_KEYS = ("hit@1", "hit@5", "recall@5", "mrr@10", "ndcg@10")
ANSWER_KEYS = ("key_fact_recall", "model_key_fact_recall", "citation_validity", "citation_precision",
               "citation_recall", "supported_share", "model_supported_share", "abstention_accuracy",
               "false_abstention_rate")
# The product's targets, per backend and split (the test split is the one reported).
TARGET_KEYS = ("key_fact_recall", "multi key_fact_recall", "which_paper_title_named", "abstention_accuracy",
               "false_abstention_rate", "model_supported_share", "citation_validity", "citation_precision",
               "model_key_fact_recall", "multi_paper_recall", "sources_p50_s", "first_token_p50_s", "total_p50_s")
SPEED_KEYS = ("sources_p50_s", "first_token_p50_s", "first_token_p95_s", "total_p50_s", "total_p95_s",
              "prompt_tokens_mean", "completion_tokens_mean")

HOW_TO_READ = """\
How to read this: retrieval figures are at paper level over answerable questions (hit@k: a gold
paper is in the top k; recall@5: share of gold papers in the top 5; MRR/nDCG reward ranking gold
papers higher). Answer figures: key-fact recall is the share of gold key facts found in the
answer; citation validity must be 1.0 (every citation is a retrieved paper); citation
precision/recall compare cited papers with gold papers; supported share is the share of answer
sentences the checker could verify against the abstracts they cite; abstention accuracy is the
share of unanswerable questions declined; false-abstention rate the share of answerable ones
declined (lower is better). `model_*` figures count only what the model wrote (its raw text for
key facts; its own sentences for support), not the verbatim quotes the system adds beneath;
which_paper_title_named is the share of which-paper answers naming a gold title; multi_paper_recall
the share of gold papers cited on multi-paper questions. Latencies are measured from the `ask`
call, in-process (sources = retrieval + evidence on screen)."""


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows])


def summary_markdown(results: dict) -> str:
    agg, meta = results["aggregates"], results["meta"]
    parts = [f"# Eval summary\n\n{meta['questions']} questions from `{meta.get('gold')}` (split "
             f"{meta.get('split')}), {meta['date']}, {meta['seconds']} s.\n"
             + (f"\nNot all answers are from this run: {meta['replayed']}.\n" if meta.get("replayed") else "")]
    parts.append("## Retrieval (overall)\n\n" + _table(
        ["mode", *RETRIEVAL_KEYS, "n"],
        [[mode, *[a["overall"][k] for k in RETRIEVAL_KEYS], a["overall"]["n"]] for mode, a in agg["retrieval"].items()]))
    parts.append("## By split (dev was used for tuning; test never was)\n\n" + _split_table(agg))
    if agg.get("answers"):
        parts.append("## Targets by backend and split\n\n" + _targets_table(agg["answers"]))
    hybrid = agg["retrieval"]["hybrid"]["by_type"]
    parts.append("## Retrieval by type (hybrid)\n\n" + _table(
        ["type", *RETRIEVAL_KEYS, "n"], [[t, *[a[k] for k in RETRIEVAL_KEYS], a["n"]] for t, a in hybrid.items()]))
    for backend, a in agg.get("answers", {}).items():
        parts.append(f"## Answers: {backend}\n\n" + _table(
            ["scope", *ANSWER_KEYS, "n", "errors"],
            [["overall", *[a["overall"][k] for k in ANSWER_KEYS], a["overall"]["n"], a["overall"]["errors"]]]
            + [[t, *[x[k] for k in ANSWER_KEYS], x["n"], x["errors"]] for t, x in a["by_type"].items()]))
        parts.append(_table(["speed", *SPEED_KEYS], [[backend, *[a["overall"][k] for k in SPEED_KEYS]]]))
    if results.get("deltas"):
        parts.append("## Against the committed baseline\n\n" + _table(
            ["metric", "value", "delta"], [[d["metric"], d["value"], d["delta"]] for d in results["deltas"]]))
    parts.append("## Charts\n\n![retrieval](retrieval_by_type.png)\n\n![answers](answers_by_backend.png)")
    parts.append(HOW_TO_READ)
    return "\n\n".join(parts) + "\n"


def _split_table(agg: dict) -> str:
    rows = []
    for split, a in agg["retrieval"]["hybrid"].get("by_split", {}).items():
        rows.append([f"retrieval hybrid ({split})", "hit@5", a["hit@5"], "mrr@10", a["mrr@10"], a["n"]])
    for backend, b in agg.get("answers", {}).items():
        for split, a in b.get("by_split", {}).items():
            rows.append([f"answers {backend} ({split})", "key_fact_recall", a["key_fact_recall"],
                         "abstention_accuracy", a["abstention_accuracy"], a["n"]])
    return _table(["scope", "metric", "value", "metric", "value", "n"], rows)


def _target_value(a: dict, key: str):
    if key.startswith("multi "):
        return a.get("types", {}).get("multi", {}).get(key.split(" ", 1)[1])
    return a.get(key)


def _targets_table(answers: dict) -> str:
    rows = []
    for backend, b in answers.items():
        for split, a in b.get("by_split", {}).items():
            scope = {**a, "types": b.get("by_split_type", {}).get(split, {})}
            rows.append([backend, split, *[_target_value(scope, k) for k in TARGET_KEYS]])
    return _table(["backend", "split", *TARGET_KEYS], rows)


def _bars(ax, groups: list[str], series: dict[str, list[float]], title: str) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(groups))], [v or 0 for v in values], width, label=name)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(groups))], groups, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=8)


def charts(results: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = results["aggregates"]
    types = list(agg["retrieval"]["hybrid"]["by_type"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key in zip(axes, ("hit@5", "mrr@10")):
        _bars(ax, types, {mode: [a["by_type"][t][key] for t in types] for mode, a in agg["retrieval"].items()},
              f"Retrieval {key} by question type")
    fig.tight_layout()
    paths = [out / "retrieval_by_type.png"]
    fig.savefig(paths[0], dpi=90)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(12, 4))
    answers = agg.get("answers", {})
    _bars(ax, list(ANSWER_KEYS), {b: [a["overall"][k] for k in ANSWER_KEYS] for b, a in answers.items()},
          "Answer quality by backend")
    fig.tight_layout()
    paths.append(out / "answers_by_backend.png")
    fig.savefig(paths[1], dpi=90)
    plt.close(fig)
    return paths


def prepare_out(out: Path) -> Path:
    """Create the reports directory, or say why it cannot be used. `eval` calls this before it
    runs anything, so a bad --out fails in a second, not after an hour of answers."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a directory; pass --out with a directory path "
                         "(a missing one is created)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file further up the path, no permission, a read-only disk, …
        raise InputError(f"--out {out}: cannot create the reports directory ({e.strerror or e}); "
                         "pass --out with a directory path you can write to") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: the directory is not writable; pass --out with a directory you can write to")
    return out


def write_reports(results: dict, out: Path) -> list[Path]:
    prepare_out(out)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str, ensure_ascii=False))
    (out / "summary.md").write_text(summary_markdown(results))
    return [out / "results.json", out / "summary.md", *charts(results, out)]
