"""A real generation in a child process before this process trusts the embedded runtime.

A native runtime can die on one CPU and not another (llama.cpp's AMX kernels raised SIGILL on
Intel Xeons: issue 8). A signal cannot be caught in-process, so the first use of a model runs
`python -m rag.llm.probe GGUF` as a child: it loads the model and streams a short answer to a
multi-sentence prompt. Its verdict is recorded in the models dir, keyed by the model's sha256, the
xllamacpp version and a hash of the CPU's flags, so it is re-tested exactly when one of them
changes; `rag doctor` re-tests on demand. A broken verdict makes `auto` fall back and makes
`--backend llamacpp` fail with one line saying what happened and what to do.

    python -m rag.llm.probe GGUF [--messages FILE.json] [--max-tokens N]
        -> one JSON line: text, load_s, first_token_s, total_s, prompt/completion tokens, timings
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rag.errors import BackendUnavailable
from rag.llm import models as mf
from rag.settings import Settings

VERDICTS = "runtime-verdicts.json"
PROBE_TOKENS = 8
# Long enough to take llama.cpp's batched prompt path (the AMX crash needed more than a few tokens).
PROBE_MESSAGES = [
    {"role": "system", "content": "You answer questions about research papers in one short sentence."},
    {"role": "user", "content": (
        "Source [1]: We introduce a benchmark of 2,000 questions that test whether language models can cite "
        "the abstracts they answer from. Models that retrieve before answering cite correctly far more often, "
        "and a small reranker closes most of the gap between small and large models. We release the data, "
        "the evaluation code and the prompts used in every experiment, so that others can reproduce them.\n\n"
        "Question: How many questions are in the benchmark? Answer with the number and cite the source.")},
]


@dataclass
class Verdict:
    ok: bool
    detail: str  # what happened, in words a user can act on
    seconds: float = 0.0
    key: str = ""


def runtime_version() -> str:
    try:
        return version("xllamacpp")
    except PackageNotFoundError:
        return "not installed"


def cpu_flags_hash() -> str:
    """A short hash of the CPU's feature flags: a verdict only holds on the same kind of CPU."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next((ln.split(":", 1)[1] for ln in lines if ln.startswith(("flags", "Features"))), "")
    except OSError:
        import platform

        flags = platform.machine() + platform.processor()
    return hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:12]


def verdict_key(sha: str, settings: Settings) -> str:
    # repacked weights run other kernels (AMX ones on Intel), so they get a verdict of their own
    return f"{sha}|xllamacpp {runtime_version()}|cpu {cpu_flags_hash()}" + ("|repack" if settings.llamacpp_repack else "")


def recorded(settings: Settings, sha: str) -> Verdict | None:
    try:
        entry = json.loads((mf.models_dir(settings) / VERDICTS).read_text()).get(verdict_key(sha, settings))
    except (OSError, ValueError):
        return None
    return Verdict(**entry) if entry else None


def _record(settings: Settings, verdict: Verdict) -> None:
    path = mf.models_dir(settings) / VERDICTS
    try:
        verdicts = json.loads(path.read_text())
    except (OSError, ValueError):
        verdicts = {}
    verdicts[verdict.key] = asdict(verdict)
    mf._write_json(path, verdicts)


def check(path: Path, settings: Settings, force: bool = False) -> Verdict:
    """The recorded verdict for this model file on this runtime and CPU; runs the child when there is none."""
    sha = mf.file_sha(settings, path)
    found = None if force else recorded(settings, sha)
    if found:
        return found
    verdict = run_child(path, settings)
    verdict.key = verdict_key(sha, settings)
    _record(settings, verdict)
    return verdict


def require_ok(path: Path, settings: Settings) -> bool:
    """Raise BackendUnavailable unless the model passed its test run; True when the test ran just now."""
    known = recorded(settings, mf.file_sha(settings, path)) is not None
    verdict = check(path, settings)
    if not verdict.ok:
        raise BackendUnavailable(f"the embedded runtime failed a test generation with {path.name} on this machine: "
                                 f"{verdict.detail}; run `make doctor` to test again after fixing it, or use "
                                 "--backend ollama / extractive")
    return not known


def child_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "rag.llm.probe", str(path)]


def run_child(path: Path, settings: Settings) -> Verdict:
    """Run the probe in a child process and say, in words, how it ended."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        return Verdict(False, f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')")
    start = time.perf_counter()
    env_note = f"(xllamacpp {runtime_version()})"
    try:
        done = subprocess.run(child_command(path), capture_output=True, text=True, timeout=settings.probe_timeout,
                              env=_child_env(settings))
    except subprocess.TimeoutExpired:
        return Verdict(False, f"the test generation did not finish within {settings.probe_timeout:g} s {env_note}; "
                              "raise RAG_PROBE_TIMEOUT on a busy machine", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if done.returncode < 0:
        sig = signal.Signals(-done.returncode)
        return Verdict(False, f"the runtime was killed by {sig.name} ({signal.strsignal(sig)}) {env_note}: it does "
                              "not run on this CPU", seconds)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
        return Verdict(False, f"the test generation failed (exit {done.returncode}): {last}", seconds)
    return _judge(done.stdout, seconds)


def _judge(stdout: str, seconds: float) -> Verdict:
    try:
        out = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Verdict(False, f"the test generation printed no result: {stdout[-200:]!r}", seconds)
    if not out.get("text", "").strip():
        return Verdict(False, "the test generation wrote no text", seconds)
    return Verdict(True, f"wrote {out['completion_tokens']} tokens for a {out['prompt_tokens']}-token prompt; "
                         f"load {out['load_s']:.1f} s, first token {out['first_token_s']:.1f} s", seconds)


def _child_env(settings: Settings) -> dict:
    """The child gets our settings as RAG_* variables, so it loads exactly what we would."""
    import os

    env = dict(os.environ)
    for name in ("llamacpp_n_ctx", "llamacpp_threads", "llamacpp_batch", "llamacpp_flash_attn", "llamacpp_repack",
                 "models_dir"):
        value = getattr(settings, name)
        if value is not None:
            env[f"RAG_{name.upper()}"] = str(value)
    env.pop("RAG_LLAMACPP_MODEL_PATH", None)  # the child is told the path on its command line
    return env


def main(argv: list[str]) -> int:
    import argparse

    from rag.llm.llamacpp import LlamaCppBackend

    ap = argparse.ArgumentParser(prog="python -m rag.llm.probe")
    ap.add_argument("gguf", type=Path)
    ap.add_argument("--messages", type=Path, help="a JSON file of chat messages (default: a short built-in prompt)")
    ap.add_argument("--max-tokens", type=int, default=PROBE_TOKENS)
    args = ap.parse_args(argv)
    messages = json.loads(args.messages.read_text()) if args.messages else PROBE_MESSAGES
    start = time.perf_counter()
    backend = LlamaCppBackend.open(args.gguf, None, Settings(llamacpp_model_path=args.gguf))
    loaded = time.perf_counter()
    first, pieces = None, []
    for piece in backend.stream(messages, args.max_tokens, stop=[]):
        first = first or time.perf_counter()
        pieces.append(piece)
    end = time.perf_counter()
    print(json.dumps({"text": "".join(pieces), "load_s": loaded - start, "first_token_s": (first or end) - loaded,
                      "total_s": end - start, "prompt_tokens": backend.usage.prompt_tokens,
                      "completion_tokens": backend.usage.completion_tokens, "timings": backend.timings}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # noqa: BLE001 - the parent reads this last line as the reason
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
