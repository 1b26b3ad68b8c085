"""The embedded runtime (xllamacpp) per model and per llama.cpp parameter, one child process each.

    python -m bench.runtime [--quick] [--out reports/runtime.md]

Per model (default parameters): load time; for a ~300- and a ~600-token prompt of real abstracts,
llama.cpp's own prompt and decode rates, first token and total time for an 80-token answer; then
the same sources with another question, to show what prompt caching of a shared prefix saves.
For the 1.5B model, a sweep of runtime parameters on the ~300-token prompt (threads, batch size,
repacked weights, flash attention, KV-cache type, thread polling, OpenMP wait policy), each compared as a ratio to
the baseline measured in the same run, because these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m")
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}  # what rag.llm.llamacpp sets before loading the runtime
SWEEP = [  # (label, config changes) on the 1.5B model
    ("baseline: 2 threads, batch 512, flash off, no repack, OMP passive (rag's defaults)", {}),
    ("repacked weights (llama.cpp's extra buffer types) on", {"repack": True}),
    ("OMP wait policy left at libgomp's default (spin)", {"env": {"OMP_WAIT_POLICY": "ACTIVE"}}),
    ("1 thread", {"threads": 1}),
    ("batch 128", {"batch": 128}),
    ("batch 2048", {"batch": 2048}),
    ("flash attention on", {"flash": True}),
    ("flash on + KV cache q8_0", {"flash": True, "kv": "GGML_TYPE_Q8_0"}),
    ("thread polling 0", {"poll": 0}),
]
ANSWER_TOKENS = 80
CHILD_TIMEOUT = 900


def _messages(backend, target: int, question: str) -> list[dict]:
    """Real abstracts as numbered sources, trimmed to about `target` tokens of the model's tokenizer."""
    from rag.corpus.listing import load_corpus

    head = f"Session {uuid.uuid4().hex[:8]}. Answer from the numbered sources only, citing them like [1]."
    sources, used = [], backend.count_tokens(head) + backend.count_tokens(question) + 30
    for p in load_corpus(ROOT / "seeds"):
        text = f"[{len(sources) + 1}] {p.title}\n{p.abstract}"
        cost = backend.count_tokens(text)
        if used + cost > target:  # cut the last abstract to what still fits
            words = text.split()
            text = " ".join(words[: int(len(words) * (target - used) / cost)])
            sources.append(text)
            break
        sources.append(text)
        used += cost
    return [{"role": "system", "content": head},
            {"role": "user", "content": "Sources:\n" + "\n\n".join(sources) + f"\n\nQuestion: {question}"}]


def _answer(backend, messages: list[dict], max_tokens: int) -> dict:
    start, first, n = time.perf_counter(), None, 0
    for _ in backend.stream(messages, max_tokens, stop=[]):
        first = first or time.perf_counter()
        n += 1
    end = time.perf_counter()
    t = backend.timings
    return {"prompt_tokens": backend.usage.prompt_tokens, "completion_tokens": backend.usage.completion_tokens,
            "cached": t.get("cache_n", 0), "prompt_tps": t.get("prompt_per_second"),
            "decode_tps": t.get("predicted_per_second"), "first_s": (first or end) - start, "total_s": end - start}


def child(config: dict) -> dict:
    """One server with `config`, measured; runs inside its own process."""
    import xllamacpp as xlc

    from rag.llm import llamacpp as lc
    from rag.llm.models import MODELS as SPECS, ensure
    from rag.settings import Settings

    settings = Settings(llamacpp_model=config["model"], llamacpp_threads=config.get("threads", 2),
                        llamacpp_batch=config.get("batch", 512), llamacpp_flash_attn=config.get("flash", False),
                        llamacpp_repack=config.get("repack", False))
    spec = SPECS[config["model"]]
    path = ensure(spec, settings)
    params = lc._params(xlc, path, settings, "bench")
    if "kv" in config:
        params.cache_type_k = params.cache_type_v = getattr(xlc.ggml_type, config["kv"])
    if "poll" in config:
        params.cpuparams.poll = params.cpuparams_batch.poll = config["poll"]
    start = time.perf_counter()
    backend = lc.LlamaCppBackend(xlc.Server(params), "bench", path, spec, settings)
    out = {"load_s": time.perf_counter() - start}
    question = "What do the first two sources propose, and how do they evaluate it?"
    for target in config["prompts"]:
        out[f"p{target}"] = _answer(backend, _messages(backend, target, question), config["answer_tokens"])
    if config.get("prefix"):  # the same sources, another question: only the new tail is evaluated
        messages = _messages(backend, config["prompts"][-1], question)
        _answer(backend, messages, 1)
        messages[-1]["content"] = messages[-1]["content"].replace(question, "Which source reports the largest gain?")
        out["prefix"] = _answer(backend, messages, config["answer_tokens"])
    backend.close()
    return out


def run_child(config: dict) -> dict:
    env = {**os.environ, **PASSIVE, **config.get("env", {})}
    try:
        done = subprocess.run([sys.executable, "-m", "bench.runtime", "--child", json.dumps(config)], cwd=ROOT,
                              capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {CHILD_TIMEOUT} s"}
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fmt(x, digits=1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def model_table(results: dict) -> list[str]:
    lines = ["| model | load s | prompt tokens | prompt tok/s | decode tok/s | first token s | total s (80 tokens) | written |",
             "|---|---|---|---|---|---|---|---|"]
    for model, r in results.items():
        if "error" in r:
            lines.append(f"| {model} | {r['error']} |||||||")
            continue
        for key in [k for k in r if k[0] == "p" and k[1:].isdigit()] + (["prefix"] if "prefix" in r else []):
            m = r[key]
            what = f"{m['prompt_tokens']} ({m['cached']} cached)" if key == "prefix" else str(m["prompt_tokens"])
            lines.append(f"| {model} | {_fmt(r['load_s'])} | {what} | {_fmt(m['prompt_tps'])} | {_fmt(m['decode_tps'])} "
                         f"| {_fmt(m['first_s'], 2)} | {_fmt(m['total_s'], 2)} | {m['completion_tokens']} |")
    return lines


def _median(runs: list[dict], key: str) -> float | None:
    vals = sorted(r["p300"][key] for r in runs if "p300" in r and r["p300"].get(key) is not None)
    return vals[len(vals) // 2] if vals else None


def sweep_table(results: list[tuple[str, list[dict]]]) -> list[str]:
    """Medians over the interleaved rounds; ratios against the baseline's median."""
    base = {k: _median(results[0][1], k) for k in ("prompt_tps", "decode_tps")}
    lines = ["| 1.5B, ~300-token prompt (median of rounds) | prompt tok/s | × baseline | decode tok/s | × baseline "
             "| first token s | runs |", "|---|---|---|---|---|---|---|"]
    for label, runs in results:
        ok = [r for r in runs if "p300" in r]
        if not ok:
            lines.append(f"| {label} | {runs[0].get('error')} ||||||")
            continue
        med = {k: _median(ok, k) for k in ("prompt_tps", "decode_tps", "first_s")}
        ratio = lambda k: _fmt(med[k] / base[k], 2) if med[k] and base[k] else "–"  # noqa: E731
        lines.append(f"| {label} | {_fmt(med['prompt_tps'])} | {ratio('prompt_tps')} | {_fmt(med['decode_tps'])} "
                     f"| {ratio('decode_tps')} | {_fmt(med['first_s'], 2)} | {len(ok)} |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__.splitlines()[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="models only, no parameter sweep")
    ap.add_argument("--sweep-only", action="store_true", help="the parameter sweep only")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the sweep (medians reported)")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "runtime.md")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads for the per-model table")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    load_before = os.getloadavg()[0]
    models = {}
    for model in [] if args.sweep_only else MODELS:
        print(f"  {model}…", flush=True)
        models[model] = run_child({"model": model, "prompts": [300, 600], "answer_tokens": ANSWER_TOKENS, "prefix": True,
                                   "threads": args.threads})
    sweep = {label: [] for label, _ in ([] if args.quick else SWEEP)}
    for round_ in range(args.rounds):  # interleaved rounds: a load spike hits every config, not one
        for label, change in ([] if args.quick else SWEEP):
            print(f"  1.5B round {round_ + 1}: {label}…", flush=True)
            sweep[label].append(run_child({"model": MODELS[0], "prompts": [300], "answer_tokens": 32, **change}))
    sweep = list(sweep.items())
    lines = [f"# Embedded runtime: xllamacpp per model and parameter ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             "", f"Machine: {os.cpu_count()} cores; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
             "(other jobs share the cores: compare rows as ratios within this run).", ""]
    if models:
        lines += [f"Per model, {args.threads} thread(s), OMP_WAIT_POLICY=PASSIVE:", "", *model_table(models)]
    if sweep:
        lines += ["", *sweep_table(sweep)]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    (args.out.with_suffix(".json")).write_text(json.dumps({"models": models, "sweep": sweep}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
