"""The user's own papers: each format's parser, the library's add/remove rules, merging and
conflicts, and add -> index -> ask end to end on a small seed set (real MiniLM, real Chroma)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.corpus import formats, library
from rag.corpus.manage import add_files, remove_paper
from rag.corpus.merge import merge_papers
from rag.corpus.paper import Paper, paper_id_for
from rag.errors import CorpusError, InputError

from conftest import DATA, ROOT

LIB = DATA / "library"
GLACIER = "Forecasting Alpine Glacier Melt with Graph Neural Networks over Sensor Meshes"
SCIBENCH = "SciBench: Evaluating College-Level Scientific Problem-Solving Abilities of Large Language Models"


def parse(name: str):
    return formats.parse_path(LIB / name, library.source_name(name), name)[1]


# --- parsers ---------------------------------------------------------------------------------------

def test_bibtex_keeps_authors_year_venue_doi_eprint_url_and_decodes_latex():
    p = {x.title: x for x in parse("refs.bib").papers}
    g = p[GLACIER]
    assert g.author_names == ("Anna Kowalski", "Jonas Müller", "Hiroshi Tanaka") and g.authors == 3
    assert (g.year, g.date_raw, g.date) == (2024, "Mar 2024", None)
    assert g.venue == "Journal of Cryospheric Machine Learning"
    assert (g.doi, g.arxiv_id, g.url) == ("10.5555/jcml.2024.0117", "2403.01117", "https://arxiv.org/abs/2403.01117")
    assert g.categories == ("cs.LG",) and g.kind == "bibtex" and g.sources == ("library/refs.bib",)
    assert g.paper_id == paper_id_for(GLACIER)
    assert "  " not in g.abstract and g.abstract.endswith("across eleven melt seasons.")
    assert p["TideLM: Tokenising Tidal Gauge Records for Sea-Level Language Models"].venue.startswith("Proceedings")


def test_bibtex_percent_in_an_abstract_is_text_not_a_latex_comment():
    sci = next(x for x in parse("refs.bib").papers if x.title == SCIBENCH)
    assert "35.80%. Furthermore" in sci.abstract and sci.abstract.endswith("scientific research and discovery.")


def test_bibtex_latex_decoded_word_by_word_reads_as_decoded_whole():
    """The fast decoder (`bibtex._latex_decoding`) against bibtexparser's own, on values mixing
    accents, macros, math, environments, ties, dashes, quotes and braces: the same text up to
    whitespace (which `clean` folds), and an error where it gives one."""
    import random
    import re

    from bibtexparser.middlewares import LatexDecodingMiddleware

    from rag.corpus.bibtex import _latex_decoding

    words = ["model", "{GSM8K}", 'M{\\"u}ller', "{\\'e}cole", "Stra\\ss e", "\\emph{very good}", "$x^2 + y_i$",
             "$\\alpha$-test", "Fig.~3", "35%", "A\\&B", "---", "pre--post", "``quoted words''", "\\LaTeX\\ rocks",
             "\\url{http://a.b/c_d}", "{\\em emph words}", "\\cite{x}", "\\ldots", "$$display math$$", "x\\\\y",
             "\\begin{itemize} \\item one \\end{itemize}", "{\\l}od{\\'z}", "e.g.\\ this", "{unbalanced"]
    whole, fast, rng = LatexDecodingMiddleware(), _latex_decoding(), random.Random(7)
    for _ in range(400):
        value = "".join(rng.choice(words) + rng.choice([" ", "\n  "]) for _ in range(rng.randint(1, 12))).strip()
        value = re.sub(r"(?<!\\)%", r"\\%", value)  # as _escape_percent leaves it
        (a, err_a), (b, err_b) = (m._transform_python_value_string(value) for m in (whole, fast))
        assert " ".join(a.split()) == " ".join(b.split()) and bool(err_a) == bool(err_b), value
    odd = 'a budget of $5 per M{\\"u}ller run'  # an unpaired $ is read whole, as before
    assert fast._transform_python_value_string(odd) == whole._transform_python_value_string(odd)


def test_bibtex_concatenation_is_a_bad_entry_and_a_crossref_parent_is_not_a_paper():
    """`abstract = absA # "…"` would be stored as that raw text; a @proceedings other entries point
    to has no abstract, and is no reason to reject the file; a # inside braces is text."""
    parsed = parse("strings_crossref.bib")
    assert [p.title for p in parsed.papers] == ["A Child Paper That Inherits Its Year", "A Fine Paper With C# Code"]
    assert "F# compilers" in parsed.papers[1].abstract
    (bad,) = parsed.bad
    assert bad.label == "platy2024" and "concatenation" in bad.problem
    assert any("crossref" in n and "child2024" in n for n in parsed.notes)


def test_atom_entry_fields():
    a = {x.title: x for x in parse("arxiv.xml").papers}
    reef = a["Acoustic Fingerprints of Coral Reef Recovery after Bleaching Events"]  # the title's line break joined
    assert reef.arxiv_id == "2501.04321" and reef.doi == "10.5555/reef.2025.004"
    assert (reef.date, reef.year) == ("2025-01-08", 2025)
    assert reef.author_names == ("Leilani Kahale", "Marco Bianchi") and reef.org == "University of Hawaii"
    assert reef.categories == ("cs.SD", "q-bio.PE") and reef.kind == "atom"
    assert reef.abstract.startswith("Hydrophones on 23 reefs")


def test_jsonl_maps_known_columns_and_notes_the_others():
    parsed = parse("papers.jsonl")
    bees, heat = parsed.papers
    assert bees.doi == "10.5555/apis.2024.77" and bees.org == "University of Ljubljana" and bees.date == "2024-06-14"
    assert bees.author_names == ("Ines Duarte", "Tomas Horvat") and bees.venue == "Apidologie Letters"
    assert heat.arxiv_id == "2309.05555" and heat.year == 2023 and heat.author_names == ("Giulia Rossi", "Paolo Verdi")
    assert parsed.notes and "notes" in parsed.notes[0]


def test_csv_header_is_case_insensitive_and_excel_bom_semicolons_work():
    plain, excel = parse("papers.csv"), parse("excel_bom.csv")
    assert [p.title for p in plain.papers] == [p.title for p in excel.papers]
    slump = plain.papers[0]
    assert slump.title.startswith("Permafrost") and slump.doi == "10.5555/perma.2024.3" and slump.year == 2024
    assert not excel.bad and "Rating" in excel.notes[0]


def test_csv_cells_with_doubled_quotes_commas_and_newlines_read_as_written():
    """RFC 4180 / Excel: a quote inside a quoted cell is doubled, and a cell may hold the
    delimiter and line breaks. The header has no quotes, so none of this can be sniffed from it."""
    from rag.corpus.tabular import parse_csv

    abstract = 'We present "Wombatnet", a model for tables,\nand show it beats baselines on 12 benchmarks.'
    quoted = '"' + abstract.replace('"', '""') + '"'
    parsed = parse_csv(f'title,abstract\n"The ""Wombatnet"" Model, for Tables",{quoted}\n', "w.csv", "w.csv")
    assert not parsed.bad
    (paper,) = parsed.papers
    assert paper.title == 'The "Wombatnet" Model, for Tables' and paper.abstract.startswith('We present "Wombatnet"')


def test_more_listing_pages_in_the_seed_layout():
    papers = parse("more_daily_papers.txt").papers
    assert [p.title for p in papers] == ["Sourdough Starter Microbiomes Converge Within Two Weeks",
                                         "Bicycle Lane Width and Overtaking Distance: A Sensor Study"]
    assert (papers[0].org, papers[0].authors, papers[0].date, papers[0].upvotes) == ("Fermentation Lab", 5, "2025-03-03", 7)
    assert [p.title for p in parse("bom_listing.txt").papers] == [p.title for p in papers]


# --- bad entries and bad files ----------------------------------------------------------------------

def test_bad_bibtex_entries_are_each_named_and_do_not_hide_the_good_ones():
    parsed = parse("refs_bad.bib")
    assert [p.title for p in parsed.papers] == ["Lichen Growth Rings as a Proxy for Rock-Surface Exposure Ages",
                                                 "Seabird Colony Counts from Drone Thermal Imagery"]
    (missing, broken) = parsed.bad
    assert (missing.where, missing.label, missing.problem) == ("line 11", "noabstract2021", "no abstract")
    assert broken.where == "line 17" and broken.label == "broken2020" and "not closed" in broken.problem
    assert "refs_bad.bib: line 17 (broken2020)" in str(broken) and "braces" in str(broken)


def test_a_duplicate_bibtex_key_asks_for_another_key_not_for_braces():
    from rag.corpus.bibtex import parse_bibtex

    abstract = "A long enough abstract about glaciers, sensors and graph networks, for the check."
    text = "".join(f"@article{{same,\n title={{Paper {n}}},\n abstract={{{abstract}}}\n}}\n" for n in (1, 2))
    parsed = parse_bibtex(text, "dup.bib", "dup.bib")
    (dup,) = parsed.bad
    assert dup.label == "same" and "another key" in str(dup) and "braces" not in str(dup)
    assert [p.title for p in parsed.papers] == ["Paper 1"]


def test_bad_jsonl_lines():
    bad = [str(b) for b in parse("papers_bad.jsonl").bad]
    assert len(bad) == 3
    assert "line 2" in bad[0] and "not valid JSON" in bad[0]
    assert "line 3 (No Abstract Here): no abstract" in bad[1]
    assert "line 4" in bad[2] and "not an object" in bad[2]


def test_jsonl_objects_or_lists_where_text_belongs_are_bad_entries_not_stored_as_reprs():
    abstract = "An abstract long enough to pass the minimum length check of fifty characters."
    lines = [{"title": {"en": "Nested", "fr": "Imbriqué"}, "abstract": abstract},
             {"title": ["Array", "Title"], "abstract": abstract},
             {"title": "Good Title", "abstract": {"text": abstract}},
             {"title": "Fine Title", "abstract": abstract, "authors": ["A. One", "B. Two"], "year": 2024}]
    parsed = formats.parse_bytes("\n".join(json.dumps(x) for x in lines).encode(), "jsonl", "library/n.jsonl", "n.jsonl")
    assert [p.title for p in parsed.papers] == ["Fine Title"] and parsed.papers[0].authors == 2
    assert [b.where for b in parsed.bad] == ["line 1", "line 2", "line 3"]
    assert all("not text" in b.problem for b in parsed.bad)


@pytest.mark.parametrize("name, words", [
    ("arxiv_truncated.atom", ["arxiv_truncated.atom:27", "not well-formed XML", "save the complete"]),
    ("latin1.csv", ["latin1.csv:2", "not UTF-8", "re-save the file as UTF-8"]),
    ("no_abstract_column.csv", ["no_abstract_column.csv:1", "no 'abstract' column", "title and abstract"]),
])
def test_a_bad_file_is_one_error_naming_it_and_the_fix(name, words):
    with pytest.raises(CorpusError) as e:
        parse(name)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_unknown_extension_names_the_accepted_ones(tmp_path):
    f = tmp_path / "refs.ris"
    f.write_text("TY  - JOUR\n")
    with pytest.raises(CorpusError, match=r"unknown file type '\.ris'.*\.bib"):
        formats.parse_path(f, "x", str(f))


# --- merging ----------------------------------------------------------------------------------------

def _paper(title, abstract="An abstract long enough to be one, about nothing at all in particular.", src="a", **kw):
    return Paper(paper_id_for(title), title, abstract, sources=(src,), **kw)


def test_merge_by_arxiv_id_or_doi_even_when_titles_differ():
    merged = merge_papers([_paper("Deep Nets", src="seed.txt"), _paper("Deep Nets (extended)", src="library/a.bib",
                                                                       arxiv_id="2401.00001"),
                           _paper("Deep nets, v2", src="library/b.csv", arxiv_id="2401.00001", doi="10.1/x"),
                           _paper("Another Name", src="library/c.jsonl", doi="10.1/x")])
    # "Deep Nets" shares neither an id nor its exact title with the others: a paper of its own
    assert [len(p.sources) for p in merged.papers] == [1, 3]
    assert merged.papers[1].doi == "10.1/x" and merged.papers[1].arxiv_id == "2401.00001"


def test_a_title_with_invisible_characters_is_the_same_paper_not_a_new_one():
    seed = _paper("AsyncFlow: An Asynchronous Streaming RL Framework", src="seed.txt")
    copy = _paper("Asy\u200bncFlow: An Asynchronous Streaming RL Frame\ufeffwork", src="library/x.jsonl")
    merged = merge_papers([seed, copy])
    assert len(merged.papers) == 1 and merged.papers[0].sources == ("library/x.jsonl", "seed.txt")


def test_same_title_with_different_arxiv_ids_stays_two_papers_with_two_ids():
    merged = merge_papers([_paper("Survey", arxiv_id="2401.00001"), _paper("Survey", arxiv_id="2402.00002")])
    assert len(merged.papers) == 2 and len({p.paper_id for p in merged.papers}) == 2


def test_seed_occurrence_wins_and_a_different_abstract_is_a_recorded_conflict():
    seed = _paper("Deep Nets", src="000_seed.txt")
    lib = _paper("Deep Nets", "A quite different abstract that says other things about deep nets and more.",
                 src="library/a.bib", arxiv_id="2401.00001", venue="NeurIPS")
    (p,) = merge_papers([lib, seed]).papers
    assert p.abstract == seed.abstract and p.arxiv_id == "2401.00001" and p.venue == "NeurIPS"
    assert p.sources == ("000_seed.txt", "library/a.bib")
    (c,) = p.conflicts
    assert (c.kept, c.other, c.other_abstract) == ("000_seed.txt", "library/a.bib", lib.abstract)


def test_abstracts_differing_only_in_spacing_and_punctuation_are_no_conflict():
    a = _paper("T", "Models, we find, are “good” at this  task -- mostly.", src="x.txt")
    b = _paper("T", "Models we find are \"good\" at this task - mostly", src="library/y.bib")
    assert merge_papers([a, b]).papers[0].conflicts == ()


def test_seed_paper_hashes_are_unchanged_by_the_new_fields():
    p = _paper("T")
    assert p.content_hash == Paper(p.paper_id, "T", p.abstract, sources=("other.txt",)).content_hash
    assert p.content_hash != Paper(p.paper_id, "T", p.abstract, sources=("library/x.bib",)).content_hash


# --- the library: add / remove ------------------------------------------------------------------------

def test_a_file_with_bad_entries_is_rejected_whole_unless_skip_bad(small_settings):
    report = add_files([LIB / "refs_bad.bib"], small_settings)
    (f,) = report.files
    assert f.status == "rejected" and f.papers == 2 and len(f.bad) == 2 and "--skip-bad" in f.reason
    assert library.library_files(small_settings) == [] and not report.changed
    (f,) = add_files([LIB / "refs_bad.bib"], small_settings, skip_bad=True).files
    assert f.status == "added" and len(f.new) == 2 and len(f.bad) == 2
    titles = {p.title for p in library.load_all(small_settings)}
    assert "Seabird Colony Counts from Drone Thermal Imagery" in titles and "A Paper Without Its Abstract" not in titles


def test_each_file_is_all_or_nothing_and_good_files_still_go_in(small_settings):
    report = add_files([LIB / "papers.csv", LIB / "latin1.csv", LIB / "arxiv_truncated.atom", LIB / "arxiv.xml"],
                       small_settings)
    assert [f.status for f in report.files] == ["added", "rejected", "rejected", "added"]
    assert "not UTF-8" in report.files[1].reason and "not well-formed" in report.files[2].reason
    assert [f.name for f in library.library_files(small_settings)] == ["arxiv.xml", "papers.csv"]
    assert (library.library_dir(small_settings) / "arxiv.xml").read_bytes() == (LIB / "arxiv.xml").read_bytes()
    assert not [f for f in library.library_dir(small_settings).iterdir() if f.name.startswith(".tmp")]


def test_duplicates_across_files_are_merged_and_counted(small_settings):
    report = add_files([LIB / "refs.bib", LIB / "arxiv.xml"], small_settings)
    bib, atom = report.files
    assert sorted(bib.new) == [GLACIER, "TideLM: Tokenising Tidal Gauge Records for Sea-Level Language Models"]
    assert bib.merged == [SCIBENCH]  # a seed paper: same abstract, so no conflict
    assert atom.merged == [GLACIER] and not bib.conflicts and not atom.conflicts
    glacier = next(p for p in library.load_all(small_settings) if p.title == GLACIER)
    assert glacier.sources == ("library/arxiv.xml", "library/refs.bib")
    assert glacier.date == "2024-03-02" and glacier.authors == 3  # the Atom's full date, the .bib's three authors


def test_a_conflicting_abstract_is_reported_not_resolved(small_settings, capsys, monkeypatch):
    (f,) = add_files([LIB / "conflict.jsonl"], small_settings).files
    assert f.status == "added" and f.merged == [SCIBENCH]
    assert len(f.conflicts) == 1 and "library/conflict.jsonl" in f.conflicts[0] and "kept the one from 00" in f.conflicts[0]
    sci = next(p for p in library.load_all(small_settings) if p.title == SCIBENCH)
    assert sci.abstract.startswith("Recent advances") and sci.conflicts[0].other_abstract.startswith("A different")
    _use(monkeypatch, small_settings)
    from rag.cli import main

    assert main(["papers", "--json", "--source", "library"]) == 0
    out, err = capsys.readouterr()
    (listed,) = json.loads(out)
    assert listed["conflicts"][0]["other"] == "library/conflict.jsonl" and "different abstract" in err


def test_readding_the_same_file_changes_nothing(small_settings):
    add_files([LIB / "refs.bib"], small_settings)
    before = sorted((f.name, f.stat().st_mtime_ns) for f in library.library_dir(small_settings).iterdir())
    report = add_files([LIB / "refs.bib"], small_settings)
    assert report.files[0].status == "unchanged" and not report.changed
    assert sorted((f.name, f.stat().st_mtime_ns) for f in library.library_dir(small_settings).iterdir()) == before


def test_a_different_file_of_the_same_name_replaces_the_copy_and_keeps_the_earlier_one(small_settings, tmp_path):
    add_files([LIB / "refs.bib"], small_settings)
    lib = library.library_dir(small_settings)
    earlier = (lib / "refs.bib").read_bytes()
    edited = tmp_path / "refs.bib"
    edited.write_bytes(earlier.split(b"@", 2)[0] + b"@" + earlier.split(b"@", 2)[1])  # only the first entry kept
    (f,) = add_files([edited], small_settings).files
    assert f.status == "replaced" and (lib / "refs.bib").read_bytes() == edited.read_bytes()
    kept = Path(f.previous)
    assert kept.name == "refs.bib" and ".previous" in kept.parts and kept.read_bytes() == earlier  # nothing is lost
    assert len(f.dropped) == 2 and all(t in {p.title for p in parse("refs.bib").papers} for t in f.dropped)
    assert str(kept) in " ".join(f.notes)
    assert [p.name for p in library.library_files(small_settings)] == ["refs.bib"]
    assert all(".previous" not in s for p in library.load_all(small_settings) for s in p.sources)  # hidden: not read
    (back,) = add_files([kept], small_settings).files  # the undo the note names
    assert back.status == "replaced" and (lib / "refs.bib").read_bytes() == earlier and not back.dropped
    assert Path(back.previous).read_bytes() == edited.read_bytes() and kept.read_bytes() == earlier  # both kept


def test_remove_by_arxiv_id_doi_or_paper_id_and_a_seed_paper_cannot_be_removed(small_settings):
    add_files([LIB / "refs.bib", LIB / "papers.jsonl"], small_settings)
    with pytest.raises(InputError, match="seed paper.*only papers you added.*library/refs.bib lists it too"):
        remove_paper(paper_id_for(SCIBENCH), small_settings)  # and the user's copy is named
    with pytest.raises(InputError, match="no paper has"):
        remove_paper("2999.99999", small_settings)
    assert remove_paper("arXiv:2403.01117", small_settings).title == GLACIER
    assert remove_paper("https://doi.org/10.5555/APIS.2024.77", small_settings).deleted == []
    heat = paper_id_for("Measuring Urban Heat Islands with Delivery-Bike Thermometers")
    assert remove_paper(heat, small_settings).deleted == ["library/papers.jsonl"]  # nothing left in it
    titles = {p.title for p in library.load_all(small_settings)}
    assert GLACIER not in titles and "TideLM: Tokenising Tidal Gauge Records for Sea-Level Language Models" in titles
    (f,) = add_files([LIB / "refs.bib"], small_settings).files  # unchanged file, but its removed paper returns
    assert f.restored == [GLACIER] and GLACIER in {p.title for p in library.load_all(small_settings)}


def test_removing_one_of_two_same_titled_papers_keeps_the_other_and_its_file(small_settings, tmp_path):
    twins = tmp_path / "twins.bib"
    twins.write_text("".join(f"@article{{t{n},\n  title = {{Attention Is Not Enough}},\n  year = {{2024}},\n"
                             f"  doi = {{10.{n}111/twin}},\n  abstract = {{Twin number {n} studies attention in "
                             f"setting {n}, with results on three benchmarks.}},\n}}\n" for n in (1, 2)))
    add_files([twins], small_settings)
    assert remove_paper("10.1111/twin", small_settings).deleted == []  # the file still holds the other
    left = [p for p in library.load_all(small_settings) if p.title == "Attention Is Not Enough"]
    assert [p.doi for p in left] == ["10.2111/twin"]
    add_files([LIB / "refs.bib"], small_settings)  # an unrelated file: restores nothing
    assert [p.doi for p in library.load_all(small_settings) if p.title == "Attention Is Not Enough"] == ["10.2111/twin"]


def test_papers_source_filter(small_settings):
    add_files([LIB / "papers.csv"], small_settings)
    papers = library.load_all(small_settings)
    assert len(library.select(papers, "library")) == 2
    assert len(library.select(papers, "seeds")) == 13
    assert len(library.select(papers, "papers.csv")) == len(library.select(papers, "library/papers.csv")) == 2
    assert len(library.select(papers, "001_e9ec3acac07436bd.txt")) == 13


# --- end to end: add -> index -> ask -> remove ---------------------------------------------------------

def _use(monkeypatch, settings):
    """Point the CLI's settings (env) at these temp dirs."""
    from rag.settings import get_settings

    for key, value in (("SEED_DIR", settings.seed_dir), ("DATA_DIR", settings.data_dir),
                       ("LIBRARY_DIR", settings.library_dir)):
        monkeypatch.setenv(f"RAG_{key}", str(value))
    get_settings.cache_clear()


def test_add_index_ask_readd_remove(small_settings, monkeypatch, capsys):
    import rag
    from rag.cli import main

    _use(monkeypatch, small_settings)
    assert main(["index"]) == 0
    assert main(["add", str(LIB / "refs.bib"), str(LIB / "latin1.csv")]) == 2  # one file rejected
    out, err = capsys.readouterr()
    assert "refs.bib: added as library/refs.bib — 3 papers: 2 new, 1 duplicates merged" in out
    assert "latin1.csv: REJECTED" in out and "added 2, updated 1, removed 0, unchanged 12" in err

    answer = rag.ask("How much did the graph neural network reduce glacier melt forecast error?",
                     backend="extractive", settings=small_settings)
    assert not answer.abstained and answer.citations[0].title == GLACIER
    c = answer.citations[0]
    assert (c.arxiv_id, c.doi, c.sources) == ("2403.01117", "10.5555/jcml.2024.0117", "library/refs.bib")
    assert "31 percent" in c.abstract and GLACIER in answer.text

    assert main(["add", "--json", str(LIB / "refs.bib")]) == 0  # the same file again: nothing to embed
    again = json.loads(capsys.readouterr().out)
    assert again["files"][0]["status"] == "unchanged"
    assert again["index"]["chunks_embedded"] == 0 and again["index"]["unchanged"] == 15

    assert main(["remove", "2403.01117"]) == 0
    assert "removed 1, unchanged 14" in capsys.readouterr().err
    hits = rag.search("glacier melt forecasting graph neural network sensor mesh", k=5, settings=small_settings)
    assert GLACIER not in [h.title for h in hits]


def test_a_year_or_month_from_a_bibtex_entry_meets_a_date_filter_over_that_year_or_month(small_settings):
    import rag
    from rag.index.build import build_index
    from rag.query.retrieval import Filters

    add_files([LIB / "refs.bib"], small_settings)  # TideLM gives year = {2023}; the glacier paper 2024, mar
    build_index(small_settings)
    tide, glacier = "TideLM: Tokenising Tidal Gauge Records for Sea-Level Language Models", GLACIER

    def found(date_from, date_to):
        hits = rag.search("tidal gauge sea level glacier melt", k=20, settings=small_settings,
                          filters=Filters(date_from=date_from, date_to=date_to))
        return {h.title for h in hits} & {tide, glacier}

    assert found("2023", "2023") == {tide}
    assert found("2023-06-01", "2023-06-30") == {tide}  # the year may be June's: not hidden
    assert found("2024-03", "2024-03") == found("2024-03-15", None) == {glacier}
    assert found("2024-04-01", None) == set() and found(None, "2022-12-31") == set()


def test_a_running_process_finds_papers_another_process_added_and_indexed(small_settings):
    """The page is one long-lived process; `rag add` in a terminal indexes beside it. Its dense
    search must see the new chunks too, not the graph it loaded before (`store.reopen`)."""
    import os
    import subprocess
    import sys

    import rag
    from rag.index.build import build_index

    build_index(small_settings)
    query = "tidal gauge records and sea level"
    assert "TideLM" not in rag.search(query, k=1, settings=small_settings, mode="dense")[0].title  # graph loaded
    env = {**os.environ, "RAG_DATA_DIR": str(small_settings.data_dir), "RAG_SEED_DIR": str(small_settings.seed_dir),
           "RAG_LIBRARY_DIR": str(small_settings.library_dir)}
    run = subprocess.run([sys.executable, "-m", "rag", "add", str(LIB / "refs.bib")], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert rag.search(query, k=1, settings=small_settings, mode="dense")[0].title.startswith("TideLM")


def test_a_library_file_whose_name_is_not_utf8_is_indexed_and_named_escaped(small_settings):
    """Copied in by hand from an old system: 'caf\\xe9.csv' (Latin-1 bytes). It must not stop indexing."""
    import os

    import rag
    from rag.index.build import build_index

    lib = library.library_dir(small_settings)
    lib.mkdir(parents=True)
    shutil.copy(LIB / "papers.csv", lib / os.fsdecode(b"caf\xe9.csv"))
    assert build_index(small_settings).papers == 15
    (hit,) = rag.search("volunteer rain gauges flash flood nowcasts", k=1, settings=small_settings)
    assert hit.meta["sources"] == "library/caf\\xe9.csv"
    assert build_index(small_settings).chunks_embedded == 0  # and the next run is a no-op


def test_a_library_file_name_with_a_newline_or_terminal_escape_is_shown_escaped(small_settings):
    lib = library.library_dir(small_settings)
    lib.mkdir(parents=True)
    shutil.copy(LIB / "papers.csv", lib / "x\nfiles: forged.txt\x1b[31m.csv")
    sources = {s for p in library.load_all(small_settings) for s in p.sources if s.startswith("library/")}
    assert sources == {"library/x\\x0afiles: forged.txt\\x1b[31m.csv"}


def test_adding_again_indexes_a_file_whose_index_step_was_refused(small_settings, monkeypatch, capsys):
    """`add` copies, then another index run holds the lock and the index step is refused (exit 3);
    the advice is "run this again", so the second `add` of the same file must index it."""
    import rag
    from rag.cli import main

    _use(monkeypatch, small_settings)
    assert main(["index"]) == 0
    assert main(["add", "--no-index", str(LIB / "refs.bib")]) == 0  # the copy that got in before the refusal
    capsys.readouterr()
    assert main(["add", str(LIB / "refs.bib")]) == 0
    out, err = capsys.readouterr()
    assert "already in the library as library/refs.bib" in out and "nothing changed" not in out
    assert "added 2, updated 1, removed 0, unchanged 12" in err
    hits = rag.search("glacier melt forecasting graph neural network sensor mesh", k=3, settings=small_settings)
    assert hits[0].title == GLACIER


def _many_papers(tmp_path, n: int):
    """A CSV of n distinct papers, and their ids."""
    titles = [f"Paper Number {i} on Lock Contention in Shared Folders" for i in range(n)]
    f = tmp_path / "many.csv"
    f.write_text("title,abstract\n" + "".join(f"{t},An abstract long enough to count: it describes paper {i} "
                                              "and nothing else of note.\n" for i, t in enumerate(titles)))
    return f, [paper_id_for(t) for t in titles]


def test_concurrent_removes_each_record_their_paper(small_settings, tmp_path):
    """Ten removes at once (each a read-modify-write of removed.json): none may lose another's update."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    f, ids = _many_papers(tmp_path, 11)
    add_files([f], small_settings)
    start = Barrier(10)

    def remove(ident):
        start.wait()
        return remove_paper(ident, small_settings).paper_id

    with ThreadPoolExecutor(10) as pool:
        assert sorted(pool.map(remove, ids[:10])) == sorted(ids[:10])
    assert sorted(r["paper_id"] for r in library.removed_papers(small_settings)) == sorted(ids[:10])
    assert [p.paper_id for p in library.load_all(small_settings) if p.in_library] == [ids[10]]


def test_a_library_lock_held_too_long_is_one_clear_error(small_settings, tmp_path, monkeypatch):
    from filelock import FileLock

    f, ids = _many_papers(tmp_path, 2)
    add_files([f], small_settings)
    monkeypatch.setattr(library, "LOCK_TIMEOUT_S", 0.2)
    with FileLock(str(library.library_dir(small_settings) / library.LOCK)):  # another add or remove, stuck
        with pytest.raises(library.LibraryBusyError, match=r"another add or remove has held .*\.lock.*run this again"):
            remove_paper(ids[0], small_settings)
    assert library.removed_papers(small_settings) == []


def test_cli_remove_of_a_seed_paper_is_exit_2_with_one_line(small_settings, monkeypatch, capsys):
    from rag.cli import main

    _use(monkeypatch, small_settings)
    assert main(["remove", "--no-index", paper_id_for(SCIBENCH)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is a seed paper" in err


def test_tests_never_touch_the_projects_library():
    from rag.settings import Settings

    assert Settings().library_dir.resolve() != (ROOT / "library").resolve()


# --- the page's rendering of where a paper came from -----------------------------------------------

def test_source_card_links_only_well_formed_ids_and_escapes_them():
    from rag.answer.types import Citation
    from ui import render

    c = Citation(1, "p1", "T", "e", arxiv_id="2403.01117", doi="10.5555/a<b>", url="javascript:alert(1)")
    html = render._card_meta(c)
    assert 'href="https://arxiv.org/abs/2403.01117"' in html and 'href="https://doi.org/10.5555/a&lt;b&gt;"' in html
    assert "javascript:" not in html and "<b>" not in html
    assert "href" not in render._card_meta(Citation(1, "p1", "T", "e", arxiv_id="../../evil"))


def test_upload_report_names_files_not_temp_paths(small_settings, tmp_path):
    from ui import render

    upload = tmp_path / "gradio-tmp" / "latin1.csv"
    upload.parent.mkdir()
    shutil.copy(LIB / "latin1.csv", upload)
    html = render.added_html(add_files([upload, LIB / "refs.bib"], small_settings))
    assert "latin1.csv: rejected, nothing added" in html and "gradio-tmp" not in html
    assert "refs.bib: added" in html and "2 new, 1 merged" in html and f"<li>{GLACIER}</li>" in html


def test_the_same_file_twice_in_one_batch_is_added_once(small_settings):
    report = add_files([LIB / "papers.csv", LIB / "papers.csv"], small_settings)
    assert [f.status for f in report.files] == ["added", "unchanged"] and report.files[0].merged == []
