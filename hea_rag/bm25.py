"""BM25 with corpus-wide statistics over several FTS5 tables (one per index segment).

FTS5's own `bm25()` only knows the table it runs in: the same paper would score differently in
a small new segment than in a big old one. So each segment finds its own best matches (FTS5's
ranking, `depth` of them), and those are scored again here with FTS5's formula (k1 = 1.2,
b = 0.75, idf floored at 1e-6) but with the row count, average length and document frequencies
of all segments together. For one segment this gives FTS5's scores exactly.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from hea_rag.lexical import TOKEN_SYMBOLS

K1, B = 1.2, 0.75


@dataclass(frozen=True)
class TableStats:
    rows: int
    tokens: int


def fts_query(tokens: Sequence[str]) -> str:
    """Each distinct token a quoted phrase, ORed: what the lexical search asks FTS5."""
    return " OR ".join('"' + token.replace('"', '""') + '"' for token in dict.fromkeys(tokens))


def table_stats(db: sqlite3.Connection, table: str) -> TableStats:
    """Rows and tokens of an FTS5 table, from its own averages record (id 1 of `%_data`)."""
    row = db.execute(f"SELECT block FROM {table}_data WHERE id = 1").fetchone()
    if row is None or not row[0]:
        return TableStats(0, 0)
    rows, offset = _varint(row[0], 0)
    tokens, _ = _varint(row[0], offset)
    return TableStats(rows, tokens)


def _varint(blob: bytes, offset: int) -> tuple[int, int]:
    """SQLite's variable-length integer: 7 bits a byte, high bit set while more follow; a 9th
    byte gives all its 8 bits."""
    value = 0
    for i in range(8):
        byte = blob[offset + i]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, offset + i + 1
    return (value << 8) | blob[offset + 8], offset + 9


def fts_tokens(text: str) -> list[str]:
    """What FTS5's unicode61 tokenizer (token characters: categories L* N* Co and ours, case
    folded, diacritics kept) makes of a text: used to count a query's phrases in a candidate
    row. `\\w` is L* N* and `_`, which is among our token characters."""
    return [token.lower() for token in _FTS_TOKEN.findall(text)]


_FTS_TOKEN = re.compile("[\\w\ue000-\uf8ff" + re.escape(TOKEN_SYMBOLS) + "]+")


def _occurrences(phrase: list[str], row: list[str]) -> int:
    width = len(phrase)
    return sum(1 for i in range(len(row) - width + 1) if row[i:i + width] == phrase) if width else 0


def corpus_scores(tokens: Sequence[str], candidates: dict[int, str], stats: TableStats,
                  frequencies: dict[str, int]) -> dict[int, float]:
    """rowid -> BM25 (positive, higher is better) of each candidate row (rowid -> its indexed
    text), with `stats` and `frequencies` (rows holding each query token) over all segments."""
    phrases = {token: fts_tokens(token) for token in dict.fromkeys(tokens)}
    average = stats.tokens / stats.rows if stats.rows else 1.0
    idf = {token: max(math.log((stats.rows - frequencies.get(token, 0) + 0.5)
                               / (frequencies.get(token, 0) + 0.5)), 0.0) or 1e-6 for token in phrases}
    scores = {}
    for rowid, text in candidates.items():
        row = fts_tokens(text)
        norm = K1 * (1 - B + B * len(row) / average)
        hits = {token: _occurrences(phrase, row) for token, phrase in phrases.items()}
        scores[rowid] = sum(idf[t] * (n * (K1 + 1)) / (n + norm) for t, n in hits.items() if n)
    return scores
