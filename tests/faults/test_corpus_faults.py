"""Corpus faults (issue 10): an unreadable or non-UTF-8 seed file is one error line naming the
file and the fix; a UTF-8 byte-order mark is tolerated; the same title with two different
abstracts is reported, not silently resolved. A pipe, a device or a huge file is refused unread;
a damaged removed.json, an empty id and an unknown --source are one error line each.
Checked through the parser and the real CLI."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from rag.corpus.listing import load_corpus, parse_file
from rag.errors import CorpusError

from conftest import DATA, SEEDS
from faultkit import EXIT, assert_error, cli_env, copy_small_seeds, run, without_root_override

SMALL = "000_b4c6e2471aaaaf82.txt"
ABSTRACT = "We study a thing in careful detail and report what we find about it. " * 5


def _cli(monkeypatch, capsys, seed_dir, *argv) -> tuple[int, str, str]:
    from rag.cli import main
    from rag.settings import get_settings

    monkeypatch.setenv("RAG_SEED_DIR", str(seed_dir))
    get_settings.cache_clear()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = [s for s in err.splitlines() if s.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def seeds(tmp_path):
    d = tmp_path / "seeds"
    d.mkdir()
    shutil.copy(SEEDS / SMALL, d / SMALL)
    return d


@pytest.mark.parametrize("make", ["dangling_link", "directory", "no_permission"])
def test_unreadable_seed_file_is_one_line_naming_it(seeds, monkeypatch, capsys, make):
    bad = seeds / "005_unreadable.txt"
    if make == "dangling_link":
        bad.symlink_to(seeds / "gone.txt")
    elif make == "directory":
        bad.mkdir()
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads files whatever their mode; the other two cases cover unreadable files")
        bad.write_text("x")
        bad.chmod(0)
    with pytest.raises(CorpusError) as e:
        load_corpus(seeds)
    assert e.value.path == "005_unreadable.txt"
    code, _, err = _cli(monkeypatch, capsys, seeds, "papers")
    line = _one_error_line(err)
    assert code == 2 and "005_unreadable.txt" in line
    assert any(fix in line for fix in ("fix the path", "give the files inside", "chmod"))


def test_non_utf8_seed_file_is_one_line_naming_it_and_the_line(seeds, monkeypatch, capsys):
    (seeds / "005_latin1.txt").write_bytes(f"A Title\n\n{ABSTRACT}\n\nCaf\xe9 Society\n\n{ABSTRACT}\n".encode("latin-1"))
    code, _, err = _cli(monkeypatch, capsys, seeds, "papers")
    line = _one_error_line(err)
    assert code == 2 and "005_latin1.txt:5" in line and "not UTF-8" in line and "re-save the file as UTF-8" in line


def test_utf8_bom_is_tolerated(seeds, monkeypatch, capsys):
    plain = parse_file(seeds / SMALL)
    bom = seeds / "005_bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + (seeds / SMALL).read_bytes())
    with_bom = parse_file(bom)
    assert [p.title for p in with_bom] == [p.title for p in plain]  # not "'\ufeffnew' is not a title"
    assert [p.abstract for p in with_bom] == [p.abstract for p in plain]
    code, out, _ = _cli(monkeypatch, capsys, seeds, "papers", "--json")
    assert code == 0 and {len(p["sources"]) for p in json.loads(out)} == {2}


def test_same_title_two_abstracts_in_two_seed_files_is_reported(seeds, monkeypatch, capsys):
    first = parse_file(seeds / SMALL)[0]
    other = "An entirely different abstract for the same title, which one of the two files must have wrong. " * 3
    (seeds / "005_other.txt").write_text(f"{first.title}\n\n{other}\n", encoding="utf-8")
    paper = next(p for p in load_corpus(seeds) if p.title == first.title)
    assert paper.abstract == first.abstract  # deterministic winner: the first file (same metadata rank)
    (c,) = paper.conflicts
    assert (c.kept, c.other, c.other_abstract) == (SMALL, "005_other.txt", other.strip())
    code, out, err = _cli(monkeypatch, capsys, seeds, "papers", "--json")
    assert code == 0 and f"{first.title!r}" in err and "different abstract in 005_other.txt" in err
    listed = next(p for p in json.loads(out) if p["title"] == first.title)
    assert listed["conflicts"][0]["other_abstract"] == other.strip()


def test_the_real_seed_pages_hold_one_conflict_and_it_is_reported():
    conflicts = [(p.title, c.kept, c.other) for p in load_corpus(SEEDS) for c in p.conflicts]
    # ProcBench is listed twice; one copy's dataset link points at a mirror (huface.online)
    assert conflicts == [("ProcBench: Benchmark for Multi-Step Reasoning and Following Procedure",
                          "002_e29f7fe26a944750.txt", "003_0823453c9561335e.txt")]


def test_unreadable_library_file_is_one_line_naming_it(seeds, tmp_path, monkeypatch, capsys):
    lib = tmp_path / "library"
    lib.mkdir()
    (lib / "refs.bib").symlink_to(tmp_path / "moved-away.bib")
    monkeypatch.setenv("RAG_LIBRARY_DIR", str(lib))
    code, _, err = _cli(monkeypatch, capsys, seeds, "papers")
    line = _one_error_line(err)
    assert code == 2 and "library/refs.bib" in line and "no such file" in line


def test_a_looping_link_in_the_library_says_to_remove_it(seeds, tmp_path, monkeypatch, capsys):
    lib = tmp_path / "library"
    lib.mkdir()
    (lib / "a.bib").symlink_to(lib / "b.bib")
    (lib / "b.bib").symlink_to(lib / "a.bib")
    monkeypatch.setenv("RAG_LIBRARY_DIR", str(lib))
    code, _, err = _cli(monkeypatch, capsys, seeds, "papers")
    line = _one_error_line(err)
    assert code == 2 and "library/a.bib" in line and "loops" in line and "chmod" not in line


def test_adding_a_missing_or_binary_file_rejects_it_with_the_reason(seeds, tmp_path, monkeypatch, capsys):
    binary = tmp_path / "scan.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    code, out, err = _cli(monkeypatch, capsys, seeds, "add", "--no-index", str(tmp_path / "nope.bib"), str(binary))
    assert code == 2 and "Traceback" not in err
    assert "nope.bib: REJECTED" in out and "no such file" in out
    assert "scan.csv: REJECTED" in out and "not UTF-8" in out


def test_atom_with_external_or_exploding_entities_is_rejected_and_reads_nothing(tmp_path):
    """XXE (`SYSTEM "file:///etc/passwd"`) and a billion-laughs chain: never expanded, one error."""
    from rag.corpus import formats

    f = DATA / "library" / "entities.atom"
    with pytest.raises(CorpusError) as e:
        formats.parse_path(f, "library/entities.atom", f.name)
    assert str(e.value).startswith("entities.atom:") and "not well-formed XML" in str(e.value)
    assert "root:" not in str(e.value)


def test_a_library_dir_that_is_a_file_is_one_line_and_nothing_is_half_added(seeds, tmp_path, monkeypatch, capsys):
    not_a_dir = tmp_path / "library"
    not_a_dir.write_text("I am a file")
    monkeypatch.setenv("RAG_LIBRARY_DIR", str(not_a_dir))
    code, _, err = _cli(monkeypatch, capsys, seeds, "add", "--no-index", str(DATA / "library" / "papers.csv"))
    line = _one_error_line(err)
    assert code == 2 and str(not_a_dir) in line and "RAG_LIBRARY_DIR" in line
    assert not_a_dir.read_text() == "I am a file" and not list(tmp_path.glob(".tmp-*"))


# --- files that are not regular files, or far too big; a damaged removed.json; bad ids and sources ---------

def _lib_env(tmp_path, seeds):
    return cli_env(tmp_path / "data", seeds, RAG_LIBRARY_DIR=str(tmp_path / "library"))


def test_adding_a_fifo_or_an_endless_device_rejects_it_without_reading(seeds, tmp_path):
    """A named pipe blocks whoever opens it; /dev/zero never ends: neither may be opened or read."""
    fifo, zeros = tmp_path / "piped.bib", tmp_path / "zeros.bib"
    os.mkfifo(fifo)
    zeros.symlink_to("/dev/zero")
    proc = run(["add", "--no-index", str(fifo), str(zeros)], _lib_env(tmp_path, seeds), timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{fifo}: REJECTED" in proc.stdout and f"{zeros}: REJECTED" in proc.stdout
    assert proc.stdout.count("is not a regular file") == 2 and "save the papers to a file" in proc.stdout


def test_a_fifo_in_the_library_is_one_line_naming_it_not_a_hang(seeds, tmp_path):
    (tmp_path / "library").mkdir()
    os.mkfifo(tmp_path / "library" / "stuck.bib")
    proc = run(["papers", "--source", "library"], _lib_env(tmp_path, seeds), timeout=60)
    assert_error(proc, 2, "library/stuck.bib", "not a regular file")


def test_a_file_over_the_size_limit_is_rejected_naming_size_and_limit(seeds, tmp_path, monkeypatch, capsys):
    from rag.corpus.reading import MAX_FILE_BYTES

    huge = tmp_path / "dump.csv"
    with open(huge, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1_000_000)  # sparse: no disk used, and never read
    monkeypatch.setenv("RAG_LIBRARY_DIR", str(tmp_path / "library"))
    code, out, err = _cli(monkeypatch, capsys, seeds, "add", "--no-index", str(huge))
    assert code == 2 and "Traceback" not in err
    assert "dump.csv: REJECTED" in out and "is 201 MB, over the 200 MB limit" in out and "Split" in out


@pytest.mark.parametrize("content", ['[1, "x", null]', '{"a": 1}', '"removed"'])
def test_removed_json_of_the_wrong_shape_is_one_line_naming_it_and_the_fix(seeds, tmp_path, monkeypatch, capsys,
                                                                           content):
    lib = tmp_path / "library"
    lib.mkdir()
    (lib / "removed.json").write_text(content)
    monkeypatch.setenv("RAG_LIBRARY_DIR", str(lib))
    code, _, err = _cli(monkeypatch, capsys, seeds, "papers")
    line = _one_error_line(err)
    assert code == 2 and "library/removed.json" in line and "list of removed papers" in line and "delete it" in line


@pytest.mark.parametrize("ident", ["", "  ", "https://doi.org/", "arXiv:"])
def test_remove_with_an_empty_id_says_so(seeds, tmp_path, monkeypatch, capsys, ident):
    monkeypatch.setenv("RAG_LIBRARY_DIR", str(tmp_path / "library"))
    code, _, err = _cli(monkeypatch, capsys, seeds, "remove", "--no-index", ident)
    line = _one_error_line(err)
    assert code == 2 and "empty id" in line and "seed paper" not in line
    assert not (tmp_path / "library").exists()  # refused before anything was created


def test_papers_from_an_unknown_source_is_an_error_naming_the_known_ones(seeds, monkeypatch, capsys):
    code, _, err = _cli(monkeypatch, capsys, seeds, "papers", "--source", "no-such.bib")
    line = _one_error_line(err)
    assert code == 2 and "'no-such.bib'" in line and "--source seeds" in line and SMALL in line


def test_remove_while_another_index_runs_says_to_run_index_later(seeds, tmp_path, monkeypatch, capsys):
    """The library change stands when the index step is refused; running remove again would find
    no such paper, so the message must send the user to `index`, not back to `remove`."""
    from filelock import FileLock

    lib = tmp_path / "library"
    monkeypatch.setenv("RAG_LIBRARY_DIR", str(lib))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    code, _, _ = _cli(monkeypatch, capsys, seeds, "add", "--no-index", str(DATA / "library" / "refs.bib"))
    assert code == 0
    (tmp_path / "data").mkdir()
    with FileLock(str(tmp_path / "data" / "index.lock")):  # another index run, as far as the lock knows
        code, _, err = _cli(monkeypatch, capsys, seeds, "remove", "2403.01117")
    line = _one_error_line(err)
    assert code == 3 and "is out of the library" in line and "run `python -m rag index`" in line


def test_remove_from_a_read_only_library_names_the_fix_and_changes_nothing(tmp_path):
    from rag.corpus.paper import paper_id_for

    lib, env = tmp_path / "library", cli_env(tmp_path / "data", copy_small_seeds(tmp_path / "seeds"))
    env["RAG_LIBRARY_DIR"] = str(lib)
    added = run(["add", str(DATA / "library" / "papers.jsonl"), "--no-index"], env)
    assert added.returncode == 0, added.stderr
    before = {f.name: f.read_bytes() for f in lib.iterdir()}
    lib.chmod(0o555)
    try:
        heat = paper_id_for("Measuring Urban Heat Islands with Delivery-Bike Thermometers")
        proc = run(["remove", heat, "--no-index"], env, prefix=without_root_override())
        assert_error(proc, EXIT["input"], "cannot write", "RAG_LIBRARY_DIR")
    finally:
        lib.chmod(0o755)
    assert {f.name: f.read_bytes() for f in lib.iterdir()} == before
