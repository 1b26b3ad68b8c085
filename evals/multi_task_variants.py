"""Which task line serves multi-paper questions best? The whole pipeline per variant, dev split.

    python evals/multi_task_variants.py [--out evals/reports/multi-task-variants.json]

The dev questions shaped as multi-paper (the multi-paper gold questions and the unanswerable ones
the shape rules classify as multi) are answered by the default embedded model once per task
line; only `prompts.TASKS["multi"]` differs. Per variant it prints the answer metrics of
`rag eval` (key facts, what the model itself wrote, its backed share, abstention). The answers
are kept in the JSON report for reading.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer import prompts  # noqa: E402
from rag.answer.shape import classify  # noqa: E402
from rag.eval.gold import load_gold  # noqa: E402
from rag.eval.run import _answer_agg, answer_record  # noqa: E402
from rag.settings import get_settings  # noqa: E402

VARIANTS = {
    "default": prompts.TASKS["multi"],
    "one bullet per source": "Write one bullet per source that answers it: what that source found, "
                             "in its own words, then its number like [1].",
    "copy each finding": "For each source that answers it, write one short sentence that copies its "
                         "finding, ending with its number like [1].",
}
SHOWN = ("key_fact_recall", "model_key_fact_recall", "model_supported_share", "multi_paper_recall",
         "citation_precision", "abstention_accuracy", "false_abstention_rate", "first_token_p50_s")


def multi_shaped(item) -> bool:
    return item.type == "multi" or (not item.answerable and not item.history and classify(item.question).kind == "multi")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "evals/reports/multi-task-variants.json"))
    args = ap.parse_args()
    settings = get_settings()
    items = [g for g in load_gold(ROOT / "evals/gold.jsonl") if g.split == "dev" and multi_shaped(g)]
    print(f"{len(items)} dev questions shaped multi-paper", flush=True)
    report = {}
    for label, task in VARIANTS.items():
        prompts.TASKS["multi"] = task
        start = time.time()
        records = [answer_record(g, "llamacpp", settings) for g in items]
        agg = _answer_agg(records)
        report[label] = {"task": task, "seconds": round(time.time() - start), "metrics": agg, "answers": records}
        print(label, {k: None if agg[k] is None else round(agg[k], 3) for k in SHOWN}, flush=True)
        Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    os._exit(0)  # skip llama.cpp's slow teardown


if __name__ == "__main__":
    sys.exit(main())
