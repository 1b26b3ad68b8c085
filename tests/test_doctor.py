"""`python -m rag doctor`: one table, each row OK or the fix; non-zero exit when the default path is broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def _doctor(data_dir, **env):
    full = {**os.environ, "RAG_DATA_DIR": str(data_dir), "RAG_OLLAMA_HOST": "http://127.0.0.1:9", **env}
    return subprocess.run([sys.executable, "-m", "rag", "doctor"], capture_output=True, text=True, cwd=ROOT,
                          env=full, timeout=900)


def _rows(stdout: str) -> dict[str, str]:
    """check name -> the rest of its line, from the rendered table."""
    rows = {}
    for line in stdout.splitlines()[1:]:
        for status in (" OK ", " WARN ", " FAIL "):
            if status in line:
                name, rest = line.split(status, 1)
                rows[name.strip()] = status.strip() + " " + rest.strip()
    return rows


def test_healthy_setup_passes_with_every_row(corpus_settings):
    done = _doctor(corpus_settings.data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert {"packages", "embedding model", "embedded generation", "index", "ollama", "free disk"} <= set(rows)
    assert rows["packages"].startswith("OK") and "xllamacpp 2026.10.11549" in rows["packages"]
    assert rows["model qwen2.5-coder-1.5b"].startswith("OK") and "verified" in rows["model qwen2.5-coder-1.5b"]
    assert rows["embedded generation"].startswith("OK") and "child process" in rows["embedded generation"]
    assert rows["index"].startswith("OK") and "papers" in rows["index"] and "fingerprint" in rows["index"]
    assert rows["ollama"].startswith("WARN") and "ollama serve" in rows["ollama"]  # optional: a warning only
    assert "the default path works" in done.stdout


def test_ollama_is_required_when_it_embeds_the_questions(corpus_settings):
    done = _doctor(corpus_settings.data_dir, RAG_EMBED_BACKEND="ollama")
    rows = _rows(done.stdout)
    assert done.returncode != 0 and rows["ollama"].startswith("FAIL"), done.stdout
    assert "RAG_EMBED_BACKEND" in rows["ollama"] and "ollama serve" in rows["ollama"]


def test_garbage_model_file_fails_and_names_the_fix(corpus_settings, tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"this is not a GGUF file\n" * 1000)
    done = _doctor(corpus_settings.data_dir, RAG_LLAMACPP_MODEL_PATH=str(bad), RAG_MODELS_DIR=str(tmp_path / "m"))
    assert done.returncode == 1
    rows = _rows(done.stdout)
    assert rows[f"model {bad}"].startswith("FAIL") and "RAG_LLAMACPP_MODEL_PATH" in rows[f"model {bad}"]
    assert rows["embedded generation"].startswith("FAIL") and "not a GGUF file" in rows["embedded generation"]
    assert "Traceback" not in done.stderr and "fix the rows marked FAIL" in done.stdout


def test_truncated_model_file_fails_its_test_generation(corpus_settings, tmp_path):
    from rag.llm.models import MODELS, model_path
    from rag.settings import Settings

    cut = tmp_path / "cut.gguf"
    with open(model_path(MODELS["smollm2-135m"], Settings()), "rb") as f:
        cut.write_bytes(f.read(4 << 20))  # a real GGUF header, the tensors missing
    done = _doctor(corpus_settings.data_dir, RAG_LLAMACPP_MODEL_PATH=str(cut), RAG_MODELS_DIR=str(tmp_path / "m"))
    assert done.returncode == 1
    row = _rows(done.stdout)["embedded generation"]
    assert row.startswith("FAIL") and "test generation failed" in row and "make doctor" not in row


def test_a_corrupted_registry_model_fails_its_checksum(tmp_path):
    """A copy of the default model's directory with one byte changed: doctor re-hashes and says how to fix it."""
    from rag.doctor import _model
    from rag.llm.models import MODELS, model_path
    from rag.settings import Settings

    settings = Settings(models_dir=tmp_path, llamacpp_model="qwen2.5-coder-0.5b")
    spec = MODELS["qwen2.5-coder-0.5b"]
    good = model_path(spec, Settings())
    copy = model_path(spec, settings)
    copy.write_bytes(good.read_bytes()[:-1] + b"\\0")
    try:
        _model(settings, spec.key)
    except Exception as e:  # noqa: BLE001 - the Problem carries status and fix
        assert e.status == "FAIL" and "fails its checksum" in e.detail and "make models" in e.detail
    else:
        raise AssertionError("a corrupted model passed its checksum")
    assert json.loads((tmp_path / "verified.json").read_text())[str(copy)]["sha256"] != spec.sha256
