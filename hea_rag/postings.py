"""Posting lists of a segment's lexical tables, for BM25 that costs what the query's terms hold.

FTS5 ranks every row an OR query matches, so a whole-sentence query over a million passages
(most of them holding `alloy` or `strength`) took seconds. Here each segment keeps, per table,
which rows hold each term and how often, as flat numpy arrays next to its SQLite file; a search
adds up the query terms' lists with numpy (see hea_rag.bm25). Terms are FTS5's reading of the
`tokens` column (hea_rag.bm25.fts_tokens), so the scores are FTS5's BM25.

Files of a segment, per table T (`papers_fts`, `passages_fts`), all written once with it:

    T.rowids.npy   int64, the table's rowids in order (a row's position is its place here)
    T.lengths.npy  int32, each row's length in terms
    T.rows.npy     int32, row positions holding a term, the rows of each term together
    T.counts.npy   uint16, how often the term occurs in that row
    lexicon        SQLite table in index.sqlite: (table, term) -> where its rows start, how many

A segment written before postings existed has none: its postings are built in memory from its
`tokens` column when it is first searched (`hea-rag index --compact` writes them).
"""

from __future__ import annotations

import os
import sqlite3
from array import array
from collections import Counter
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

TABLES = ("papers_fts", "passages_fts")
ARRAYS = ("rowids", "lengths", "rows", "counts")
_DTYPES = {"rowids": "int64", "lengths": "int32", "rows": "int32", "counts": "uint16"}
_LEXICON = """CREATE TABLE lexicon (tab TEXT NOT NULL, term TEXT NOT NULL, start INTEGER NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (tab, term)) WITHOUT ROWID"""


def array_path(folder: Path, table: str, name: str) -> Path:
    return folder / f"{table}.{name}.npy"


class UnreadablePostings(Exception):
    """A postings file that is not the array it should be (damaged, cut short, replaced)."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


class Postings:
    """One table's postings: the arrays (memory-mapped or built) and a term lookup."""

    def __init__(self, arrays: dict, lookup):
        self.rowids, self.lengths = arrays["rowids"], arrays["lengths"]
        self.rows, self.counts = arrays["rows"], arrays["counts"]
        self._lookup = lookup  # terms -> {term: (start, count)}
        self._norms: tuple[float, object] | None = None

    @property
    def size(self) -> int:
        return len(self.rowids)

    @cached_property
    def total_length(self) -> int:
        return int(self.lengths.sum(dtype="int64"))

    def spans(self, terms: list[str]) -> dict[str, tuple[int, int]]:
        """term -> (first posting, number of rows holding it), for the terms present here."""
        return self._lookup(terms)

    def norms(self, average_length: float, k1: float, b: float):
        """BM25's length normalisation of each row; kept, as a reader's corpus never changes."""
        if self._norms is None or self._norms[0] != average_length:
            import numpy as np

            values = (k1 * (1 - b + b * self.lengths / average_length)).astype(np.float32)
            self._norms = (average_length, values)
        return self._norms[1]


def build(rows: Iterable[tuple[int, str]]) -> tuple[dict, dict[str, tuple[int, int]]]:
    """(arrays, term -> (start, count)) of the postings of (rowid, tokens) rows in rowid order."""
    import numpy as np

    from hea_rag.bm25 import fts_tokens

    vocabulary: dict[str, int] = {}
    term_ids, positions, counts = array("i"), array("i"), array("I")
    rowids, lengths = array("q"), array("i")
    for position, (rowid, text) in enumerate(rows):
        terms = fts_tokens(text)
        rowids.append(rowid)
        lengths.append(len(terms))
        for term, count in Counter(terms).items():
            term_ids.append(vocabulary.setdefault(term, len(vocabulary)))
            positions.append(position)
            counts.append(count)
    ids = np.frombuffer(term_ids, dtype=np.int32)
    order = np.argsort(ids, kind="stable")  # stable: each term's rows stay ascending
    sizes = np.bincount(ids, minlength=len(vocabulary))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    arrays = {"rowids": np.frombuffer(rowids, dtype=np.int64), "lengths": np.frombuffer(lengths, dtype=np.int32),
              "rows": np.frombuffer(positions, dtype=np.int32)[order],
              "counts": np.minimum(np.frombuffer(counts, dtype=np.uint32)[order], 65535).astype(np.uint16)}
    spans = {term: (int(starts[i]), int(sizes[i])) for term, i in vocabulary.items()}
    return arrays, spans


def write_postings(db: sqlite3.Connection, folder: Path) -> None:
    """Build both tables' postings from the rows `db` holds: the lexicon into `db` (committed),
    the arrays into `folder`. Run on a segment being written, before it is flushed."""
    import numpy as np

    with db:
        db.execute("DROP TABLE IF EXISTS lexicon")
        db.execute(_LEXICON)
        for table in TABLES:
            arrays, spans = build(db.execute(f"SELECT rowid, tokens FROM {table} ORDER BY rowid"))
            for name in ARRAYS:
                np.save(array_path(folder, table, name), arrays[name], allow_pickle=False)
            db.executemany("INSERT INTO lexicon VALUES (?, ?, ?, ?)",
                           ((table, term, start, count) for term, (start, count) in spans.items()))


def open_files(folder: Path) -> dict[str, dict] | None:
    """Every postings file of a segment, opened (a reader keeps them past a writer's unlinking);
    None for a segment without postings."""
    if not any(array_path(folder, table, name).exists() for table in TABLES for name in ARRAYS):
        return None  # written before postings existed (a missing one of them is damage)
    handles: dict[str, dict] = {}
    try:
        for table in TABLES:
            handles[table] = {name: open(array_path(folder, table, name), "rb") for name in ARRAYS}
    except BaseException:
        close_files(handles)
        raise
    return handles


def close_files(handles: dict[str, dict] | None) -> None:
    for files in (handles or {}).values():
        for handle in files.values():
            handle.close()


def mapped(files: dict, query, table: str) -> Postings:
    """The postings of `table` from its opened files (memory-mapped, not read) and the lexicon,
    read through `query(sql, params) -> rows` (the segment's database)."""
    arrays = {}
    for name in ARRAYS:
        try:
            arrays[name] = _map_npy(files[name], _DTYPES[name])
        except (ValueError, OSError) as error:
            raise UnreadablePostings(Path(files[name].name), str(error)) from None

    def lookup(terms: list[str]) -> dict[str, tuple[int, int]]:
        marks = ",".join("?" * len(terms))
        rows = query(f"SELECT term, start, count FROM lexicon WHERE tab = ? AND term IN ({marks})",
                     [table, *terms])
        return {term: (start, count) for term, start, count in rows}

    return Postings(arrays, lookup)


def built(query, table: str) -> Postings:
    """The postings of `table` built in memory from its rows (a segment without postings)."""
    arrays, spans = build(query(f"SELECT rowid, tokens FROM {table} ORDER BY rowid", ()))
    return Postings(arrays, lambda terms: {t: spans[t] for t in terms if t in spans})


def _map_npy(handle, dtype: str):
    """A read-only memory map of an opened .npy file; ValueError if it is not one of `dtype`
    or is shorter than its header says."""
    import numpy as np

    handle.seek(0)
    version = np.lib.format.read_magic(handle)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(version, np.lib.format.read_array_header_2_0)
    shape, fortran, stored = read_header(handle)
    if stored != np.dtype(dtype) or fortran or len(shape) != 1:
        raise ValueError(f"holds {stored}{list(shape)}, not a {dtype} vector")
    offset = handle.tell()
    size = os.fstat(handle.fileno()).st_size
    if size < offset + shape[0] * stored.itemsize:
        raise ValueError(f"is cut short ({size} bytes)")
    if shape[0] == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(handle, dtype=stored, mode="r", offset=offset, shape=shape)
