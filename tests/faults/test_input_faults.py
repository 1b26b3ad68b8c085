"""Bad and hostile input at the CLI and the API: long questions, undecodable bytes, closed pipes,
Ctrl-C, bad options. Each ends with the documented exit code and one line (or a real answer),
and the index still answers afterwards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faultkit import EXIT, QUESTION, ROOT, assert_error, built, cli_env, run, still_answers  # noqa: F401

from ollama_fake import FakeOllama

LONG = "GRPO? " * 160  # the reported case: 960 characters, ~480 word pieces (under the cap, over the window)
PADDING = "GRPO? " * 150  # 900 characters: leaves room for a real question within the 1000-character cap


def _search_titles(proc) -> list[str]:
    return [line.split("  ")[1] for line in proc.stdout.splitlines() if line[:3].strip().rstrip(".").isdigit()]


# --- questions longer than the embedder's window are answered, not refused -----------------------

def test_search_with_a_question_over_the_embedder_window(built):
    proc = run(["search", PADDING + QUESTION, "-k", "3"], cli_env(built.data_dir, built.seed_dir))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(_search_titles(proc)) == 3
    still_answers(built)


def test_ask_with_a_question_over_the_embedder_window(built):
    proc = run(["ask", LONG, "--backend", "extractive", "--json"], cli_env(built.data_dir, built.seed_dir))
    assert proc.returncode == 0 and "RAG_CHUNK_TOKENS" not in proc.stderr, proc.stderr[-2000:]
    assert '"backend": "extractive"' in proc.stdout
    still_answers(built)


def test_follow_up_with_a_long_history(built):
    proc = run(["ask", "How were they graded?", "--history", PADDING + QUESTION, "--backend", "extractive", "--json"],
               cli_env(built.data_dir, built.seed_dir))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "How were they graded?" in proc.stdout
    still_answers(built)


def test_the_query_embedding_keeps_the_end_of_a_long_text():
    """A follow-up's retrieval text is `<earlier turn> <question>`: truncation must keep the question."""
    from rag.index.embedding import get_minilm, minilm_query

    tail = "Which paper grades handwritten engineering exams?"
    long_vec, tail_vec = minilm_query(LONG + tail), get_minilm().embed([tail])[0]
    assert float(long_vec @ tail_vec) > float(minilm_query(LONG) @ tail_vec) + 0.1


# --- bytes, pipes, signals ---------------------------------------------------------------------

def test_invalid_utf8_in_argv(built):
    env = cli_env(built.data_dir, built.seed_dir)
    proc = subprocess.run([sys.executable, "-m", "rag", "search", b"caf\xe9 \xff\xfe models"], env=env, cwd=ROOT,
                          capture_output=True, text=True, errors="backslashreplace", timeout=120)
    assert_error(proc, EXIT["input"], "not valid UTF-8", "LANG=C.UTF-8")
    still_answers(built)


@pytest.mark.parametrize("args", [["search", "reinforcement learning", "-k", "13"],
                                  ["ask", "reinforcement learning for reasoning", "--backend", "extractive"],
                                  ["papers", "--json"]], ids=["search", "ask", "papers"])
def test_reader_closes_the_pipe(built, args):
    """`… | head -1`: the reader is gone before we write. Quiet exit 141, no BrokenPipeError."""
    read, write = os.pipe()
    os.close(read)  # the reader has already exited
    proc = subprocess.run([sys.executable, "-m", "rag", *args], env=cli_env(built.data_dir, built.seed_dir),
                          cwd=ROOT, stdout=write, stderr=subprocess.PIPE, text=True, timeout=180)
    os.close(write)
    assert proc.returncode == EXIT["pipe"], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr[-2000:]
    still_answers(built)


@pytest.mark.parametrize("closed", [">&-", "2>&-"])
def test_a_closed_stdout_or_stderr_is_not_a_crash_and_json_stays_json(built, closed):
    """`cmd >&-` starts Python with no sys.stdout; `2>&-` lets the first file opened take the
    descriptor, so warnings would land in it or in the JSON."""
    env = cli_env(built.data_dir, built.seed_dir)
    ask = subprocess.run(["bash", "-c", f'"$0" -m rag ask "reinforcement learning for reasoning" --backend extractive {closed}',
                          sys.executable], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert ask.returncode == 0 and "Traceback" not in ask.stderr + ask.stdout, ask.stderr[-2000:]
    listing = subprocess.run(["bash", "-c", f'"$0" -m rag papers --json {closed if closed == "2>&-" else ""}',
                              sys.executable], env={**env, "RAG_NO_SUCH_SETTING": "1"}, cwd=ROOT,
                             capture_output=True, text=True, timeout=180)
    assert listing.returncode == 0 and len(json.loads(listing.stdout)) == 13  # the unknown-setting warning kept out


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_output_to_a_full_device_is_one_line(built):
    """`… > /dev/full`: every write fails with ENOSPC. One line naming it, exit 3, no traceback."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "rag", "papers", "--json"], env=cli_env(built.data_dir,
                              built.seed_dir), cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, timeout=180)
    assert_error(proc, EXIT["store"], "no space left", "send the output elsewhere")
    assert "Exception ignored" not in proc.stderr


def test_ctrl_c_while_an_answer_streams(built):
    """SIGINT mid-stream (a slow Ollama writing its answer): exit 130, one line, no traceback."""
    with FakeOllama(reply="Graded answer " * 200, chunk_delay=0.05) as fake:
        env = cli_env(built.data_dir, built.seed_dir, RAG_OLLAMA_HOST=fake.url)
        # SIG_DFL first: a suite started in the background without job control inherits SIGINT as
        # ignored, and Python then installs no KeyboardInterrupt handler (the CLI would finish the answer)
        proc = subprocess.Popen([sys.executable, "-m", "rag", "ask", QUESTION, "--backend", "ollama"], env=env,
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        for line in iter(proc.stdout.readline, ""):  # sources print first, then a "Draft (…):" line
            if line.startswith("Draft"):
                break
        first = proc.stdout.read(8)  # blocks until the answer has started to stream
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert "Graded" in first, (first, err[-2000:])
    assert proc.returncode == EXIT["interrupted"] and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == "error: interrupted"
    still_answers(built)


# --- bad questions and options --------------------------------------------------------------------

BAD_ARGS = [  # (args, exit code, words)
    (["search", "?!?…"], EXIT["input"], ["no words"]),
    (["ask", "...", "--backend", "extractive"], EXIT["input"], ["no words"]),
    (["search", ""], EXIT["input"], ["empty"]),
    (["ask", "   ", "--backend", "extractive"], EXIT["input"], ["empty"]),
    (["search", "why? " * 201], EXIT["input"], ["under 1000"]),
    (["ask", "What is GRPO?", "--history", "x" * 1001, "--backend", "extractive"], EXIT["input"], ["history item 1"]),
    (["search", "grpo", "-k", "0"], EXIT["input"], ["-k", "whole number"]),
    (["search", "grpo", "-k", "-3"], EXIT["input"], ["-k"]),
    (["search", "grpo", "-k", "many"], EXIT["input"], ["-k"]),
    (["ask", "What is GRPO?", "-k", "51", "--backend", "extractive"], EXIT["input"], ["top_k=51"]),
    (["search", "grpo", "--from", "2025-13"], EXIT["input"], ["not a date", "YYYY-MM-DD"]),
    (["search", "grpo", "--to", "last week"], EXIT["input"], ["not a date"]),
    (["search", "grpo", "--from", "2025", "--to", "2024"], EXIT["input"], ["empty", "from"]),
    (["search", "grpo", "--bogus"], EXIT["input"], ["unrecognized arguments"]),
    (["frobnicate"], EXIT["input"], ["invalid choice"]),
    (["ask", "What is GRPO?", "--backend", "gpt5"], EXIT["input"], ["invalid choice"]),
]


@pytest.mark.parametrize("args,code,words", BAD_ARGS, ids=[" ".join(a)[:40] for a, _, _ in BAD_ARGS])
def test_bad_question_or_option(built, args, code, words):
    proc = run(args, cli_env(built.data_dir, built.seed_dir))
    assert "Traceback" not in proc.stderr and proc.returncode == code, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]  # argparse's usage error or our one error line
    assert all(w.lower() in last.lower() for w in words), last
    still_answers(built)


def test_huge_k_returns_every_paper_once(built):
    proc = run(["search", "language models", "-k", "100000"], cli_env(built.data_dir, built.seed_dir))
    titles = _search_titles(proc)
    assert proc.returncode == 0 and len(titles) == len(set(titles)) == 13, proc.stderr[-2000:]


def test_seed_dir_that_does_not_exist(built, tmp_path):
    proc = run(["index"], cli_env(built.data_dir, tmp_path / "no-such-folder"))
    assert_error(proc, EXIT["input"], "no *.txt seed files", "RAG_SEED_DIR")
    still_answers(built)  # the failed run left the index alone


# --- user text on the make command line is never run by the shell --------------------------------

def _make(target: str, env: dict, **variables: str) -> subprocess.CompletedProcess:
    """`make -s TARGET VAR=value…` in the worktree; `-o` keeps the install stamp from ever
    triggering a pip run here. The test suite runs inside .venv, so the recipes find it."""
    env = {k: v for k, v in env.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # under `make test`
    cmd = ["make", "-s", "-o", ".venv/.installed", target, *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)


def _payload(marker) -> str:
    return f'`touch {marker}` $(touch {marker}) "quoted" \'it\'s\' $$HOME; touch {marker} & a\\b'


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_search_never_runs_backticks_in_q(built, tmp_path):
    marker = tmp_path / "pwned"
    proc = _make("search", cli_env(built.data_dir, built.seed_dir), Q=f"{QUESTION} {_payload(marker)}")
    assert proc.returncode == 0 and _search_titles(proc), proc.stderr[-2000:]
    assert not marker.exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_passes_user_text_to_the_program_verbatim(tmp_path):
    """Every recipe taking user text, with the program swapped for one that records its argv."""
    marker, argv = tmp_path / "pwned", tmp_path / "argv"
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv}\n')
    fake.chmod(0o755)
    text = _payload(marker)
    cases = [  # (target, variables, the arguments the program must get)
        ("search", {"Q": text}, ["search", text]),
        ("ask", {"Q": text, "BACKEND": text}, ["ask", text, "--backend", text]),
        ("remove", {"ID": text}, ["remove", text]),
        ("add", {"FILE": f"my\\ refs.csv `touch {marker}` $(id) *.bib", "SKIP_BAD": "1"},  # split at spaces
         ["add", "my refs.csv", "`touch", f"{marker}`", "$(id)", "*.bib", "--skip-bad"]),
    ]
    for target, variables, expected in cases:
        proc = _make(target, {**os.environ, "HF_HUB_OFFLINE": "1"}, BIN=str(fake.parent), **variables)
        assert proc.returncode == 0, (target, proc.stderr[-2000:])
        assert argv.read_text().splitlines() == ["-m", "rag", *expected], target
    assert not marker.exists()


API_BAD = [  # (question, options, words)
    (123, {}, "must be text, not int"),
    (None, {}, "empty"),
    ("What is\x00 GRPO?", {}, "control characters"),
    ("caf\udce9 models", {}, "not valid text"),
    ("What is GRPO?", {"history": 5}, "history must be a list"),
    ("What is GRPO?", {"history": ["x" * 1001]}, "history item 1 is 1001 characters"),
    ("What is GRPO?", {"history": [None, ["a list"]]}, "history item 2 must be text"),
]


@pytest.mark.parametrize("question,options,words", API_BAD, ids=[w for _, _, w in API_BAD])
def test_api_rejects_bad_arguments_with_input_error(built, question, options, words):
    import rag

    with pytest.raises(rag.InputError, match=words):
        rag.ask(question, backend="extractive", settings=built, **options)
    still_answers(built)


def test_api_search_rejects_undecodable_text(built):
    import rag

    with pytest.raises(rag.InputError, match="not valid Unicode"):
        rag.search("caf\udce9 models", settings=built)
    still_answers(built)


def test_an_abstract_with_a_run_on_sentence_longer_than_the_window(tmp_path):
    """Evidence scoring embeds every abstract sentence at question time; one over 256 word pieces
    (a user's own paper, punctuated with commas) must not crash `ask` with a chunk-size error."""
    import rag
    from faultkit import EXPECTED, copy_small_seeds
    from rag.index.build import build_index
    from rag.settings import Settings

    seeds = copy_small_seeds(tmp_path / "seeds")
    page = seeds / "001_e9ec3acac07436bd.txt"
    lines = page.read_text().splitlines()
    at = lines.index(EXPECTED) + 2
    words = "handwritten exam grading with multimodal models and rubric checks across many courses"
    lines[at] = lines[at].rstrip(".") + ", " + ", ".join([words] * 30) + "."
    page.write_text("\n".join(lines) + "\n")
    settings = Settings(data_dir=tmp_path / "data", seed_dir=seeds, ollama_host="http://127.0.0.1:9")
    build_index(settings)
    from rag.index.chunking import split_sentences
    from rag.index.embedding import MAX_WORD_PIECES, get_minilm

    longest = max(get_minilm().word_pieces(s) for s in split_sentences(lines[at]))
    assert longest > MAX_WORD_PIECES  # the fault is really there
    answer = rag.ask(QUESTION, backend="extractive", settings=settings)
    assert answer.retrieved[0]["title"] == EXPECTED
    still_answers(settings)
