"""Does the embedded model decline answerable questions? One prompt rule against another, dev split.

    python evals/prompt_variants.py [--model qwen2.5-coder-1.5b] [--out evals/reports/prompt-variants.md]

For every dev question the pipeline would send to a model (all but metadata ones), the same
retrieved evidence is put to the model under each instruction line: with the NOT FOUND sentinel
(what Ollama's models get) and without any way out (what the embedded models get). Per variant:
how many answerable and unanswerable questions the model declined, the key-fact recall of what
it wrote, and whether the key facts were in its prompt at all (so a decline is the model's, not
retrieval's). Abstention on unanswerables is decided by the pipeline's other signals too; this
isolates the model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer import pipeline as p  # noqa: E402
from rag.answer.prompts import EMBEDDED_RULES, RULES  # noqa: E402
from rag.eval.gold import load_gold  # noqa: E402
from rag.eval.metrics import key_fact_recall, mean_of  # noqa: E402
from rag.llm.llamacpp import LlamaCppBackend  # noqa: E402
from rag.query import evidence as ev  # noqa: E402
from rag.settings import get_settings  # noqa: E402

VARIANTS = {"NOT FOUND sentinel (Ollama's rules)": RULES, "no way out (embedded rules, default)": EMBEDDED_RULES}


def run_variant(backend, items, rules: str, settings) -> list[dict]:
    rows = []
    for g in items:
        prep = p.prepare(g.question, history=g.history, backend="extractive", settings=settings)
        prep.backend = backend
        prep.prompt_sources = ev.trim(prep.sources, settings.evidence_tokens)
        messages = p.messages_for(prep, rules)
        raw = backend.complete(messages, settings.max_answer_tokens)
        rows.append({"answerable": g.answerable, "declined": not raw.strip() or p._refuses(raw),
                     "kf": key_fact_recall(raw, g.key_facts) if g.key_facts else None,
                     "in_prompt": key_fact_recall(messages[0]["content"], g.key_facts) if g.key_facts else None})
        print(f"  {g.id}: {'declined' if rows[-1]['declined'] else 'answered'}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default=str(ROOT / "evals/reports/prompt-variants.md"))
    args = ap.parse_args()
    settings = get_settings()
    if args.model:
        settings = settings.with_overrides(llamacpp_model=args.model)
    items = [g for g in load_gold(ROOT / "evals/gold.jsonl") if g.split == "dev" and g.type != "metadata"]
    backend = LlamaCppBackend.load(settings, [])
    lines = [f"# Prompt rule variants, {backend.model}, dev split ({time.strftime('%Y-%m-%d %H:%M')})", "",
             "Same retrieved evidence per question; only the instruction line differs "
             "(`python evals/prompt_variants.py`).", "",
             "| rule | declined answerable | declined unanswerable | model key-fact recall | key facts in prompt |",
             "|---|---|---|---|---|"]
    for label, rules in VARIANTS.items():
        print(label, flush=True)
        rows = run_variant(backend, items, rules, settings)
        a = [r for r in rows if r["answerable"]]
        u = [r for r in rows if not r["answerable"]]
        lines.append(f"| {label}: `{rules}` | {sum(r['declined'] for r in a)}/{len(a)} | "
                     f"{sum(r['declined'] for r in u)}/{len(u)} | {mean_of([r['kf'] for r in a]):.3f} | "
                     f"{mean_of([r['in_prompt'] for r in a]):.3f} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    os._exit(0)  # skip llama.cpp's slow teardown


if __name__ == "__main__":
    sys.exit(main())
