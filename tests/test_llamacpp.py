"""The embedded runtime's behaviour (rag.llm.llamacpp on xllamacpp) with the real SmolLM2 model:
streaming, stopping, determinism, usage, an abandoned stream, and what a broken model file or a
crashing runtime turns into (rag.llm.probe)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT
from rag.errors import BackendUnavailable
from rag.llm import probe
from rag.llm.llamacpp import LlamaCppBackend
from rag.settings import Settings

COUNT = [{"role": "user", "content": "Count from 1 to 30, separated by commas. Write only the numbers."}]


@pytest.fixture(scope="module")
def small():
    return LlamaCppBackend.load(Settings(llamacpp_model="smollm2-135m"))


def test_stream_and_complete_agree_and_count_usage(small):
    streamed = "".join(small.stream(COUNT, 24, stop=[]))
    streamed_usage = small.usage
    whole = small.complete(COUNT, 24, stop=[])
    assert streamed and streamed == whole, "temperature 0: the same text either way"
    assert streamed_usage == small.usage
    assert small.usage.prompt_tokens > small.count_tokens(COUNT[0]["content"])  # plus the chat template
    assert 1 <= small.usage.completion_tokens <= 24
    assert small.model == "smollm2-135m" and small.small and small.context_window == 2048


def test_stop_sequences_end_the_answer(small):
    full = small.complete(COUNT, 40, stop=[])
    words = full.split()
    assert len(words) > 4, full
    stop = words[3]  # whatever the model writes, cutting at its 4th word must end the answer there
    cut = small.complete(COUNT, 40, stop=[stop])
    assert cut == full[: full.index(stop)]


def test_an_abandoned_stream_stops_its_worker(small):
    stream = small.stream(COUNT, 200, stop=[])
    next(stream)
    stream.close()
    deadline = time.time() + 30
    while time.time() < deadline and any(t.name == "llamacpp-stream" for t in threading.enumerate()):
        time.sleep(0.1)
    assert not any(t.name == "llamacpp-stream" for t in threading.enumerate())
    assert small.complete(COUNT, 8, stop=[]), "the model still answers afterwards"


def test_count_tokens_uses_the_models_tokenizer(small):
    assert small.count_tokens("") == 0
    assert 3 <= small.count_tokens("retrieval augmented generation") <= 8
    assert small.count_tokens("word " * 100) >= 100


def _crash_settings(tmp_path, monkeypatch, sig: str) -> Settings:
    """A real child process that dies by a real signal, standing in for a runtime that SIGILLs."""
    monkeypatch.setattr(probe, "child_command",
                        lambda path: [sys.executable, "-c", f"import os, signal; os.kill(os.getpid(), signal.{sig})"])
    return Settings(models_dir=tmp_path / "models", llamacpp_model="smollm2-135m")


def test_a_runtime_killed_by_a_signal_is_recorded_and_named(tmp_path, monkeypatch):
    settings = _crash_settings(tmp_path, monkeypatch, "SIGILL")
    with pytest.raises(BackendUnavailable, match=r"killed by SIGILL \(Illegal instruction\).*make doctor"):
        LlamaCppBackend.load(settings)
    monkeypatch.setattr(probe, "child_command", lambda path: pytest.fail("the verdict is recorded, not re-tested"))
    with pytest.raises(BackendUnavailable, match="SIGILL"):
        LlamaCppBackend.load(settings)


def test_auto_stops_choosing_a_crashing_runtime_and_says_so(tmp_path, monkeypatch):
    settings = _crash_settings(tmp_path, monkeypatch, "SIGSEGV")
    notes: list[str] = []
    assert LlamaCppBackend.load_auto(settings, notes) is None
    assert notes and all("SIGSEGV" in n for n in notes)


def _cli_ask(gguf, backend, data_dir):
    env = {**os.environ, "RAG_LLAMACPP_MODEL_PATH": str(gguf), "RAG_DATA_DIR": str(data_dir),
           "RAG_OLLAMA_HOST": "http://127.0.0.1:9"}
    return subprocess.run([sys.executable, "-m", "rag", "ask", "How many multilingual benchmarks were examined?",
                           "--backend", backend], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


@pytest.mark.parametrize("content", [b"not a model at all\n" * 100, "truncated"])
def test_a_broken_gguf_is_one_line_under_llamacpp_and_a_fallback_under_auto(corpus_settings, tmp_path, content):
    from rag.llm.models import MODELS, model_path

    gguf = tmp_path / "broken.gguf"
    if content == "truncated":  # a real GGUF header, cut off after 1 MB
        with open(model_path(MODELS["smollm2-135m"], Settings()), "rb") as f:
            gguf.write_bytes(f.read(1 << 20))
    else:
        gguf.write_bytes(content)
    done = _cli_ask(gguf, "llamacpp", corpus_settings.data_dir)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "broken.gguf" in done.stderr
    done = _cli_ask(gguf, "auto", corpus_settings.data_dir)
    assert done.returncode == 0, done.stderr
    assert "embedded model not used" in done.stdout + done.stderr and "2,000" in done.stdout


def test_a_prompt_longer_than_the_window_names_the_setting():
    from rag.errors import ContextOverflow

    tight = LlamaCppBackend.load(Settings(llamacpp_model="smollm2-135m", llamacpp_n_ctx=256,
                                                evidence_tokens=50, small_answer_tokens=16))
    long = [{"role": "user", "content": "word " * 600}]
    with pytest.raises(ContextOverflow, match="RAG_LLAMACPP_N_CTX"):
        tight.complete(long, 10)
    with pytest.raises(ContextOverflow, match="RAG_LLAMACPP_N_CTX"):
        "".join(tight.stream(long, 10))
