"""Shared pieces of the fault-injection suite: run the real CLI as a subprocess, check that a
fault ended as one line with the documented exit code, and check that the index still answers.

Not a conftest.py (other files in this folder come from other branches; a second conftest
module would collide with tests/conftest.py's name): test modules import what they use.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
SMALL_SEEDS = ("000_b4c6e2471aaaaf82.txt", "001_e9ec3acac07436bd.txt")  # 13 unique papers
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens
QUESTION = "grading handwritten engineering exams with multimodal models"
EXPECTED = "Grading Handwritten Engineering Exams with Multimodal Large Language Models"
EXIT = {"ok": 0, "unexpected": 1, "input": 2, "store": 3, "backend": 4, "interrupted": 130, "pipe": 141}


def copy_small_seeds(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in SMALL_SEEDS:
        shutil.copy(SEEDS / name, folder / name)
    return folder


def cli_env(data_dir: Path | str, seed_dir: Path | str, **extra: str) -> dict:
    """A clean environment: no RAG_* or OLLAMA_HOST from outside, Ollama on a closed port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OLLAMA_HOST"}
    env.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False", GRADIO_ANALYTICS_ENABLED="False",
               RAG_DATA_DIR=str(data_dir), RAG_SEED_DIR=str(seed_dir), RAG_OLLAMA_HOST=CLOSED,
               RAG_LLAMACPP_MODEL_PATH=str(ROOT / "no-such-model.gguf"))  # auto falls back to extractive, fast
    env.update(extra)
    return env


def run(args: list, env: dict, *, prefix: list | None = None, timeout: float = 180,
        module: str = "rag") -> subprocess.CompletedProcess:
    """`python -m rag ARGS` from the worktree (so its `rag` is the one imported), as bytes-safe text."""
    cmd = [*(prefix or []), sys.executable, "-m", module, *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, timeout=timeout,
                          text=True, errors="backslashreplace")


def assert_error(proc: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The fault ended with `code`, no traceback, and exactly one `error:` line holding `words`."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


def still_answers(settings) -> None:
    """The module's index answers a search with the paper it should (in-process, real Chroma)."""
    from rag.query.retrieval import search

    hits = search(QUESTION, k=3, settings=settings)
    assert hits and hits[0].title == EXPECTED


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """An index of the 13 small-seed papers, built once per module; returns its Settings."""
    from rag.index.build import build_index
    from rag.settings import Settings

    base = tmp_path_factory.mktemp("faults-index")
    settings = Settings(data_dir=base / "data", seed_dir=copy_small_seeds(base / "seeds"), ollama_host=CLOSED)
    build_index(settings)
    still_answers(settings)
    return settings


@contextlib.contextmanager
def raw_server(greeting: bytes | None, trickle: float = 0.0):
    """A TCP server that accepts and then sends `greeting` (not HTTP), or nothing at all, ever;
    with `trickle`, then one more byte every `trickle` seconds (no socket timeout ever trips)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    conns, stop = [], threading.Event()

    def serve():
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                conns.append(conn)
                if greeting:
                    conn.sendall(greeting)
            if trickle:
                for conn in conns:
                    with contextlib.suppress(OSError):
                        conn.sendall(b"x")
                stop.wait(trickle)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in conns:
            conn.close()
        listener.close()


def without_root_override() -> list[str]:
    """Root ignores file permissions through CAP_DAC_OVERRIDE; drop it (and DAC_READ_SEARCH) so a
    read-only folder is read-only for the CLI too. As another user nothing needs dropping."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
              "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    if shutil.which("setpriv") is None or probe.returncode != 0:
        pytest.skip("running as root without setpriv: permissions cannot be enforced here")
    return prefix
