"""Shared fixtures. Everything is real: MiniLM, Chroma, llama.cpp; only the Ollama server is a
loopback stand-in (tests/ollama_fake.py). No test touches the user's data folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = ROOT / "tests" / "data"
# Settings built before the autouse fixture runs (session fixtures) must not see the user's library/
os.environ["RAG_LIBRARY_DIR"] = tempfile.mkdtemp(prefix="rag-test-library-")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """Point every default at a temp dir and keep Ollama pointed at a closed port."""
    from rag.settings import get_settings

    for key in [k for k in os.environ if k.startswith("RAG_")] + ["OLLAMA_HOST"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path_factory.mktemp("default-data")))
    monkeypatch.setenv("RAG_SEED_DIR", str(SEEDS))
    monkeypatch.setenv("RAG_LIBRARY_DIR", str(tmp_path_factory.mktemp("library")))
    monkeypatch.setenv("RAG_OLLAMA_HOST", "http://127.0.0.1:9")  # discard port: nothing listens
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def corpus_settings(tmp_path_factory):
    """Settings for an index of the whole corpus, built once per test session (~25 s)."""
    from rag.index.build import build_index
    from rag.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("corpus-index"), seed_dir=SEEDS,
                        library_dir=tmp_path_factory.mktemp("corpus-library"), ollama_host="http://127.0.0.1:9")
    build_index(settings)
    return settings


@pytest.fixture
def small_seeds(tmp_path):
    """A private copy of the two smallest seed files (13 unique papers: 000's 8 are all in 001), safe to edit."""
    d = tmp_path / "seeds"
    d.mkdir()
    for name in ("000_b4c6e2471aaaaf82.txt", "001_e9ec3acac07436bd.txt"):
        shutil.copy(SEEDS / name, d / name)
    return d


@pytest.fixture
def small_settings(tmp_path, small_seeds):
    from rag.settings import Settings

    return Settings(data_dir=tmp_path / "data", seed_dir=small_seeds, library_dir=tmp_path / "library",
                    ollama_host="http://127.0.0.1:9")
