"""The on-disk index: SQLite (papers, passages, FTS5) + a FAISS file, tied together by a manifest.

Layout of an index folder:

    manifest.json          format version, embedder, chunking, counts, and the live generation
    gen-000003/index.sqlite
    gen-000003/vectors.faiss
    .lock                  held by a writer

Writers never touch the live generation. They copy it into a new one, add to the copy, flush
everything to disk, then atomically replace manifest.json to point at it. A crash or Ctrl-C at
any moment leaves manifest.json naming a complete generation, so readers never see half a write.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hea_rag.errors import IndexBusyError, IndexMismatchError, IndexMissingError
from hea_rag.ingest.records import Paper
from hea_rag.lexical import TOKEN_SYMBOLS

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "index.sqlite"
FAISS_FILE = "vectors.faiss"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS papers (
    id INTEGER PRIMARY KEY,
    doi TEXT UNIQUE,
    text_key TEXT NOT NULL UNIQUE,
    title TEXT, authors TEXT, year INTEGER, source TEXT,
    abstract TEXT NOT NULL,
    origin TEXT,
    raw_sha1 TEXT
);
CREATE INDEX IF NOT EXISTS papers_raw_sha1 ON papers(raw_sha1);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY,
    paper_id INTEGER NOT NULL REFERENCES papers(id),
    position INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(
    tokens, tokenize = "unicode61 remove_diacritics 0 tokenchars '{TOKEN_SYMBOLS}'"
);
CREATE VIRTUAL TABLE IF NOT EXISTS papers_fts USING fts5(
    tokens, tokenize = "unicode61 remove_diacritics 0 tokenchars '{TOKEN_SYMBOLS}'"
);
"""


@dataclass
class Manifest:
    """What an index was built with; a different embedder or chunking is refused."""

    embedder: str
    dimension: int
    chunking: dict[str, int]
    generation: str = ""
    counts: dict[str, int] = field(default_factory=lambda: {"papers": 0, "passages": 0})
    format_version: int = FORMAT_VERSION

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.exists():
            raise IndexMissingError(f"no index at {folder}: run `hea-rag index PATH` first")
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"{path}: index format {data.get('format_version')} is not {FORMAT_VERSION}; "
                "rebuild it with `hea-rag index` into a new folder"
            )
        return cls(**data)

    def check_compatible(self, embedder: str | None, chunking: dict[str, int] | None) -> None:
        if embedder is not None and embedder != self.embedder:
            raise IndexMismatchError(
                f"this index was built with embedder {self.embedder!r}, not {embedder!r}: "
                f"drop --embedder, or index into another folder with --index"
            )
        if chunking is not None and chunking != self.chunking:
            raise IndexMismatchError(
                f"this index was built with chunking {self.chunking}, not {chunking}: "
                "index into another folder with --index"
            )

    def save(self, folder: Path) -> None:
        """Atomic: write a temporary file, flush it, rename it over the old manifest."""
        temporary = folder / (MANIFEST + ".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(self.__dict__, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, folder / MANIFEST)
        _fsync_dir(folder)


@dataclass(frozen=True)
class PaperRow:
    id: int
    doi: str | None
    title: str | None
    authors: str | None
    year: int | None
    source: str | None
    abstract: str


@dataclass(frozen=True)
class NewPassage:
    paper_index: int  # position of its paper in the batch being added
    position: int
    text: str
    tokens: str  # space-joined lexical tokens for FTS5


class IndexReader:
    """Read-only view of one generation of an index."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.manifest = Manifest.load(self.folder)
        generation = self.folder / self.manifest.generation
        self.db = sqlite3.connect(f"file:{generation / SQLITE_FILE}?mode=ro", uri=True)
        self._faiss_path = generation / FAISS_FILE
        self._vectors = None

    @property
    def vectors(self):
        """The FAISS index, loaded on first use (lexical-only work never pays for it)."""
        if self._vectors is None:
            import faiss

            self._vectors = faiss.read_index(str(self._faiss_path))
        return self._vectors

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def known_keys(self) -> tuple[set[str], set[str]]:
        """DOIs and text keys already indexed, for dedup before any embedding is done."""
        dois = {row[0] for row in self.db.execute("SELECT doi FROM papers WHERE doi IS NOT NULL")}
        keys = {row[0] for row in self.db.execute("SELECT text_key FROM papers")}
        return dois, keys

    def lexical_search(
        self, tokens: Sequence[str], limit: int, table: str = "papers_fts"
    ) -> list[tuple[int, float]]:
        """(paper or passage id, BM25 score) pairs, best first; positive, higher is better.

        `papers_fts` scores whole abstracts (an alloy named in one sentence and its property in
        the next still match together); `passages_fts` scores single passages.
        """
        if not tokens or table not in ("papers_fts", "passages_fts"):
            return []
        query = " OR ".join('"' + token.replace('"', '""') + '"' for token in dict.fromkeys(tokens))
        rows = self.db.execute(
            f"SELECT rowid, -bm25({table}) AS score FROM {table} "
            f"WHERE {table} MATCH ? ORDER BY score DESC LIMIT ?",
            (query, limit),
        )
        return [(int(rowid), float(score)) for rowid, score in rows]

    def vectors_of(self, passage_ids: Iterable[int]):
        """The stored embeddings of these passages, one row each."""
        import numpy as np

        return np.stack([self.vectors.reconstruct(int(i)) for i in passage_ids])

    def dense_search(self, query_vector, limit: int) -> list[tuple[int, float]]:
        if self.vectors.ntotal == 0:
            return []
        scores, ids = self.vectors.search(query_vector.reshape(1, -1), min(limit, self.vectors.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def passages(self, ids: Iterable[int]) -> dict[int, tuple[int, str]]:
        """passage id -> (paper id, text)."""
        ids = list(ids)
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT id, paper_id, text FROM passages WHERE id IN ({marks})", ids)
        return {pid: (paper, text) for pid, paper, text in rows}

    def papers(self, ids: Iterable[int]) -> dict[int, PaperRow]:
        ids = list(ids)
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT id, doi, title, authors, year, source, abstract FROM papers "
            f"WHERE id IN ({marks})",
            ids,
        )
        return {row[0]: PaperRow(*row) for row in rows}

    def find_paper(self, doi: str | None = None, abstract_sha1: str | None = None) -> int | None:
        """The id of the paper with this DOI or this hash of its abstract as read, if indexed."""
        if abstract_sha1:
            row = self.db.execute("SELECT id FROM papers WHERE raw_sha1 = ?", (abstract_sha1,)).fetchone()
            if row:
                return int(row[0])
        if doi:
            row = self.db.execute("SELECT id FROM papers WHERE doi = ?", (doi.lower(),)).fetchone()
            if row:
                return int(row[0])
        return None

    def passage_ids_of(self, paper_ids: Iterable[int]) -> dict[int, list[int]]:
        """paper id -> its passage ids in reading order."""
        ids = list(paper_ids)
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT paper_id, id FROM passages WHERE paper_id IN ({marks}) ORDER BY position", ids
        )
        grouped: dict[int, list[int]] = {}
        for paper_id, passage_id in rows:
            grouped.setdefault(paper_id, []).append(passage_id)
        return grouped


@contextmanager
def write_lock(folder: Path, timeout: float, on_wait=None) -> Iterator[None]:
    """One writer at a time. A second one waits up to `timeout` seconds, then fails clearly."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait:
            on_wait()
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise IndexBusyError(
                f"{folder}: another `hea-rag index` has held the write lock for over {timeout:.0f}s"
            ) from None
    try:
        yield
    finally:
        lock.release()


def commit_generation(
    folder: Path,
    manifest: Manifest,
    papers: Sequence[Paper],
    paper_tokens: Sequence[str],
    passages: Sequence[NewPassage],
    vectors,
) -> Manifest:
    """Write a new generation holding the old one plus `papers`, then switch the manifest to it.

    The caller holds the write lock. Returns the new manifest.
    """
    import faiss

    old = folder / manifest.generation if manifest.generation else None
    name = _next_generation_name(folder)
    staging = folder / name
    staging.mkdir(parents=True)
    db = _copy_database(old, staging / SQLITE_FILE)
    index = faiss.read_index(str(old / FAISS_FILE)) if old else _empty_faiss(manifest.dimension)
    with db:
        paper_ids = [_insert_paper(db, paper, tokens) for paper, tokens in zip(papers, paper_tokens)]
        passage_ids = [_insert_passage(db, paper_ids[p.paper_index], p) for p in passages]
    if passage_ids:
        import numpy as np

        index.add_with_ids(vectors, np.asarray(passage_ids, dtype="int64"))
    faiss.write_index(index, str(staging / FAISS_FILE))
    counts = _counts(db)
    db.close()
    for path in staging.iterdir():
        _fsync_file(path)
    _fsync_dir(staging)
    new = Manifest(**{**manifest.__dict__, "generation": name, "counts": counts})
    new.save(folder)
    remove_stale_generations(folder, keep=name)
    return new


def remove_stale_generations(folder: Path, keep: str) -> None:
    """Generations other than the live one are leftovers of finished or crashed writers."""
    for path in folder.glob("gen-*"):
        if path.name != keep and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _next_generation_name(folder: Path) -> str:
    numbers = [int(p.name[4:]) for p in folder.glob("gen-*") if p.name[4:].isdigit()]
    return f"gen-{max(numbers, default=0) + 1:06d}"


def _copy_database(old: Path | None, target: Path) -> sqlite3.Connection:
    db = sqlite3.connect(target)
    if old is not None:
        source = sqlite3.connect(f"file:{old / SQLITE_FILE}?mode=ro", uri=True)
        source.backup(db)
        source.close()
    db.executescript(SCHEMA)
    return db


def _empty_faiss(dimension: int):
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def _insert_paper(db: sqlite3.Connection, paper: Paper, tokens: str) -> int:
    cursor = db.execute(
        "INSERT INTO papers (doi, text_key, title, authors, year, source, abstract, origin, raw_sha1) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (paper.doi, paper.text_key, paper.title, paper.authors, paper.year, paper.source,
         paper.abstract, paper.origin, paper.raw_sha1),
    )
    db.execute("INSERT INTO papers_fts (rowid, tokens) VALUES (?, ?)", (cursor.lastrowid, tokens))
    return int(cursor.lastrowid)


def _insert_passage(db: sqlite3.Connection, paper_id: int, passage: NewPassage) -> int:
    cursor = db.execute(
        "INSERT INTO passages (paper_id, position, text) VALUES (?, ?, ?)",
        (paper_id, passage.position, passage.text),
    )
    passage_id = int(cursor.lastrowid)
    db.execute("INSERT INTO passages_fts (rowid, tokens) VALUES (?, ?)", (passage_id, passage.tokens))
    return passage_id


def _counts(db: sqlite3.Connection) -> dict[str, int]:
    papers = db.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    passages = db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
    return {"papers": int(papers), "passages": int(passages)}


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
