"""The on-disk index: immutable segments (each a SQLite file with papers, passages, FTS5 token
tables and the lexicon, a FAISS file, and postings arrays), tied together by a manifest.

Layout of an index folder:

    manifest.json          format version, embedder, chunking, counts, the live segments
    gen-000001/index.sqlite, vectors.faiss, *_fts.*.npy    the papers of the first `index` run
    gen-000004/...         those of a later run
    .lock                  held by a writer

Writers never touch a live segment. An `index` run writes what it adds as a new segment, flushes
it to disk, then atomically replaces manifest.json to list it. `--compact` merges the segments
into one the same way, and so does a metadata update rewrite the segments it touches. A crash or
Ctrl-C at any moment leaves manifest.json naming complete segments, so readers never see half
a write. (An index of format 2 is one such segment: it opens as it is.)
"""

from __future__ import annotations

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
from hea_rag.bm25 import best_rows
from hea_rag.merging import newest_to_merge
from hea_rag.postings import TABLES as LEXICAL_TABLES, write_postings
from hea_rag.onnx_encoder import BACKENDS
from hea_rag.segment import (  # noqa: F401 - connect_read_only and the names are used beside
    ANN_KINDS,
    DEFAULT_ANN,
    FAISS_FILE,
    SQLITE_FILE,
    Segment,
    connect_read_only,
    damaged,
    ann_parameters,
    new_vector_index,
    rebuild_hint,
    route,
    training_sample,
    stored_vectors,
)

# 2: formula tokens and stopwords changed what the FTS tables hold; 3: segments (a reader of
# format 2 would see only the newest segment of a format-3 index, so it must refuse it)
FORMAT_VERSION = 3
READABLE_FORMATS = (2, 3)
MANIFEST = "manifest.json"
OPEN_ATTEMPTS = 5  # a reader retries this often when writers switch segments under it
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
-- a search looks up the passages of its candidate papers: without this, a scan of every passage
CREATE INDEX IF NOT EXISTS passages_paper ON passages(paper_id, position);
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
    generation: str = ""  # the segment written last
    counts: dict[str, int] = field(default_factory=lambda: {"papers": 0, "passages": 0})
    format_version: int = FORMAT_VERSION
    # how the vectors were computed (torch, onnx, onnx-int8, openvino): queries must use the
    # same one; an index written before backends existed is torch's
    embedder_backend: str = "torch"
    segments: list[str] = field(default_factory=list)  # the live ones, oldest first
    ann: dict[str, int | str] = field(default_factory=lambda: dict(DEFAULT_ANN))  # segment.new_vector_index

    @classmethod
    def load(cls, folder: Path, check_version: bool = True) -> Manifest:
        data = _read_manifest(folder)
        if check_version and data["format_version"] not in READABLE_FORMATS:
            raise IndexMismatchError(
                f"{folder / MANIFEST}: index format {data['format_version']} is not "
                f"{FORMAT_VERSION}: {rebuild_hint(folder)}"
            )
        return cls(**{key: data[key] for key in _MANIFEST_FIELDS},
                   embedder_backend=data.get("embedder_backend", "torch"),
                   segments=data.get("segments") or [data["generation"]],
                   ann=ann_parameters(data.get("ann")))

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
    segments = data.get("segments", [data["generation"]])
    if not isinstance(segments, list) or not segments or not all(
            isinstance(name, str) and _GENERATION.fullmatch(name) for name in segments):
        return "segments is not a list of gen-NNNNNN folders"
    ann = data.get("ann", {})
    if not isinstance(ann, dict) or ann.get("kind", "hnsw") not in ANN_KINDS or not all(
            isinstance(value, int) for key, value in ann.items() if key != "kind"):
        return "malformed ann parameters"
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
    """Read-only view of the live segments of an index, for the reader's whole life.

    Every segment's files are opened at once: a writer deletes replaced segments right after
    switching the manifest, and on Linux an open file outlives its unlinking, so a long batch
    keeps searching the segments it started on.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.manifest, self.segments = _open_live_segments(self.folder)
        self.generation = self.folder / self.manifest.generation  # the newest segment
        self.db = AllSegments(self.segments)
        self._starts: dict[str, list[int]] = {}

    def close(self) -> None:
        for segment in self.segments:
            segment.close()

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def vector_count(self) -> int:
        return sum(self._vectors(segment).ntotal for segment in self.segments)

    def _vectors(self, segment: Segment):
        """A segment's FAISS index, its size checked against its passages (the manifest's
        count when it is the only segment, as an index of one generation had)."""
        if len(self.segments) == 1:
            return segment.vectors(self.manifest.counts["passages"])
        if segment._vectors is None:
            return segment.vectors(segment.counts()[1])
        return segment.vectors()

    def _route(self, kind: str, ids) -> dict[Segment, list[int]]:
        """The ids grouped by the segment holding them (ids grow with the segment order)."""
        if kind not in self._starts:
            self._starts[kind] = [s.first_ids()[kind == "passages"] for s in self.segments]
        return {self.segments[i]: group for i, group in route(ids, self._starts[kind]).items()}

    def problems(self) -> list[str]:
        """What is wrong with the live segments, each naming its file; [] when they are sound.

        SQLite's quick_check, and FAISS vectors = SQLite passages = manifest counts.
        """
        found: list[str] = []
        for check in (self._database_problems, self._vector_problems, self._postings_problems):
            try:
                found += check()
            except IndexDamagedError as error:
                found.append(error.what)
        return found

    def check(self) -> None:
        """Raise the first problem: a writer must not build on a damaged index."""
        problems = self.problems()
        if problems:
            raise IndexDamagedError(problems[0], rebuild_hint(self.folder))

    def _database_problems(self) -> list[str]:
        found, papers, passages = [], 0, 0
        for segment in self.segments:
            path = segment.path / SQLITE_FILE
            try:
                verdict = segment.db.execute("PRAGMA quick_check").fetchone()[0]
            except sqlite3.DatabaseError as error:  # too damaged to be checked at all
                verdict = str(error)
            if verdict != "ok":
                return [f"{path}: quick_check found damage ({verdict})"]
            held = segment.counts()
            papers, passages = papers + held[0], passages + held[1]
        expected = self.manifest.counts
        if (papers, passages) != (expected["papers"], expected["passages"]):
            where = self.segments[0].path / SQLITE_FILE if len(self.segments) == 1 else "the segments"
            found.append(f"{where}: holds {papers} papers and {passages} passages, manifest.json "
                         f"{expected['papers']} and {expected['passages']}")
        return found

    def _postings_problems(self) -> list[str]:
        """Reading each postings file checks it (a segment without them has nothing to check)."""
        for segment in (s for s in self.segments if s.has_postings_files):
            for table in LEXICAL_TABLES:
                segment.postings(table)
        return []

    def _vector_problems(self) -> list[str]:
        for segment in self.segments:
            self._vectors(segment)  # reading them checks their count
        return []

    def known_keys(self) -> tuple[set[str], set[str]]:
        """DOIs and text keys already indexed (every one: prefer `already_indexed`)."""
        dois = {row[0] for row in self.db.rows("SELECT doi FROM papers WHERE doi IS NOT NULL")}
        keys = {row[0] for row in self.db.rows("SELECT text_key FROM papers")}
        return dois, keys

    def already_indexed(self, dois: set[str], keys: set[str]) -> tuple[set[str], set[str]]:
        """Those of `dois` and `keys` some segment holds: dedup costs what is added, not the corpus."""
        found_dois, found_keys = set(), set()
        for column, wanted, found in (("doi", dois, found_dois), ("text_key", keys, found_keys)):
            values = list(wanted)
            for start in range(0, len(values), 500):
                chunk = values[start:start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(row[0] for row in self.db.rows(
                    f"SELECT {column} FROM papers WHERE {column} IN ({marks})", chunk))
        return found_dois, found_keys

    def lexical_search(
        self, tokens: Sequence[str], limit: int, table: str = "papers_fts"
    ) -> list[tuple[int, float]]:
        """(paper or passage id, BM25 score) pairs, best first; positive, higher is better.

        `papers_fts` scores whole abstracts (an alloy named in one sentence and its property in
        the next still match together); `passages_fts` scores single passages. The statistics
        are corpus-wide over every segment (see hea_rag.bm25).
        """
        if not tokens or table not in LEXICAL_TABLES:
            return []
        return best_rows([segment.postings(table) for segment in self.segments], tokens, limit)

    def vectors_of(self, passage_ids: Iterable[int]):
        """The stored embeddings of these passages, one row each."""
        import numpy as np

        ids = [int(i) for i in passage_ids]
        found = {}
        for segment, group in self._route("passages", ids).items():
            index = self._vectors(segment)
            found.update((i, index.reconstruct(i)) for i in group)
        return np.stack([found[i] for i in ids])

    def dense_search(self, query_vector, limit: int) -> list[tuple[int, float]]:
        """(passage id, cosine) of the nearest passages of every segment, best first."""
        found = []
        for segment in self.segments:
            index = self._vectors(segment)
            if index.ntotal:
                scores, ids = index.search(query_vector.reshape(1, -1), min(limit, index.ntotal))
                found += [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        return sorted(found, key=lambda item: -item[1])[:limit]

    def _by_segment(self, kind: str, ids, sql: str) -> list[tuple]:
        """Rows of `sql` (with a `{marks}` for the ids) from the segments holding the ids."""
        rows = []
        for segment, group in self._route(kind, ids).items():
            rows += segment.rows(sql.format(marks=",".join("?" * len(group))), group)
        return rows

    def passages(self, ids: Iterable[int]) -> dict[int, tuple[int, str]]:
        """passage id -> (paper id, text)."""
        rows = self._by_segment("passages", ids, "SELECT id, paper_id, text FROM passages WHERE id IN ({marks})")
        return {pid: (paper, text) for pid, paper, text in rows}

    def papers(self, ids: Iterable[int]) -> dict[int, PaperRow]:
        rows = self._by_segment("papers", ids, "SELECT id, doi, title, authors, year, source, abstract, "
                                               "origin FROM papers WHERE id IN ({marks})")
        return {row[0]: PaperRow(*row) for row in rows}

    def pages_of(self, passage_ids: Iterable[int]) -> dict[int, int]:
        """passage id -> page, for passages of a PDF body; {} for an index without pages."""
        pages = {}
        for segment, group in self._route("passages", passage_ids).items():
            if segment.rows("SELECT 1 FROM sqlite_master WHERE name = 'passage_pages'"):
                marks = ",".join("?" * len(group))
                pages.update(segment.rows(
                    f"SELECT passage_id, page FROM passage_pages WHERE passage_id IN ({marks})", group))
        return pages

    def papers_without_title(self) -> list[PaperRow]:
        """Papers with a DOI but no title, for `fetch --complete` to fill in. (Every stored
        paper has an abstract: records without one are never indexed.)"""
        rows = self.db.rows("SELECT id, doi, title, authors, year, source, abstract FROM papers "
                            "WHERE doi IS NOT NULL AND (title IS NULL OR title = '') ORDER BY id")
        return [PaperRow(*row) for row in rows]

    def find_paper(self, doi: str | None = None, abstract_sha1: str | None = None) -> int | None:
        """The id of the paper with this DOI or this hash of its abstract as read, if indexed."""
        if abstract_sha1:
            rows = self.db.rows("SELECT id FROM papers WHERE raw_sha1 = ?", (abstract_sha1,))
            if rows:
                return int(rows[0][0])
        if doi:
            rows = self.db.rows("SELECT id FROM papers WHERE doi = ?", (doi.lower(),))
            if rows:
                return int(rows[0][0])
        return None

    def passage_ids_of(self, paper_ids: Iterable[int]) -> dict[int, list[int]]:
        """paper id -> its passage ids in reading order (a paper's passages share its segment)."""
        rows = self._by_segment("papers", paper_ids, "SELECT paper_id, id FROM passages "
                                                     "WHERE paper_id IN ({marks}) ORDER BY position")
        grouped: dict[int, list[int]] = {}
        for paper_id, passage_id in rows:
            grouped.setdefault(paper_id, []).append(passage_id)
        return grouped


class AllSegments:
    """`reader.db` for whole-index reads: a statement runs on every segment in order and the
    rows are concatenated. Ids grow with the segment order, so `ORDER BY id` still holds;
    aggregates (COUNT, MAX) come per segment: use the reader's methods for those."""

    def __init__(self, segments: list[Segment]):
        self.segments = segments

    def execute(self, sql: str, params: Sequence = ()) -> _Rows:
        """As sqlite3's execute (its errors too), over every segment."""
        rows = _Rows()
        for segment in self.segments:
            rows += segment.db.execute(sql, params).fetchall()
        return rows

    def rows(self, sql: str, params: Sequence = ()) -> _Rows:
        """The same, a damaged file becoming one error that names it."""
        rows = _Rows()
        for segment in self.segments:
            rows += segment.rows(sql, params)
        return rows

    def close(self) -> None:
        for segment in self.segments:
            segment.close()


class _Rows(list):
    """Rows as a list, with the cursor methods callers of `db.execute` use."""

    def fetchall(self) -> list[tuple]:
        return list(self)

    def fetchone(self) -> tuple | None:
        return self[0] if self else None


def _open_live_segments(folder: Path) -> tuple[Manifest, list[Segment]]:
    """(manifest, open segments) of the segments the manifest names.

    A writer may switch the manifest and delete old segments between our reading the one and
    opening the others: then the manifest names newer ones, and we try those.
    """
    for _ in range(OPEN_ATTEMPTS):
        manifest = Manifest.load(folder)
        opened: list[Segment] = []
        try:
            for name in manifest.segments:
                opened.append(Segment(folder, folder / name, manifest.ann))
            return manifest, opened
        except FileNotFoundError as error:
            for segment in opened:
                segment.close()
            if Manifest.load(folder).segments == manifest.segments:
                raise damaged(folder, Path(error.filename), "missing") from None
    raise IndexBusyError(f"{folder}: writers replaced the index {OPEN_ATTEMPTS} times while it "
                         "was being opened; try again")


def read_stored_papers(folder: Path, manifest: Manifest | None) -> list[Paper]:
    """Every paper stored in the live segments, for `index --rebuild`. With no readable
    manifest, those of every segment folder (the rebuild drops the duplicates)."""
    papers, failure = [], None
    for segment in _segment_folders(folder, manifest):
        try:
            papers += _papers_in(segment / SQLITE_FILE)
        except (OSError, sqlite3.DatabaseError) as error:
            failure = (segment / SQLITE_FILE, error)
            if manifest is not None:
                break
    if failure is not None and (manifest is not None or not papers):
        path, error = failure
        raise IndexDamagedError(f"{path}: the stored papers cannot be read ({error})",
                                f"give the original files: `hea-rag index --rebuild --index {folder} PATHS...`")
    return papers


def _segment_folders(folder: Path, manifest: Manifest | None) -> list[Path]:
    if manifest is not None:
        return [folder / name for name in manifest.segments]
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
    """Write `papers` as a new segment, then switch the manifest to list it. `updated` gives
    stored papers (id, paper, lexical tokens) new metadata: title, authors, year, source; the
    segments holding them are rewritten (their abstracts, passages and vectors stay).

    The caller holds the write lock. Returns the new manifest.
    """
    segments, written = list(manifest.segments), []
    if updated:
        for position, changes in _updates_by_segment(folder, segments, updated).items():
            segments[position] = _rewrite_segment(folder, segments[position], changes)
            written.append(segments[position])
    counts = dict(manifest.counts)
    if papers:
        name = _write_segment(folder, manifest, papers, paper_tokens, passages, vectors)
        segments.append(name)
        written.append(name)
        counts = {"papers": counts["papers"] + len(papers), "passages": counts["passages"] + len(passages)}
    if not written:
        return manifest
    return _switch(folder, manifest, segments, written[-1], counts)


def _switch(folder: Path, manifest: Manifest, segments: list[str], newest: str,
            counts: dict[str, int]) -> Manifest:
    """The commit point: manifest.json lists `segments`; the replaced ones are then removed."""
    new = Manifest(**{**manifest.__dict__, "generation": newest, "segments": segments,
                      "counts": counts, "format_version": FORMAT_VERSION})
    new.save(folder)
    remove_stale_generations(folder, keep=segments)
    return new


def _write_segment(folder, manifest, papers, paper_tokens, passages, vectors) -> str:
    """A new segment folder holding `papers`, ids continuing the last segment's; flushed."""
    import numpy as np

    last_paper, last_passage = _last_ids(folder, manifest)
    name = _next_generation_name(folder)
    staging = folder / name
    staging.mkdir(parents=True)
    db = _new_database(staging / SQLITE_FILE)
    with db:
        paper_ids = [_insert_paper(db, paper, tokens, last_paper + 1 + i)
                     for i, (paper, tokens) in enumerate(zip(papers, paper_tokens))]
        passage_ids = [_insert_passage(db, paper_ids[p.paper_index], p, last_passage + 1 + i)
                       for i, p in enumerate(passages)]
    write_postings(db, staging)
    db.close()
    training = training_sample([vectors], len(passage_ids), manifest.ann)
    index = new_vector_index(manifest.dimension, len(passage_ids), manifest.ann, training)
    if passage_ids:
        index.add_with_ids(vectors, np.asarray(passage_ids, dtype="int64"))
    _save_vectors(index, staging)
    return name


def _last_ids(folder: Path, manifest: Manifest) -> tuple[int, int]:
    """The largest paper and passage ids of the index (0, 0 for a new one)."""
    if not manifest.segments:
        return 0, 0
    segment = Segment(folder, folder / manifest.segments[-1], manifest.ann)
    try:
        return segment.last_ids()
    finally:
        segment.close()


def _save_vectors(index, staging: Path) -> None:
    import faiss

    faiss.write_index(index, str(staging / FAISS_FILE))
    for path in staging.iterdir():
        _fsync_file(path)
    _fsync_dir(staging)


def _updates_by_segment(folder, segments, updated) -> dict[int, list[tuple[int, Paper, str]]]:
    """Segment position -> the updates of papers it holds."""
    starts = []
    for name in segments:
        segment = Segment(folder, folder / name, DEFAULT_ANN)
        try:
            starts.append(segment.first_ids()[0])
        finally:
            segment.close()
    by_id = {paper_id: (paper_id, paper, tokens) for paper_id, paper, tokens in updated}
    return {position: [by_id[i] for i in ids] for position, ids in route(by_id, starts).items()}


def _rewrite_segment(folder: Path, name: str, changes) -> str:
    """A copy of segment `name` with new metadata for some papers; its vectors are copied."""
    new = _next_generation_name(folder)
    staging = folder / new
    staging.mkdir(parents=True)
    source = connect_read_only(folder / name / SQLITE_FILE)
    db = sqlite3.connect(staging / SQLITE_FILE)
    source.backup(db)
    source.close()
    db.executescript(SCHEMA)  # an older segment may lack passage_pages
    with db:
        for paper_id, paper, tokens in changes:
            _update_metadata(db, paper_id, paper, tokens)
    write_postings(db, staging)
    db.close()
    shutil.copyfile(folder / name / FAISS_FILE, staging / FAISS_FILE)
    for path in staging.iterdir():
        _fsync_file(path)
    _fsync_dir(staging)
    return new


def compact_segments(folder: Path, manifest: Manifest, first: int = 0) -> Manifest:
    """Merge the live segments from position `first` on (all by default) into one, ids kept,
    then switch the manifest to it. Readers that opened the old segments keep them until they
    close. The caller holds the write lock."""
    merged = manifest.segments[first:]
    if len(merged) < 2:
        return manifest
    name = _next_generation_name(folder)
    staging = folder / name
    staging.mkdir(parents=True)
    db = _new_database(staging / SQLITE_FILE)
    for segment in merged:
        _copy_rows(db, folder / segment / SQLITE_FILE)
    write_postings(db, staging)
    (passages,), = db.execute("SELECT COUNT(*) FROM passages").fetchall()
    db.close()
    _save_vectors(_merged_vectors(folder, manifest, merged, passages), staging)
    return _switch(folder, manifest, manifest.segments[:first] + [name], name, dict(manifest.counts))


def merge_newest_segments(folder: Path, manifest: Manifest) -> Manifest:
    """After an `index` run: merge the newest segments as hea_rag.merging decides."""
    count = newest_to_merge(_passage_counts(folder, manifest, reversed(manifest.segments)))
    return compact_segments(folder, manifest, len(manifest.segments) - count) if count else manifest


def _passage_counts(folder: Path, manifest: Manifest, names: Iterable[str]) -> Iterator[int]:
    """Each segment's passage count, opened one at a time as the caller asks for the next."""
    for name in names:
        segment = Segment(folder, folder / name, manifest.ann)
        try:
            count = segment.counts()[1]
        finally:
            segment.close()
        yield count


def _copy_rows(db: sqlite3.Connection, source: Path) -> None:
    from urllib.parse import quote

    db.execute("ATTACH DATABASE ? AS source", (f"file:{quote(str(source.resolve()))}?mode=ro",))
    with db:
        for table, columns in _MERGED_TABLES:
            present = db.execute("SELECT 1 FROM source.sqlite_master WHERE name = ?", (table,)).fetchall()
            if present:
                db.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM source.{table}")
    db.execute("DETACH DATABASE source")


_MERGED_TABLES = (
    ("papers", "id, doi, text_key, title, authors, year, source, abstract, origin, raw_sha1"),
    ("passages", "id, paper_id, position, text"),
    ("passage_pages", "passage_id, page"),
    ("papers_fts", "rowid, tokens"),
    ("passages_fts", "rowid, tokens"),
)


def _merged_vectors(folder: Path, manifest: Manifest, names: list[str], passages: int):
    """One FAISS index of the `names` segments' vectors, flat or approximate by the merged size.
    The segments are read one at a time (twice for PQ: its training sample first)."""
    import faiss

    def each_segment():
        for name in names:
            yield stored_vectors(faiss.read_index(str(folder / name / FAISS_FILE)))

    training = training_sample((vectors for _, vectors in each_segment()), passages, manifest.ann)
    index = new_vector_index(manifest.dimension, passages, manifest.ann, training)
    for ids, vectors in each_segment():
        if len(ids):
            index.add_with_ids(vectors, ids)
    return index


def remove_stale_generations(folder: Path, keep: Iterable[str]) -> None:
    """Segment folders the manifest does not list are leftovers of finished or crashed writers."""
    keep = {keep} if isinstance(keep, str) else set(keep)
    for path in folder.glob("gen-*"):
        if path.name not in keep and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _next_generation_name(folder: Path) -> str:
    numbers = [int(p.name[4:]) for p in folder.glob("gen-*") if p.name[4:].isdigit()]
    return f"gen-{max(numbers, default=0) + 1:06d}"


def _new_database(target: Path) -> sqlite3.Connection:
    db = sqlite3.connect(target)
    db.executescript(SCHEMA)
    return db


def _insert_paper(db: sqlite3.Connection, paper: Paper, tokens: str, paper_id: int) -> int:
    cursor = db.execute(
        "INSERT INTO papers (id, doi, text_key, title, authors, year, source, abstract, origin, "
        "raw_sha1) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (paper_id, paper.doi, paper.text_key, paper.title, paper.authors, paper.year, paper.source,
         paper.abstract, paper.origin, paper.raw_sha1),
    )
    db.execute("INSERT INTO papers_fts (rowid, tokens) VALUES (?, ?)", (cursor.lastrowid, tokens))
    return int(cursor.lastrowid)


def _update_metadata(db: sqlite3.Connection, paper_id: int, paper: Paper, tokens: str) -> None:
    db.execute("UPDATE papers SET title = ?, authors = ?, year = ?, source = ? WHERE id = ?",
               (paper.title, paper.authors, paper.year, paper.source, paper_id))
    db.execute("UPDATE papers_fts SET tokens = ? WHERE rowid = ?", (tokens, paper_id))


def _insert_passage(db: sqlite3.Connection, paper_id: int, passage: NewPassage, passage_id: int) -> int:
    cursor = db.execute(
        "INSERT INTO passages (id, paper_id, position, text) VALUES (?, ?, ?, ?)",
        (passage_id, paper_id, passage.position, passage.text),
    )
    passage_id = int(cursor.lastrowid)
    db.execute("INSERT INTO passages_fts (rowid, tokens) VALUES (?, ?)", (passage_id, passage.tokens))
    if passage.page is not None:
        db.execute("INSERT INTO passage_pages (passage_id, page) VALUES (?, ?)", (passage_id, passage.page))
    return passage_id


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
