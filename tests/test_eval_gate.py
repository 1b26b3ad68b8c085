"""The regression gate: retrieval and extractive-answer eval on every gold question must stay
above evals/thresholds.json. (The embedded-LLM answer eval is slow and runs in `make eval`.)"""

from __future__ import annotations

import json

import pytest

from rag.eval.run import evaluate, flatten, gate
from rag.eval.gold import load_gold
from rag.eval.report import write_reports

from conftest import ROOT


@pytest.fixture(scope="module")
def results(corpus_settings):
    return evaluate(load_gold(ROOT / "evals" / "gold.jsonl"), corpus_settings, ["extractive"])


def test_gate_passes(results):
    thresholds = json.loads((ROOT / "evals" / "thresholds.json").read_text())
    assert thresholds, "no thresholds: the gate would pass vacuously"
    assert gate(flatten(results["aggregates"]), thresholds) == []


def test_every_citation_points_at_a_retrieved_paper(results):
    records = results["records"]["answers"]["extractive"]
    assert all("error" not in r for r in records)
    assert all(r["citation_validity"] in (None, 1.0) for r in records)


def test_reports_are_written(results, tmp_path):
    results["meta"].update({"gold": "evals/gold.jsonl", "split": "all"})
    paths = write_reports(results, tmp_path)
    assert {p.name for p in paths} == {"results.json", "summary.md", "retrieval_by_type.png", "answers_by_backend.png"}
    assert all(p.stat().st_size > 0 for p in paths)
    assert "| hybrid |" in (tmp_path / "summary.md").read_text()


def test_any_gold_file_in_the_schema_works(corpus_settings, tmp_path, monkeypatch, capsys):
    gold = tmp_path / "mine.jsonl"
    gold.write_text(json.dumps({"id": "m1", "question": "Which framework streams RL post-training asynchronously?",
                                "type": "which_paper", "gold_titles": [
                                    "AsyncFlow: An Asynchronous Streaming RL Framework for Efficient LLM Post-Training"],
                                "answer": "AsyncFlow", "key_facts": ["AsyncFlow"]}) + "\n")
    monkeypatch.setenv("RAG_DATA_DIR", str(corpus_settings.data_dir))
    monkeypatch.chdir(ROOT)  # the baseline and thresholds are read from the project
    from rag.cli import main
    from rag.settings import get_settings

    get_settings.cache_clear()
    assert main(["eval", "--gold", str(gold), "--out", str(tmp_path / "out"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["aggregates"]["retrieval"]["hybrid"]["overall"]["hit@1"] == 1.0
    assert out["aggregates"]["answers"]["extractive"]["overall"]["key_fact_recall"] == 1.0


ASYNCFLOW = "AsyncFlow: An Asynchronous Streaming RL Framework for Efficient LLM Post-Training"


def _eval(corpus_settings, tmp_path, monkeypatch, lines, *args) -> int:
    gold = tmp_path / "mine.jsonl"
    gold.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    monkeypatch.setenv("RAG_DATA_DIR", str(corpus_settings.data_dir))
    monkeypatch.setenv("RAG_OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.chdir(tmp_path)  # not the project: its baseline and thresholds are found anyway
    from rag.cli import main
    from rag.settings import get_settings

    get_settings.cache_clear()
    return main(["eval", "--gold", str(gold), "--out", str(tmp_path / "out"), *args])


def test_a_gold_file_with_a_duplicate_id_or_a_title_typo_is_refused_before_the_run(
        corpus_settings, tmp_path, monkeypatch, capsys):
    item = {"id": "m1", "question": "Which framework streams RL post-training asynchronously?",
            "type": "which_paper", "gold_titles": [ASYNCFLOW], "answer": "AsyncFlow", "key_facts": ["AsyncFlow"]}
    typo = {**item, "id": "m2", "gold_titles": [ASYNCFLOW.replace("Streaming", "Steaming")]}
    assert _eval(corpus_settings, tmp_path, monkeypatch, [item, item, typo], "--no-answers") == 2
    err = capsys.readouterr().err
    assert "m1: duplicate id" in err and "m2: gold title not in the corpus" in err and not (tmp_path / "out").exists()
    assert _eval(corpus_settings, tmp_path, monkeypatch, [], "--no-answers") == 2  # an empty file too


def test_an_eval_whose_backend_is_down_fails_instead_of_scoring_what_is_left(corpus_settings, tmp_path, monkeypatch,
                                                                             capsys):
    item = {"id": "m1", "question": "Which framework streams RL post-training asynchronously?",
            "type": "which_paper", "gold_titles": [ASYNCFLOW], "answer": "AsyncFlow", "key_facts": ["AsyncFlow"]}
    assert _eval(corpus_settings, tmp_path, monkeypatch, [item], "--backend", "ollama", "--gate") == 4
    assert "1 answers failed" in capsys.readouterr().err and (tmp_path / "out" / "results.json").is_file()


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_unusable_out_dir_fails_before_the_run(tmp_path, monkeypatch, capsys, where):
    a_file = tmp_path / "hostname"
    a_file.write_text("not a directory\n")
    out = a_file if where == "file" else a_file / "reports"
    # an empty data dir: had the run started, retrieval would fail with "no index" (exit 3) instead
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(ROOT)
    from rag.cli import main
    from rag.settings import get_settings

    get_settings.cache_clear()
    assert main(["eval", "--out", str(out), "--no-answers"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --out {out}") and "pass --out with a directory" in err, err
    assert a_file.read_text() == "not a directory\n"
