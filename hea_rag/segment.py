"""One immutable segment of an index: a folder holding `index.sqlite` (papers, passages, FTS5,
the lexicon), `vectors.faiss` and the postings arrays (hea_rag.postings) for the papers that one
`index` run added.

Ids are global: a segment's papers and passages continue the numbering of the segments before
it, so ids grow with the segment order and a merge keeps every id. A segment of at least
`ann["min_passages"]` passages holds an approximate index (product-quantized codes re-ranked
exactly; HNSW in indexes of the HNSW era) instead of a flat vector list.
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
# A segment of at least `min_passages` passages holds an approximate index of one of these
# kinds, with these parameters (all in the manifest's `ann`):
# - pq: every vector also as a product-quantized code (`sub_quantizers` parts of 4 bits, trained
#   on `train_size` of the vectors) that FAISS's fast scan reads; a search takes the
#   k_factor x 50 best by code and re-ranks those with the exact vectors;
# - hnsw: the graph of manifests written before "kind" existed (their `ann` has no "kind").
ANN_DEFAULTS = {
    "pq": {"sub_quantizers": 192, "k_factor": 32, "train_size": 20_000},
    "hnsw": {"m": 32, "ef_construction": 80, "ef_search": 128},
}
ANN_KINDS = tuple(ANN_DEFAULTS)
PQ_CODES = 16  # a 4-bit quantizer's codes: its k-means needs at least this many vectors
# Chosen by scripts/bench_scale.py's dense sweep (README "Approximate search"; one shared core):
# PQ with k_factor 32 kept >= 0.992 of flat's top 50 from 10k to 1M passages, on sentence-mean
# and on random vectors, at p95 5.9 / 6.2 ms against flat's 63.7 / 76.3 ms at 1M; at 10k it
# gains little over flat (0.38 against 0.46 ms), at 50k it is 7x faster: so from 50k on. IVF
# needed over a third of its lists for 0.98 on sentence-mean vectors (never on random ones),
# SQ8 took 0.77x flat's time.
DEFAULT_ANN = {"kind": "pq", "min_passages": 50_000, **ANN_DEFAULTS["pq"]}


def ann_parameters(stored: dict | None) -> dict:
    """A manifest's `ann` with defaults filled in: one without "kind" was written for HNSW
    (min_passages, m, ef_construction, ef_search) and stays HNSW; none at all (an index older
    than approximate search) gets today's default."""
    if not stored:
        return dict(DEFAULT_ANN)
    kind = stored.get("kind", "hnsw")
    return {"kind": kind, "min_passages": DEFAULT_ANN["min_passages"], **ANN_DEFAULTS[kind], **stored}


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

    def __init__(self, index_folder: Path, path: Path, ann: dict):
        self.index_folder, self.path, self.ann = index_folder, path, ann
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
            set_search_parameters(index, self.ann)
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


def set_search_parameters(index, ann: dict) -> None:
    """How widely an approximate index searches, from the manifest (the file's kind decides:
    an old HNSW segment may sit beside newer ones)."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = ann.get("ef_search", ANN_DEFAULTS["hnsw"]["ef_search"])
    elif isinstance(inner, faiss.IndexRefine):
        inner.k_factor = ann.get("k_factor", ANN_DEFAULTS["pq"]["k_factor"])


def is_approximate(passages: int, ann: dict) -> bool:
    """Whether a segment of `passages` vectors gets ann["kind"] rather than a flat list."""
    return passages >= max(ann["min_passages"], PQ_CODES if ann.get("kind") == "pq" else 1)


def training_sample(parts, passages: int, ann: dict):
    """The vectors a PQ segment of `passages` vectors is trained on: `train_size` of them,
    drawn evenly (seeded) from `parts`, arrays read one after another (a segment's, or each of
    the segments a merge reads). None when the segment needs no training."""
    import numpy as np

    if not is_approximate(passages, ann) or ann["kind"] != "pq":
        return None
    wanted = np.sort(np.random.default_rng(0).choice(passages, min(passages, ann["train_size"]), replace=False))
    taken, start = [], 0
    for vectors in parts:
        taken.append(vectors[wanted[(wanted >= start) & (wanted < start + len(vectors))] - start])
        start += len(vectors)
    return np.concatenate(taken)


def new_vector_index(dimension: int, passages: int, ann: dict, training=None):
    """An empty index for `passages` vectors, ids kept (IDMap2): flat inner product below
    `ann["min_passages"]`, else of ann["kind"]; PQ is trained on `training` (training_sample)."""
    import faiss

    if not is_approximate(passages, ann):
        inner = faiss.IndexFlatIP(dimension)
    elif ann["kind"] == "hnsw":
        inner = faiss.IndexHNSWFlat(dimension, ann["m"], faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = ann["ef_construction"]
    else:
        parts = max(m for m in range(1, ann["sub_quantizers"] + 1) if dimension % m == 0)
        inner = faiss.IndexRefineFlat(faiss.IndexPQFastScan(dimension, parts, 4, faiss.METRIC_INNER_PRODUCT))
        inner.train(training)
    set_search_parameters(inner, ann)
    return faiss.IndexIDMap2(inner)


def stored_vectors(index):
    """(ids, vectors) of every vector in a FAISS IDMap2 index, in insertion order."""
    import faiss

    ids = faiss.vector_to_array(index.id_map).astype("int64")
    return ids, index.index.reconstruct_n(0, index.ntotal)
