"""Passages within the embedder's token limit, on sentence boundaries, losing no words."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hea_rag.chunking import ChunkingParams, chunk_text, split_sentences

SENTENCES = [
    "The Al0.5CoCrFeNi alloy was aged at 700 °C for one day.",
    "As shown in Fig. 2, the hardness rose by 0.5 GPa after aging.",
    "Grains of 2.5 μm formed, e.g. in the SPS samples sintered at 1400 °C.",
    "Smith et al. reported a similar trend for the Cantor alloy.",
    "The yield strength of MoNbVTa0.5Cr reached 2783 MPa at room temperature.",
    "A BCC matrix with 20.45 % of a Laves phase was found by XRD.",
    "Nanoindentation gave 7.3 GPa in the matrix and 11.2 GPa in the precipitates.",
    "The (TiZrHfCr)C carbide kept its hardness of 24.5 GPa up to 1200 °C.",
]
LONG_TEXT = " ".join(SENTENCES * 3)


@pytest.fixture(scope="module")
def count(embedder):
    return embedder.count_tokens


def words(passages: list[str]) -> list[str]:
    return " ".join(passages).split()


@pytest.mark.parametrize("max_tokens", [16, 24, 40, 64, 128, 200])
def test_every_passage_fits(count, max_tokens):
    passages = chunk_text(LONG_TEXT, count, ChunkingParams(max_tokens=max_tokens))
    assert passages
    sizes = [count(p) for p in passages]
    assert max(sizes) <= max_tokens, sizes
    assert words(passages) == LONG_TEXT.split()


def test_small_limit_makes_more_passages(count):
    small = chunk_text(LONG_TEXT, count, ChunkingParams(max_tokens=40))
    large = chunk_text(LONG_TEXT, count, ChunkingParams(max_tokens=200))
    assert len(small) > len(large) >= 2


def test_short_text_is_one_passage(count):
    text = " ".join(SENTENCES[:2])
    assert chunk_text(text, count, ChunkingParams()) == [text]


def test_whitespace_is_collapsed_but_words_kept(count):
    text = "  The CoCrFeMnNi alloy\n\nwas rolled.\tIts strength rose to 900 MPa.  "
    passages = chunk_text(text, count, ChunkingParams())
    assert words(passages) == text.split()


def test_long_single_sentence_is_cut_on_word_boundaries(count):
    sentence = " ".join(f"the CoCrFeNi sample number {n} was annealed at {600 + n} °C" for n in range(40)) + "."
    assert len(split_sentences(sentence)) == 1
    assert count(sentence) > 200
    passages = chunk_text(sentence, count, ChunkingParams(max_tokens=64))
    assert len(passages) > 1
    assert all(count(p) <= 64 for p in passages)
    assert words(passages) == sentence.split()  # cut between words, none lost or split


def test_chunking_is_linear_in_text_length(count):
    """A runaway sentence (bug 8) is counted a bounded number of times over, not once per level
    of a recursive halving: the token counter sees at most 3x the text (sentence, words, pieces)."""
    given: list[int] = []

    def counting(text: str) -> int:
        given.append(len(text))
        return count(text)

    sentence = " ".join(f"the CoCrFeNi sample {n} was annealed at {600 + n} °C" for n in range(3000))
    assert len(split_sentences(sentence)) == 1 and len(sentence) > 100_000
    passages = chunk_text(sentence, counting, ChunkingParams(max_tokens=64))
    assert sum(given) <= 3 * len(sentence), sum(given) / len(sentence)
    assert len(passages) > 100 and all(count(p) <= 64 for p in passages)
    assert words(passages) == sentence.split()


def test_pieces_fit_when_word_counts_do_not_add_up():
    """With a tokenizer whose count of joined words exceeds the sum of their own counts (as
    byte-level BPE can), over-long pieces are halved until they fit."""
    def count(text: str) -> int:  # every word 1 token, every space between words 1 more
        return 2 * len(text.split()) - 1 if text.split() else 0

    sentence = " ".join(f"word{n}" for n in range(200)) + "."
    passages = chunk_text(sentence, count, ChunkingParams(max_tokens=16))
    assert all(count(p) <= 16 for p in passages)
    assert words(passages) == sentence.split()


def test_unbreakable_token_run_is_kept_whole(count):
    blob = "Al0.3CoCrFeNi" * 30  # one "word" longer than the limit: nothing to cut on
    passages = chunk_text(blob, count, ChunkingParams(max_tokens=16))
    assert passages == [blob]


def test_decimals_and_abbreviations_do_not_end_sentences():
    text = " ".join(SENTENCES[:4])
    assert split_sentences(text) == SENTENCES[:4]


def test_weight_and_atomic_percent_do_not_end_sentences():
    text = "The alloy held 3.5 wt.% Cu and 2 at.% Ti after aging. It was then rolled."
    assert split_sentences(text) == [
        "The alloy held 3.5 wt.% Cu and 2 at.% Ti after aging.",
        "It was then rolled.",
    ]


def test_passages_break_only_between_sentences(count):
    # a limit that fits one sentence but never two: each passage must be exactly one sentence
    params = ChunkingParams(max_tokens=max(count(s) for s in SENTENCES) + 2)
    passages = chunk_text(" ".join(SENTENCES), count, params)
    assert passages == SENTENCES
    assert not any(p.endswith(("Fig.", "0.", "e.g.", "et al.")) for p in passages)


def test_overlap_repeats_the_last_sentence(count):
    params = ChunkingParams(max_tokens=60, overlap_sentences=1)
    passages = chunk_text(" ".join(SENTENCES), count, params)
    assert len(passages) >= 3
    for before, after in zip(passages, passages[1:]):
        last = split_sentences(before)[-1]
        assert split_sentences(after)[0] == last


def test_overlap_passages_fit(count):
    first = " ".join(SENTENCES[4:7])[:-1].replace(".", ";") + "."  # one sentence of ~60 tokens
    second = SENTENCES[1]
    limit = count(first) + 2
    assert count(second) > 2  # the two together cannot fit in `limit`
    passages = chunk_text(f"{first} {second}", count, ChunkingParams(limit, overlap_sentences=1))
    assert all(count(p) <= limit for p in passages), ([count(p) for p in passages], limit)


def test_empty_text_has_no_passages(count):
    assert chunk_text("", count, ChunkingParams()) == []
    assert chunk_text("   \n ", count, ChunkingParams()) == []


def test_params_round_trip():
    params = ChunkingParams(max_tokens=128, overlap_sentences=1)
    assert ChunkingParams(**params.as_dict()) == params
    assert ChunkingParams().as_dict() == {"max_tokens": 200, "overlap_sentences": 0}


vocabulary = st.sampled_from(
    ["alloy", "Al0.3CoCrFeNi", "MoNbVTa0.5Cr", "1500", "°C", "2783", "MPa", "strength", "the",
     "was", "annealed", "at", "0.5", "Fig.", "2,", "grains", "(TiZrHfCr)C", "BCC", "FCC", "of",
     "high-entropy", "μm", "20.45", "%", "hardness", "GPa", "and", "e.g.", "i.e.", "et", "al."]
)
sentence = st.lists(vocabulary, min_size=1, max_size=60).map(lambda ws: " ".join(ws) + ".")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(sentence, min_size=1, max_size=12), st.integers(min_value=16, max_value=256))
def test_any_text_fits_and_keeps_words(count, sentences, max_tokens):
    text = " ".join(sentences)
    passages = chunk_text(text, count, ChunkingParams(max_tokens=max_tokens))
    assert all(count(p) <= max_tokens for p in passages)
    assert words(passages) == text.split()
