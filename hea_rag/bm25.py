"""BM25 over every segment's postings (hea_rag.postings), with corpus-wide statistics.

The formula is FTS5's (k1 = 1.2, b = 0.75, idf = log((N - n + 0.5) / (n + 0.5)) floored at
1e-6), with N, the average row length and each term's n summed over all segments: a paper
scores the same whether it sits in a small new segment or a big old one, and an index cut into
many segments ranks exactly as one segment does.

A term held by more than half of the rows has the floor idf: it changes a score by at most
2.2e-6, so it is added only where that can change the result: to rows within that margin of
the `limit`-th best, or to every row when fewer than `limit` rows hold any other term. Scores
are float32 sums in one fixed term order, so a row's score does not depend on the segments.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from hea_rag.lexical import TOKEN_SYMBOLS
from hea_rag.postings import Postings

K1, B = 1.2, 0.75
FLOOR_IDF = 1e-6


def fts_tokens(text: str) -> list[str]:
    """What FTS5's unicode61 tokenizer (token characters: categories L* N* Co and ours, case
    folded, diacritics kept) makes of a text. `\\w` is L* N* and `_`, which is among our token
    characters."""
    return [token.lower() for token in _FTS_TOKEN.findall(text)]


_FTS_TOKEN = re.compile("[\\w\ue000-\uf8ff" + re.escape(TOKEN_SYMBOLS) + "]+")


def query_terms(tokens: Sequence[str]) -> list[str]:
    """The distinct terms of a query's lexical tokens, in order. (A token FTS5 would read as a
    phrase of several terms counts as those terms.)"""
    return list(dict.fromkeys(term for token in tokens for term in fts_tokens(token)))


def best_rows(tables: Sequence[Postings], tokens: Sequence[str], limit: int) -> list[tuple[int, float]]:
    """(rowid, BM25) of the `limit` best rows of all segments' postings of one table, best
    first (ties by rowid); only rows holding a query term."""
    terms = query_terms(tokens)
    if not terms or limit < 1:
        return []
    spans = [table.spans(terms) for table in tables]
    rows = sum(table.size for table in tables)
    average = sum(table.total_length for table in tables) / rows if rows else 1.0
    held = {term: sum(found[term][1] for found in spans if term in found) for term in terms}
    idf = {term: max(math.log((rows - n + 0.5) / (n + 0.5)), 0.0) or FLOOR_IDF for term, n in held.items() if n}
    found = []
    for table, table_spans in zip(tables, spans):
        weights = [(table_spans[t], idf[t]) for t in idf if t in table_spans]
        found += _segment_best(table, weights, table.norms(average, K1, B), limit)
    return sorted(found, key=lambda item: (-item[1], item[0]))[:limit]


def _segment_best(table: Postings, weights, norms, limit: int) -> list[tuple[int, float]]:
    import numpy as np

    if not weights:
        return []
    common = [w for w in weights if w[1] == FLOOR_IDF]
    scores = np.zeros(table.size, dtype=np.float32)
    for span, idf in (w for w in weights if w[1] != FLOOR_IDF):
        rows = table.rows[span[0]:span[0] + span[1]]
        scores[rows] += _term_scores(table, span, idf, norms[rows])
    candidates = np.flatnonzero(scores)
    if common:
        candidates = _add_common_terms(table, scores, candidates, common, norms, limit)
    return _top(table, scores, candidates, limit)


def _term_scores(table: Postings, span: tuple[int, int], idf: float, norms):
    """One term's BM25 part for the rows it holds (in posting order)."""
    return _part(idf, table.counts[span[0]:span[0] + span[1]], norms)


def _part(idf: float, counts, norms):
    """BM25's part for one term: the same float32 operations wherever a row is scored."""
    counts = counts.astype("float32")
    return idf * counts * (K1 + 1) / (counts + norms)


def _add_common_terms(table: Postings, scores, matched, common, norms, limit: int):
    """Add the floor-idf terms to the rows whose place among the best `limit` they can change
    (`matched`: the rows holding another query term); returns the rows the best are among."""
    import numpy as np

    if len(matched) < limit:  # every row: rows holding only common terms fill the list
        for span, idf in common:
            rows = table.rows[span[0]:span[0] + span[1]]
            scores[rows] += _term_scores(table, span, idf, norms[rows])
        return np.flatnonzero(scores)
    # twice the most they can add, compared in float64: float32 rounding never leaves a row out
    margin = 2 * sum(idf for _, idf in common) * (K1 + 1)
    chosen = matched[scores[matched].astype(np.float64) >= _kth_best(scores[matched], limit) - margin]
    for span, idf in common:
        rows = table.rows[span[0]:span[0] + span[1]]
        where = np.searchsorted(rows, chosen)
        hit = where < len(rows)
        hit[hit] = rows[where[hit]] == chosen[hit]
        scores[chosen[hit]] += _part(idf, table.counts[span[0]:span[0] + span[1]][where[hit]], norms[chosen[hit]])
    return chosen


def _kth_best(values, k: int) -> float:
    import numpy as np

    return float(np.partition(values, len(values) - k)[len(values) - k])


def _top(table: Postings, scores, candidates, limit: int) -> list[tuple[int, float]]:
    """The candidate rows of the `limit` best scores, with every row tied with the last."""
    if len(candidates) > limit:
        candidates = candidates[scores[candidates] >= _kth_best(scores[candidates], limit)]
    return [(int(table.rowids[i]), float(scores[i])) for i in candidates]
