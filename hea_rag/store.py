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

import errno
import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hea_rag.errors import (
    IndexBusyError,
    IndexDamagedError,
    IndexMismatchError,
    IndexMissingError,
    IndexNotWritableError,
)
from hea_rag.ingest.records import Paper, Section
from hea_rag.lexical import TOKEN_SYMBOLS
from hea_rag.onnx_encoder import BACKENDS

FORMAT_VERSION = 2  # 2: formula tokens and stopwords changed what the FTS tables hold
MANIFEST = "manifest.json"
SQLITE_FILE = "index.sqlite"
FAISS_FILE = "vectors.faiss"
OPEN_ATTEMPTS = 5  # a reader retries this often when writers switch generations under it
_MANIFEST_FIELDS = {"embedder": str, "dimension": int, "chunking": dict, "generation": str,
                    "counts": dict, "format_version": int}
_GENERATION = re.compile(r"gen-\d{6}")

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
-- the page of each passage read from a PDF body (index --full-text); added without a format
-- change: an older index simply has no rows, or no table until its next write
CREATE TABLE IF NOT EXISTS passage_pages (
    passage_id INTEGER PRIMARY KEY REFERENCES passages(id),
    page INTEGER NOT NULL
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
    # how the vectors were computed (torch, onnx, onnx-int8, openvino): queries must use the
    # same one; an index written before backends existed is torch's
    embedder_backend: str = "torch"

    @classmethod
    def load(cls, folder: Path, check_version: bool = True) -> Manifest:
        data = _read_manifest(folder)
        if check_version and data["format_version"] != FORMAT_VERSION:
            raise IndexMismatchError(
                f"{folder / MANIFEST}: index format {data['format_version']} is not "
                f"{FORMAT_VERSION}: {rebuild_hint(folder)}"
            )
        return cls(**{key: data[key] for key in _MANIFEST_FIELDS},
                   embedder_backend=data.get("embedder_backend", "torch"))

    def check_compatible(self, embedder: str | None, chunking: dict[str, int] | None,
                         backend: str | None = None) -> None:
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
        if backend is not None and backend != self.embedder_backend:
            raise IndexMismatchError(
                f"this index was built with embedder backend {self.embedder_backend!r}, not "
                f"{backend!r} (their vectors differ): drop --embedder-backend, or re-embed all "
                f"papers with `hea-rag index --rebuild --embedder-backend {backend}`"
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


def rebuild_hint(folder: Path) -> str:
    """The fix for a damaged or outdated index, ready to copy."""
    return f"run `hea-rag index --rebuild --index {folder}`"


def damaged(folder: Path, path: Path, problem: str) -> IndexDamagedError:
    """The one-line error for a damaged file of the index at `folder`: the file, what, the fix."""
    return IndexDamagedError(f"{path}: {problem}", rebuild_hint(folder))


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.exists():
        orphans = orphan_generations(folder)
        if orphans:  # a lost manifest.json: the papers are still there, --rebuild recovers them
            raise damaged(folder, path, f"missing, while {', '.join(orphans)} hold an index "
                                        "(to start afresh instead, delete the folder)")
        raise IndexMissingError(f"no index at {folder}: run `hea-rag index PATH` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise damaged(folder, path, f"unreadable ({reason})") from None
    problem = _manifest_problem(data)
    if problem:
        raise damaged(folder, path, problem)
    return data


def orphan_generations(folder: Path) -> list[str]:
    """Generation folders holding a database, whether or not a manifest names one."""
    return sorted(p.parent.name for p in folder.glob("gen-*/" + SQLITE_FILE))


def _manifest_problem(data) -> str | None:
    """What makes `data` no manifest (a truncated or hand-edited file), or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    wrong = [key for key, kind in _MANIFEST_FIELDS.items() if not isinstance(data.get(key), kind)]
    if wrong:
        return f"missing or malformed field(s) {', '.join(wrong)}"
    if data.get("embedder_backend", "torch") not in BACKENDS:
        return f"unknown embedder_backend {data.get('embedder_backend')!r}"
    if not _GENERATION.fullmatch(data["generation"]):
        return f"generation {data['generation']!r} is not a gen-NNNNNN folder"
    if set(data["chunking"]) != {"max_tokens", "overlap_sentences"} or not all(
        isinstance(data[part].get(key), int)
        for part, key in (("counts", "papers"), ("counts", "passages"),
                          ("chunking", "max_tokens"), ("chunking", "overlap_sentences"))
    ):
        return "malformed counts or chunking"
    return None


@dataclass(frozen=True)
class PaperRow:
    id: int
    doi: str | None
    title: str | None
    authors: str | None
    year: int | None
    source: str | None
    abstract: str
    origin: str | None = None  # where it was read: a file path for PDFs

    @property
    def file(self) -> str | None:
        """The PDF the paper was read from, shown with its sources."""
        return self.origin if self.origin and self.origin.lower().endswith(".pdf") else None


@dataclass(frozen=True)
class NewPassage:
    paper_index: int  # position of its paper in the batch being added
    position: int
    text: str
    tokens: str  # space-joined lexical tokens for FTS5
    page: int | None = None  # for a passage of a PDF body


class IndexReader:
    """Read-only view of one generation of an index, for the reader's whole life.

    Both files are opened at once: a writer deletes the old generation right after switching the
    manifest, and on Linux an open file outlives its unlinking, so a long batch keeps searching
    the generation it started on.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.manifest, self.db, self._faiss_file = _open_live_generation(self.folder)
        self.generation = self.folder / self.manifest.generation
        self._vectors = None

    @property
    def vectors(self):
        """The FAISS index, read on first use from the file opened with the reader."""
        if self._vectors is None:
            index = self._read_vectors()
            expected = self.manifest.counts["passages"]
            if index.ntotal != expected:
                raise damaged(self.folder, self.generation / FAISS_FILE,
                              f"holds {index.ntotal} vectors, manifest.json {expected} passages")
            self._vectors = index
        return self._vectors

    def _read_vectors(self):
        import faiss

        try:
            return faiss.read_index(faiss.PyCallbackIOReader(self._faiss_file.read))
        except RuntimeError:  # FAISS's message is a C++ stack; what matters is the file
            raise damaged(self.folder, self.generation / FAISS_FILE, "not a readable FAISS index") from None
        finally:
            self._faiss_file.close()

    def close(self) -> None:
        self.db.close()
        self._faiss_file.close()

    def _rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """All rows of a query; a damaged database file becomes one error naming it."""
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as error:
            raise damaged(self.folder, self.generation / SQLITE_FILE,
                          f"damaged or unreadable ({error})") from None

    def problems(self) -> list[str]:
        """What is wrong with this generation, each naming its file; [] when it is sound.

        SQLite's quick_check, and FAISS vectors = SQLite passages = manifest counts.
        """
        found: list[str] = []
        for check in (self._database_problems, self._vector_problems):
            try:
                found += check()
            except IndexDamagedError as error:
                found.append(error.what)
        return found

    def check(self) -> None:
        """Raise the first problem: a writer must not copy a damaged generation forward."""
        problems = self.problems()
        if problems:
            raise IndexDamagedError(problems[0], rebuild_hint(self.folder))

    def _database_problems(self) -> list[str]:
        path = self.generation / SQLITE_FILE
        try:
            verdict = self.db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as error:  # too damaged to be checked at all
            verdict = str(error)
        if verdict != "ok":
            return [f"{path}: quick_check found damage ({verdict})"]
        (papers, passages), = self._rows(
            "SELECT (SELECT COUNT(*) FROM papers), (SELECT COUNT(*) FROM passages)")
        expected = self.manifest.counts
        if (papers, passages) == (expected["papers"], expected["passages"]):
            return []
        return [f"{path}: holds {papers} papers and {passages} passages, manifest.json "
                f"{expected['papers']} and {expected['passages']}"]

    def _vector_problems(self) -> list[str]:
        self.vectors  # noqa: B018 - reading them checks their count against the manifest
        return []

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def known_keys(self) -> tuple[set[str], set[str]]:
        """DOIs and text keys already indexed, for dedup before any embedding is done."""
        dois = {row[0] for row in self._rows("SELECT doi FROM papers WHERE doi IS NOT NULL")}
        keys = {row[0] for row in self._rows("SELECT text_key FROM papers")}
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
        rows = self._rows(
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
        rows = self._rows(f"SELECT id, paper_id, text FROM passages WHERE id IN ({marks})", ids)
        return {pid: (paper, text) for pid, paper, text in rows}

    def papers(self, ids: Iterable[int]) -> dict[int, PaperRow]:
        ids = list(ids)
        marks = ",".join("?" * len(ids))
        rows = self._rows(
            "SELECT id, doi, title, authors, year, source, abstract, origin FROM papers "
            f"WHERE id IN ({marks})",
            ids,
        )
        return {row[0]: PaperRow(*row) for row in rows}

    def pages_of(self, passage_ids: Iterable[int]) -> dict[int, int]:
        """passage id -> page, for passages of a PDF body; {} for an index without pages."""
        ids = list(passage_ids)
        if not ids or not self._rows("SELECT 1 FROM sqlite_master WHERE name = 'passage_pages'"):
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._rows(f"SELECT passage_id, page FROM passage_pages WHERE passage_id IN ({marks})", ids)
        return dict(rows)

    def papers_without_title(self) -> list[PaperRow]:
        """Papers with a DOI but no title, for `fetch --complete` to fill in. (Every stored
        paper has an abstract: records without one are never indexed.)"""
        rows = self._rows("SELECT id, doi, title, authors, year, source, abstract FROM papers "
                          "WHERE doi IS NOT NULL AND (title IS NULL OR title = '') ORDER BY id")
        return [PaperRow(*row) for row in rows]

    def find_paper(self, doi: str | None = None, abstract_sha1: str | None = None) -> int | None:
        """The id of the paper with this DOI or this hash of its abstract as read, if indexed."""
        if abstract_sha1:
            rows = self._rows("SELECT id FROM papers WHERE raw_sha1 = ?", (abstract_sha1,))
            if rows:
                return int(rows[0][0])
        if doi:
            rows = self._rows("SELECT id FROM papers WHERE doi = ?", (doi.lower(),))
            if rows:
                return int(rows[0][0])
        return None

    def passage_ids_of(self, paper_ids: Iterable[int]) -> dict[int, list[int]]:
        """paper id -> its passage ids in reading order."""
        ids = list(paper_ids)
        marks = ",".join("?" * len(ids))
        rows = self._rows(
            f"SELECT paper_id, id FROM passages WHERE paper_id IN ({marks}) ORDER BY position", ids
        )
        grouped: dict[int, list[int]] = {}
        for paper_id, passage_id in rows:
            grouped.setdefault(paper_id, []).append(passage_id)
        return grouped


def _open_live_generation(folder: Path):
    """(manifest, SQLite connection, open FAISS file) of the generation the manifest names.

    A writer may switch the manifest and delete the old generation between our reading the one
    and opening the other: then the manifest names a newer generation, and we try that one.
    """
    for _ in range(OPEN_ATTEMPTS):
        manifest = Manifest.load(folder)
        try:
            return (manifest, *_open_generation(folder / manifest.generation))
        except FileNotFoundError as error:
            if Manifest.load(folder).generation == manifest.generation:
                raise damaged(folder, Path(error.filename), "missing") from None
    raise IndexBusyError(f"{folder}: writers replaced the index {OPEN_ATTEMPTS} times while it "
                         "was being opened; try again")


def _open_generation(generation: Path):
    vectors = open(generation / FAISS_FILE, "rb")
    try:
        return connect_read_only(generation / SQLITE_FILE), vectors
    except BaseException:
        vectors.close()
        raise


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection (works in a read-only folder too); FileNotFoundError if missing."""
    from urllib.parse import quote

    try:
        return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path)) from None
        raise


def read_stored_papers(folder: Path, manifest: Manifest | None) -> list[Paper]:
    """Every paper stored in the live generation, for `index --rebuild`. With no readable
    manifest, the generation holding the most papers (an unfinished one holds fewer)."""
    best, failure = None, None
    for generation in _generations(folder, manifest):
        try:
            papers = _papers_in(generation / SQLITE_FILE)
        except (OSError, sqlite3.DatabaseError) as error:
            failure = (generation / SQLITE_FILE, error)
            continue
        if best is None or len(papers) > len(best):
            best = papers
    if best is None and failure is not None:
        path, error = failure
        raise IndexDamagedError(f"{path}: the stored papers cannot be read ({error})",
                                f"give the original files: `hea-rag index --rebuild --index {folder} PATHS...`")
    return best or []


def _generations(folder: Path, manifest: Manifest | None) -> list[Path]:
    if manifest is not None:
        return [folder / manifest.generation]
    return sorted(p for p in folder.glob("gen-*") if _GENERATION.fullmatch(p.name))


def _papers_in(path: Path) -> list[Paper]:
    db = connect_read_only(path)
    try:
        rows = db.execute("SELECT abstract, doi, title, authors, year, source, origin, raw_sha1, id "
                          "FROM papers ORDER BY id").fetchall()
        ids = [row[8] for row in rows]
        body = _stored_bodies(db)
    finally:
        db.close()
    return [Paper(*row[:6], origin=row[6] or "", raw_sha1=row[7], body=body.get(i, ()))
            for i, row in zip(ids, rows)]


def _stored_bodies(db: sqlite3.Connection) -> dict[int, tuple[Section, ...]]:
    """paper id -> its body passages (those with a page), for --rebuild to carry them over.
    Damaged passages lose the bodies only: the papers table alone is enough to rebuild."""
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'passage_pages'").fetchall():
            return {}
        rows = db.execute("SELECT p.paper_id, g.page, p.text FROM passages p JOIN passage_pages g "
                          "ON g.passage_id = p.id ORDER BY p.paper_id, p.position").fetchall()
    except sqlite3.DatabaseError:
        return {}
    bodies: dict[int, list[Section]] = {}
    for paper_id, page, text in rows:
        bodies.setdefault(paper_id, []).append(Section(page, "", text))
    return {paper_id: tuple(sections) for paper_id, sections in bodies.items()}


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise IndexNotWritableError(f"{folder}: cannot create the index folder ({error.strerror}): "
                                    "choose another --index") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise IndexNotWritableError(f"{folder}: the index folder is not writable: fix its "
                                    "permissions, or index into another folder with --index")


@contextmanager
def write_lock(folder: Path, timeout: float, on_wait=None) -> Iterator[None]:
    """One writer at a time. A second one waits up to `timeout` seconds, then fails clearly."""
    from filelock import FileLock, Timeout

    _ensure_writable(folder)
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
    updated: Sequence[tuple[int, Paper, str]] = (),
) -> Manifest:
    """Write a new generation holding the old one plus `papers`, then switch the manifest to it.
    `updated` gives stored papers (id, paper, lexical tokens) new metadata: title, authors,
    year, source; their abstracts and passages stay.

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
        for paper_id, paper, tokens in updated:
            _update_metadata(db, paper_id, paper, tokens)
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
        source = connect_read_only(old / SQLITE_FILE)
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


def _update_metadata(db: sqlite3.Connection, paper_id: int, paper: Paper, tokens: str) -> None:
    db.execute("UPDATE papers SET title = ?, authors = ?, year = ?, source = ? WHERE id = ?",
               (paper.title, paper.authors, paper.year, paper.source, paper_id))
    db.execute("UPDATE papers_fts SET tokens = ? WHERE rowid = ?", (tokens, paper_id))


def _insert_passage(db: sqlite3.Connection, paper_id: int, passage: NewPassage) -> int:
    cursor = db.execute(
        "INSERT INTO passages (paper_id, position, text) VALUES (?, ?, ?)",
        (paper_id, passage.position, passage.text),
    )
    passage_id = int(cursor.lastrowid)
    db.execute("INSERT INTO passages_fts (rowid, tokens) VALUES (?, ?)", (passage_id, passage.tokens))
    if passage.page is not None:
        db.execute("INSERT INTO passage_pages (passage_id, page) VALUES (?, ?)", (passage_id, passage.page))
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
