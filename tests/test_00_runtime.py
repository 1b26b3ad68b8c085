"""Runs first (file name): the default embedded model, through the real runtime, on a real
multi-hundred-token prompt, in a child process. A runtime that dies on this CPU (SIGILL on
Intel AMX machines: issue 8) fails here with the signal's name instead of killing the suite."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from conftest import ROOT, SEEDS

MAX_TOKENS = 48


def _long_prompt() -> list[dict]:
    """Four real abstracts as numbered sources and a question: a few hundred tokens."""
    from rag.corpus.listing import load_corpus

    papers = load_corpus(SEEDS)[:4]
    sources = "\n\n".join(f"[{i}] {p.title}\n{p.abstract}" for i, p in enumerate(papers, 1))
    return [{"role": "system", "content": "Answer from the numbered sources only, citing them like [1]."},
            {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: What does source [1] propose?"}]


def test_default_model_answers_a_long_prompt_in_a_child_process(tmp_path):
    from rag.llm.llamacpp import LlamaCppBackend, resolve
    from rag.settings import Settings

    settings = Settings()
    path, spec = resolve(settings)  # the default model, verified against its pinned sha256
    messages = _long_prompt()
    (tmp_path / "m.json").write_text(json.dumps(messages))
    done = subprocess.run([sys.executable, "-m", "rag.llm.probe", str(path), "--messages", str(tmp_path / "m.json"),
                           "--max-tokens", str(MAX_TOKENS)], capture_output=True, text=True, cwd=ROOT, timeout=900)
    if done.returncode < 0:
        raise AssertionError(f"the embedded runtime was killed by {signal.Signals(-done.returncode).name}: "
                             f"{done.stderr[-500:]}")
    assert done.returncode == 0, done.stderr[-1000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["text"].strip()
    # usage as llama.cpp counted it: the whole chat-templated prompt, and what it wrote
    words = sum(len(m["content"].split()) for m in messages)
    assert 300 <= out["prompt_tokens"] <= settings.llamacpp_n_ctx and out["prompt_tokens"] >= words
    assert 1 <= out["completion_tokens"] <= MAX_TOKENS
    assert out["timings"]["prompt_n"] + out["timings"].get("cache_n", 0) == out["prompt_tokens"]
    assert spec is not None and spec.key == settings.llamacpp_model
