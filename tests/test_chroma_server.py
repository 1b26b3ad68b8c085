"""Scale-out: the same code path against a real `chroma run` server on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import rag
from rag.errors import StoreError
from rag.index.build import build_index
from rag.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    port = _free_port()
    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "srv"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            assert proc.poll() is None, "chroma run exited early"
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("chroma run did not come up within 60 s")
    yield port
    proc.terminate()
    proc.wait(timeout=20)


def test_index_and_search_through_a_chroma_server(chroma_server, small_seeds, tmp_path):
    settings = Settings(seed_dir=small_seeds, data_dir=tmp_path / "unused", chroma_host="127.0.0.1",
                        chroma_port=chroma_server)
    first = build_index(settings)
    assert first.added == 13 and first.chunks_total > 13
    assert build_index(settings).unchanged == 13  # idempotent against the server too
    hits = rag.search("grading handwritten engineering exams with multimodal models", k=3, settings=settings)
    assert hits[0].title == "Grading Handwritten Engineering Exams with Multimodal Large Language Models"
    assert not (tmp_path / "unused" / "chroma").exists()  # nothing went to the embedded store


def test_unreachable_server_names_the_fix(small_seeds, tmp_path):
    settings = Settings(seed_dir=small_seeds, data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=_free_port())
    with pytest.raises(StoreError, match="chroma run"):
        build_index(settings)
