"""Shared pieces of the benchmarks: statistics, the temp workspace, the subprocess environment,
gold questions and machine facts.

Nothing here measures anything; it only makes the sections' measurements comparable: every run
uses fresh temp folders (never the user's `.rag`), the same scrubbed `RAG_*` environment in-process
and in subprocesses, and the same percentile definition (linear interpolation, like numpy's default).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
GOLD = ROOT / "evals" / "gold.jsonl"
CLOSED_PORT = "http://127.0.0.1:9"  # discard port: `auto` never finds an Ollama by accident


class BenchError(RuntimeError):
    """A benchmark step failed (a subprocess exited non-zero, an index came out wrong…)."""


def summary(values: list[float]) -> dict:
    """n, median (= p50), p95, min and max of the samples."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"n": 0}
    return {"n": int(arr.size), "median": float(np.median(arr)), "p50": float(np.percentile(arr, 50)),
            "p95": float(np.percentile(arr, 95)), "min": float(arr.min()), "max": float(arr.max())}


def scrub_env() -> None:
    """Drop inherited RAG_* variables so in-process Settings match the subprocesses' exactly."""
    for key in [k for k in os.environ if k.startswith("RAG_")] + ["OLLAMA_HOST"]:
        os.environ.pop(key, None)
    os.environ.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False", TOKENIZERS_PARALLELISM="false")


def child_env(data_dir: Path) -> dict:
    """Environment for `python -m rag …` subprocesses: unbuffered, offline, pointed at data_dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               TOKENIZERS_PARALLELISM="false", RAG_DATA_DIR=str(data_dir), RAG_SEED_DIR=str(SEEDS),
               RAG_OLLAMA_HOST=CLOSED_PORT)
    return env


class Workspace:
    """Temp data folders for one bench run, and which of them holds a finished whole-corpus index."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="rag-bench-"))
        self.index_dir: Path | None = None  # set by the index section, reused by the others

    def data_dir(self, name: str) -> Path:
        path = self.root / name
        shutil.rmtree(path, ignore_errors=True)
        return path

    def settings(self, data_dir: Path, **overrides):
        from rag.settings import Settings

        return Settings(data_dir=data_dir, seed_dir=SEEDS, ollama_host=CLOSED_PORT, **overrides)

    def indexed_settings(self, **overrides):
        """Settings of a whole-corpus index; builds one in-process when no section made one yet."""
        if self.index_dir is None:
            from rag.index.build import build_index

            print("  (building a whole-corpus index for this section…)", flush=True)
            self.index_dir = self.data_dir("shared-index")
            build_index(self.settings(self.index_dir))
        return self.settings(self.index_dir, **overrides)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def gold_questions() -> list[dict]:
    with open(GOLD, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def spread(items: list, n: int) -> list:
    """n items evenly spaced over the list (all question types, not just the first ones)."""
    if len(items) <= n:
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def machine_facts() -> dict:
    load = os.getloadavg()
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(),
            "executable": sys.executable, "loadavg_1_5_15": [round(x, 2) for x in load]}


def rag_code_hash() -> str:
    """Fingerprint of rag/*.py: other people edit rag/ while benchmarks run, and a section whose
    subprocesses ran newer code than its in-process half must say so."""
    digest = hashlib.sha1()
    for path in sorted((ROOT / "rag").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]
