"""One immutable segment of an index: a folder holding `index.sqlite` (papers, passages, FTS5,
the lexicon), `vectors.faiss` and the postings arrays (hea_rag.postings) for the papers that one
`index` run added.

Ids are global: a segment's papers and passages continue the numbering of the segments before
it, so ids grow with the segment order and a merge keeps every id. A segment of at least
`ann["min_passages"]` passages holds an HNSW graph instead of a flat vector list.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path

from hea_rag import postings
from hea_rag.errors import IndexDamagedError

SQLITE_FILE = "index.sqlite"
FAISS_FILE = "vectors.faiss"
# From this many passages on a segment's vectors are an HNSW graph. scripts/bench_scale.py (random
# unit vectors, shared machine): flat dense search p95 4.9 ms at 10k and 9.1 ms at 100k passages,
# while HNSW at these parameters kept only 0.85 / 0.31 of flat's top 50 (target 0.98). So flat up
# to a million (not measured there); HNSW's parameters need tuning before the threshold drops.
DEFAULT_ANN = {"min_passages": 1_000_000, "m": 32, "ef_construction": 80, "ef_search": 128}


def rebuild_hint(folder: Path) -> str:
    """The fix for a damaged or outdated index, ready to copy."""
    return f"run `hea-rag index --rebuild --index {folder}`"


def damaged(folder: Path, path: Path, problem: str) -> IndexDamagedError:
    """The one-line error for a damaged file of the index at `folder`: the file, what, the fix."""
    return IndexDamagedError(f"{path}: {problem}", rebuild_hint(folder))


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection (works in a read-only folder too); FileNotFoundError if missing."""
    from urllib.parse import quote

    try:
        return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path)) from None
        raise


class Segment:
    """Read-only view of one segment. Every file is opened at once: a writer deletes replaced
    segments right after switching the manifest, and on Linux an open file outlives its
    unlinking, so a reader keeps what it opened."""

    def __init__(self, index_folder: Path, path: Path, ef_search: int):
        self.index_folder, self.path, self.ef_search = index_folder, path, ef_search
        self._faiss_file = open(path / FAISS_FILE, "rb")
        try:
            self.db = connect_read_only(path / SQLITE_FILE)
            self._postings_files = postings.open_files(path)
        except BaseException:
            self._faiss_file.close()
            raise
        self._vectors = None
        self._postings: dict[str, postings.Postings] = {}

    def close(self) -> None:
        self.db.close()
        self._faiss_file.close()
        postings.close_files(self._postings_files)

    @property
    def has_postings_files(self) -> bool:
        return self._postings_files is not None

    def postings(self, table: str) -> postings.Postings:
        """A lexical table's postings: mapped from the segment's files, or built from its rows
        for a segment written before postings existed."""
        if table not in self._postings:
            if self._postings_files is None:
                self._postings[table] = postings.built(self.rows, table)
            else:
                self._postings[table] = self._mapped_postings(table)
        return self._postings[table]

    def _mapped_postings(self, table: str) -> postings.Postings:
        """The postings files of `table`, checked against the rows they index."""
        try:
            found = postings.mapped(self._postings_files[table], self.rows, table)
        except postings.UnreadablePostings as error:
            raise damaged(self.index_folder, error.path, f"not readable postings ({error.problem})") from None
        rows = self.counts()[postings.TABLES.index(table)]
        if found.size != rows or len(found.rows) != len(found.counts):
            path = postings.array_path(self.path, table, "rowids")
            raise damaged(self.index_folder, path, f"postings of {found.size} rows, {SQLITE_FILE} holds {rows}")
        return found

    def rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """All rows of a query; a damaged database file becomes one error naming it."""
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as error:
            raise damaged(self.index_folder, self.path / SQLITE_FILE,
                          f"damaged or unreadable ({error})") from None

    def vectors(self, expected: int | None = None):
        """The FAISS index, read on first use from the file opened with the segment."""
        if self._vectors is None:
            index = self._read_vectors()
            if expected is not None and index.ntotal != expected:
                raise damaged(self.index_folder, self.path / FAISS_FILE,
                              f"holds {index.ntotal} vectors, manifest.json {expected} passages")
            _set_ef_search(index, self.ef_search)
            self._vectors = index
        return self._vectors

    def _read_vectors(self):
        import faiss

        try:
            return faiss.read_index(faiss.PyCallbackIOReader(self._faiss_file.read))
        except RuntimeError:  # FAISS's message is a C++ stack; what matters is the file
            raise damaged(self.index_folder, self.path / FAISS_FILE, "not a readable FAISS index") from None
        finally:
            self._faiss_file.close()

    def counts(self) -> tuple[int, int]:
        (papers, passages), = self.rows("SELECT (SELECT COUNT(*) FROM papers), (SELECT COUNT(*) FROM passages)")
        return papers, passages

    def first_ids(self) -> tuple[int, int]:
        """The smallest paper and passage ids here (0 when it has none), for routing ids."""
        (papers, passages), = self.rows("SELECT (SELECT MIN(id) FROM papers), (SELECT MIN(id) FROM passages)")
        return papers or 0, passages or 0

    def last_ids(self) -> tuple[int, int]:
        (papers, passages), = self.rows("SELECT (SELECT MAX(id) FROM papers), (SELECT MAX(id) FROM passages)")
        return papers or 0, passages or 0


def route(ids, starts: list[int]) -> dict[int, list[int]]:
    """Segment position -> the ids it holds, given each segment's first id (ascending)."""
    grouped: dict[int, list[int]] = {}
    for i in ids:
        grouped.setdefault(max(bisect_right(starts, int(i)) - 1, 0), []).append(int(i))
    return grouped


def _set_ef_search(index, ef_search: int) -> None:
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = ef_search


def new_vector_index(dimension: int, passages: int, ann: dict):
    """Flat inner product below `ann["min_passages"]`, HNSW at or above; ids kept (IDMap2)."""
    import faiss

    if passages >= ann["min_passages"]:
        inner = faiss.IndexHNSWFlat(dimension, ann["m"], faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = ann["ef_construction"]
        inner.hnsw.efSearch = ann["ef_search"]
    else:
        inner = faiss.IndexFlatIP(dimension)
    return faiss.IndexIDMap2(inner)


def stored_vectors(index):
    """(ids, vectors) of every vector in a FAISS IDMap2 index, in insertion order."""
    import faiss

    ids = faiss.vector_to_array(index.id_map).astype("int64")
    return ids, index.index.reconstruct_n(0, index.ntotal)
