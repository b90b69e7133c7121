"""BM25 over postings (hea_rag.bm25, hea_rag.postings) against SQLite FTS5's own bm25() on the
same rows, and the same rows cut into segments scoring exactly as one."""

from __future__ import annotations

import random
import sqlite3

import numpy as np
import pytest

from hea_rag.bm25 import best_rows, fts_tokens
from hea_rag.lexical import tokenize
from hea_rag.postings import Postings, build
from hea_rag.store import SCHEMA

WORDS = ("hardness yield strength ductility grain boundary annealing phase fcc bcc laves sigma "
         "oxidation creep fatigue corrosion twinning dislocation precipitate carbide").split()
ALLOYS = ["CoCrFeMnNi", "Al0.3CoCrFeNi", "MoNbTaW", "TiZrNbHfTa", "CrMoNbTa0.5V"]


def texts(count: int, seed: int) -> list[str]:
    """Invented abstracts: every one says `alloy` (more than half the rows: the floor idf), some
    say `entropy` (about half), and a few rare words and formulas."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        words = rng.sample(WORDS, rng.randint(2, 6)) + ["alloy"] * rng.randint(1, 3)
        words += ["high-entropy"] * (rng.random() < 0.5) + [rng.choice(ALLOYS)] * (rng.random() < 0.3)
        words += [f"{rng.randint(100, 2000)}mpa"] * (rng.random() < 0.2)
        rng.shuffle(words)
        rows.append(" ".join(words))
    return rows


def as_postings(rows: list[tuple[int, str]]) -> Postings:
    arrays, spans = build(rows)
    return Postings(arrays, lambda terms: {t: spans[t] for t in terms if t in spans})


def fts5_best(rows: list[tuple[int, str]], tokens: list[str], limit: int) -> list[tuple[int, float]]:
    """FTS5's ranking of the rows, in a real SQLite table declared as the index declares it."""
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO papers_fts (rowid, tokens) VALUES (?, ?)", rows)
    query = " OR ".join('"' + t + '"' for t in dict.fromkeys(tokens))
    return db.execute("SELECT rowid, -bm25(papers_fts) AS s FROM papers_fts WHERE papers_fts MATCH ? "
                      "ORDER BY s DESC, rowid LIMIT ?", (query, limit)).fetchall()


ROWS = [(i + 1, " ".join(tokenize(text))) for i, text in enumerate(texts(400, 1))]
QUERIES = ["hardness of CoCrFeMnNi after annealing", "alloy", "high-entropy alloy creep",
           "grain boundary twinning in Al0.3CoCrFeNi", "laves phase MoNbTaW 1200mpa", "alloy high-entropy",
           "tungsten"]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("limit", [5, 50, 1000])
def test_scores_and_ranking_are_fts5s(query, limit):
    tokens = tokenize(query)
    expected = fts5_best(ROWS, tokens, limit)
    found = best_rows([as_postings(ROWS)], tokens, limit)
    assert len(found) == len(expected)
    assert np.allclose([s for _, s in found], [s for _, s in expected], rtol=1e-5)
    # the same rows in the same order, but for rows FTS5 and float32 tie differently
    for (row, score), (fts_row, fts_score) in zip(found, expected):
        assert row == fts_row or abs(score - fts_score) < 1e-5 * abs(fts_score)


def test_floor_idf_terms_fill_the_list_when_few_rows_hold_others():
    """`alloy` is in every row (floor idf), `tungsten` in none: rows holding only `alloy` still
    come back, ranked by length, as FTS5 returns them."""
    tokens = tokenize("tungsten alloy")
    found = best_rows([as_postings(ROWS)], tokens, 20)
    assert len(found) == 20 and all(0 < s < 1e-5 for _, s in found)
    assert [row for row, _ in found] == [row for row, _ in fts5_best(ROWS, tokens, 20)]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("limit", [3, 50, 1000])
def test_rows_cut_into_segments_score_exactly_as_one(query, limit):
    cuts = [0, 7, 150, 151, 333, len(ROWS)]
    segments = [as_postings(ROWS[a:b]) for a, b in zip(cuts, cuts[1:])]
    tokens = tokenize(query)
    assert best_rows(segments, tokens, limit) == best_rows([as_postings(ROWS)], tokens, limit)


def test_rows_holding_no_query_term_are_not_returned_and_empty_queries_find_nothing():
    found = best_rows([as_postings(ROWS)], tokenize("creep"), 1000)
    holding = {row for row, text in ROWS if "creep" in fts_tokens(text)}
    assert {row for row, _ in found} == holding
    assert best_rows([as_postings(ROWS)], [], 10) == []
    assert best_rows([as_postings([])], tokenize("creep"), 10) == []
