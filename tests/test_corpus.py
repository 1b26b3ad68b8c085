"""The seed parser on the five real files and on malformed input."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.corpus.listing import load_corpus, paper_id_for, parse_file
from rag.errors import CorpusError

from conftest import SEEDS

UNIQUE_PAPERS = 275  # counted by reading the files: 308 listings, 30 papers listed 2-3 times


@pytest.fixture(scope="module")
def papers():
    return {p.title: p for p in load_corpus(SEEDS)}


def test_every_paper_exactly_once(papers):
    assert len(papers) == UNIQUE_PAPERS
    assert len({p.paper_id for p in papers.values()}) == UNIQUE_PAPERS
    listings = sum(len(parse_file(f)) for f in sorted(SEEDS.glob("*.txt")))
    assert listings == 308


def test_per_file_counts_cover_all_three_layouts():
    counts = {f.name[:3]: len(parse_file(f)) for f in sorted(SEEDS.glob("*.txt"))}
    assert counts == {"000": 8, "001": 13, "002": 88, "003": 80, "004": 119}


def test_merged_paper_keeps_every_source_and_richest_metadata(papers):
    p = papers["Reinforcement Learning Improves Traversal of Hierarchical Knowledge in LLMs"]
    assert len(p.sources) == 3
    assert p.org == "AI-at-Meta Meta AI"
    assert p.date == "2025-11-08"  # one file lists "Nov 8 2" (no year); the dated one wins
    assert p.upvotes == 2


def test_metadata_from_a_listing_fills_a_bare_duplicate(papers):
    p = papers["CLIMB: Curriculum Learning for Infant-inspired Model Building"]
    assert p.authors == 7 and p.date == "2023-11-15"
    assert {s[:3] for s in p.sources} == {"002", "003"}


def test_layout_a_org_line_date_without_year_and_upvotes(papers):
    p = papers["RLP: Reinforcement as a Pretraining Objective"]
    assert p.org == "nvidia NVIDIA" and p.authors is None
    assert p.date is None and p.date_raw == "Sep 26" and p.upvotes == 4


def test_layout_a_paper_without_metadata_between_others(papers):
    p = papers["CurES: From Gradient Analysis to Efficient Curriculum Learning for Reasoning LLMs"]
    assert p.abstract.startswith("Curriculum learning plays a crucial role")
    assert p.authors is None and p.date_raw is None


def test_layout_c_first_title_is_unglued_from_subscribe(papers):
    assert "A Type Theory for Probabilistic and Bayesian Reasoning" in papers
    assert not any(t.startswith("Subscribe") for t in papers)


def test_page_chrome_is_not_a_paper(papers):
    chrome = {"new", "Subscribe", "Daily Papers", "byAK and the research community", "Jan 6", "Aug 5"}
    assert not chrome & set(papers)
    assert all(len(p.abstract) > 200 for p in papers.values())


def test_paper_id_is_stable_and_title_derived():
    assert paper_id_for("Some  Title") == paper_id_for("some title") == paper_id_for("Some Title")
    assert paper_id_for("Some Title") != paper_id_for("Other Title")


ABSTRACT = "We study a thing. " * 20


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "bad.txt"
    f.write_text(text, encoding="utf-8")
    return f


def test_title_without_abstract_names_file_and_line(tmp_path):
    f = _write(tmp_path, f"Daily Papers\n\nA Title\n\n{ABSTRACT}\n\nDangling Title\n")
    with pytest.raises(CorpusError) as e:
        parse_file(f)
    assert (e.value.path, e.value.line) == ("bad.txt", 7)
    assert "no abstract" in str(e.value)


def test_short_abstract_is_an_error_not_a_paper(tmp_path):
    f = _write(tmp_path, "A Title\n\nToo short to be an abstract.\n\nNext Title\n\n" + ABSTRACT)
    with pytest.raises(CorpusError) as e:
        parse_file(f)
    assert e.value.line == 3


def test_bad_date_in_metadata(tmp_path):
    f = _write(tmp_path, f"A Title\n\n{ABSTRACT}\n\n  • 3 authors\n·\nFeb 31, 2024\n")
    with pytest.raises(CorpusError) as e:
        parse_file(f)
    assert e.value.line == 7 and "not a real date" in str(e.value)


def test_metadata_without_date_line(tmp_path):
    f = _write(tmp_path, f"A Title\n\n{ABSTRACT}\n\n  • 3 authors\n·\n")
    with pytest.raises(CorpusError):
        parse_file(f)


def test_parsed_metadata_block(tmp_path):
    f = _write(tmp_path, f"A Title\n\n{ABSTRACT}\n\nSome Lab\n  • 3 authors\n·\nFeb 3, 2024 12\n")
    (p,) = parse_file(f)
    assert (p.org, p.authors, p.date, p.date_raw, p.upvotes) == ("Some Lab", 3, "2024-02-03", "Feb 3, 2024", 12)


def test_non_utf8_file(tmp_path):
    f = tmp_path / "latin.txt"
    f.write_bytes(b"Caf\xe9 Title\n\n" + ABSTRACT.encode())
    with pytest.raises(CorpusError, match="UTF-8"):
        parse_file(f)


def test_empty_seed_dir_names_the_fix(tmp_path):
    with pytest.raises(CorpusError, match="RAG_SEED_DIR"):
        load_corpus(tmp_path)
