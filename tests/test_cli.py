"""The CLI contract: commands, JSON output, and a query path that imports only what it uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

PROBE = """
import sys
from rag.cli import main
code = main(sys.argv[1:])
heavy = [m for m in ("gradio", "llama_index.core", "torch", "sentence_transformers") if m in sys.modules]
print("HEAVY", heavy, "EXIT", code, file=sys.stderr)
"""


def _run(args, corpus_settings):
    env = {**os.environ, "RAG_DATA_DIR": str(corpus_settings.data_dir), "HF_HUB_OFFLINE": "1",
           "RAG_OLLAMA_HOST": "http://127.0.0.1:9"}
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_search_and_extractive_ask_import_nothing_heavy(corpus_settings):
    for args in (["search", "curriculum learning for small language models", "-k", "3"],
                 ["ask", "What is the capital of France?", "--backend", "extractive"]):
        proc = _run(args, corpus_settings)
        assert "HEAVY [] EXIT 0" in proc.stderr, proc.stderr


def test_search_json_contract(corpus_settings):
    proc = _run(["search", "asynchronous streaming RL framework", "--json", "-k", "3"], corpus_settings)
    hits = json.loads(proc.stdout)
    assert len(hits) == 3 and {"paper_id", "title", "score"} <= set(hits[0])
    assert hits[0]["title"].startswith("AsyncFlow")


def test_a_search_that_finds_nothing_says_why(corpus_settings):
    filtered = _run(["search", "reasoning", "--org", "no such lab"], corpus_settings)
    assert "EXIT 0" in filtered.stderr and "no paper matches the filters" in filtered.stderr
    unmatched = _run(["search", "zzqxjv wqpzlk", "--mode", "bm25"], corpus_settings)
    assert "EXIT 0" in unmatched.stderr and "filters" not in unmatched.stderr and "shares a word" in unmatched.stderr


def test_papers_json_lists_every_unique_paper(corpus_settings):
    proc = _run(["papers", "--json"], corpus_settings)
    papers = json.loads(proc.stdout)
    assert len(papers) == 275 and all(p["sources"] for p in papers)


def test_ask_json_is_the_answer_object(corpus_settings):
    proc = _run(["ask", "How many multilingual benchmarks did the position paper examine?",
                 "--backend", "extractive", "--json"], corpus_settings)
    answer = json.loads(proc.stdout)
    assert answer["abstained"] is False and answer["backend"] == "extractive"
    assert {c["paper_id"] for c in answer["citations"]} <= {r["paper_id"] for r in answer["retrieved"]}


def test_ask_loads_the_model_while_a_child_retrieves_and_answers_the_same(corpus_settings):
    import rag

    q = "How many multilingual benchmarks did the position paper examine?"
    proc = _run(["ask", q, "--backend", "llamacpp", "--json"], corpus_settings)
    answer = json.loads(proc.stdout)
    assert answer["timings"]["backend_overlapped_s"] > 0  # the fork path ran, not the fallback
    in_process = rag.ask(q, backend="llamacpp", settings=corpus_settings)
    assert answer["text"] == in_process.text and not answer["abstained"]
    assert answer["sources"] == in_process.to_dict()["sources"]
