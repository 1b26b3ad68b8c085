"""Chunks fit MiniLM's window and lose no text."""

from __future__ import annotations

import pytest

from rag.index.chunking import chunk_paper, count_tokens, split_sentences
from rag.corpus.listing import Paper, load_corpus
from rag.index.embedding import MAX_WORD_PIECES, TooLongError, get_minilm

from conftest import SEEDS


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(SEEDS)


def test_every_word_of_every_abstract_is_in_some_chunk(corpus):
    for p in corpus:
        chunks = chunk_paper(p, 180, 1)
        covered = " ".join(c.text for c in chunks).split()
        assert set(p.abstract.split()) <= set(covered), p.title
        # windows start in order and overlap by at most one sentence: nothing skipped between them
        assert "".join(c.text for c in chunks).replace(" ", "").startswith(p.abstract.split()[0])


def test_chunks_fit_the_token_budget_and_minilm_window(corpus):
    engine = get_minilm()
    for p in corpus:
        for c in chunk_paper(p, 180, 1):
            assert count_tokens(c.embed_text(p.title)) <= 181
            assert engine.word_pieces(c.embed_text(p.title)) <= MAX_WORD_PIECES


def test_long_abstracts_become_overlapping_windows(corpus):
    multi = [chunk_paper(p, 180, 1) for p in corpus]
    multi = [cs for cs in multi if len(cs) > 1]
    assert len(multi) > 100
    for cs in multi:
        for a, b in zip(cs, cs[1:]):
            a_sents, b_sents = split_sentences(a.text), split_sentences(b.text)
            # one sentence of overlap, unless repeating it would leave no room for a new one
            assert a_sents[-1] == b_sents[0] or a_sents[-1] not in b_sents
            assert b_sents[-1] not in a_sents  # every window brings something new


def test_a_sentence_longer_than_a_window_is_cut_not_dropped():
    long_sentence = " ".join(f"word{i}" for i in range(400)) + "."
    p = Paper("x", "T", long_sentence)
    chunks = chunk_paper(p, 120, 1)
    assert len(chunks) > 2
    assert " ".join(c.text for c in chunks).split() == long_sentence.split()


def test_a_window_of_few_tokens_but_many_word_pieces_is_halved_until_it_fits():
    """A dozen URLs: few cl100k tokens, over MiniLM's 256 word pieces. It must index, not stop
    the index run; every word stays in some chunk, and every chunk fits MiniLM."""
    from rag.index.embedding import fits_window

    urls = " ".join(f"https://github.com/org{i}/repo_{i}-x/blob/v{i}.{i}/src/mod_{i}.py#L{i}0-L{i}9" for i in range(12))
    p = Paper("u", "Twelve Tools", f"We release {urls} as open source. The tools parse logs.")
    engine = get_minilm()
    assert max(engine.word_pieces(c.embed_text(p.title)) for c in chunk_paper(p, 200, 1)) > MAX_WORD_PIECES
    chunks = chunk_paper(p, 200, 1, fits_window)
    assert all(engine.word_pieces(c.embed_text(p.title)) <= MAX_WORD_PIECES for c in chunks)
    assert " ".join(c.text for c in chunks).split() == p.abstract.split()


def test_a_title_longer_than_a_chunk_is_cut_in_the_chunks_only():
    from rag.index.chunking import TITLE_TOKENS

    title = "大規模言語モデルの推論能力に関する包括的な研究と評価" * 12  # hundreds of tokens
    p = Paper("t", title, "We study reasoning in large language models. " * 6)
    chunks = chunk_paper(p, 180, 1)  # no error asking for RAG_CHUNK_TOKENS above its bound
    first_line = chunks[0].embed_text(p.title).split("\n")[0]
    assert count_tokens(first_line) <= TITLE_TOKENS and p.title.startswith(first_line[:-1])
    assert chunks[0].embed_text("Short Title").startswith("Short Title\n")  # ordinary titles whole


def test_chunk_ids_are_deterministic(corpus):
    p = corpus[0]
    assert [c.chunk_id for c in chunk_paper(p, 180, 1)] == [c.chunk_id for c in chunk_paper(p, 180, 1)]
    assert chunk_paper(p, 180, 1)[0].chunk_id == f"{p.paper_id}:0"


def test_sentence_split_keeps_abbreviations_together():
    text = "We use e.g. GPT-4 and other models. Results improve by 2.5 points. Done!"
    assert split_sentences(text) == ["We use e.g. GPT-4 and other models.", "Results improve by 2.5 points.", "Done!"]


def test_embedder_refuses_to_truncate():
    with pytest.raises(TooLongError, match="RAG_CHUNK_TOKENS"):
        get_minilm().embed(["token " * 300])


def test_embeddings_tell_texts_apart():
    v = get_minilm().embed(["reinforcement learning for language model reasoning",
                            "RL improves LLM reasoning", "a recipe for sourdough bread"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
    assert abs(float(v[0] @ v[0]) - 1.0) < 1e-4
