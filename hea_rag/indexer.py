"""The `index` pipeline: read files, drop duplicates, chunk, embed, commit one new generation.

`rebuild_index` is the same pipeline from scratch, fed with the papers the index already stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hea_rag.chunking import ChunkingParams, chunk_text
from hea_rag.embedder import DEFAULT_EMBEDDER, canonical_name, load_embedder
from hea_rag.errors import IndexDamagedError, IndexMissingError
from hea_rag.ingest import STDIN_NAME, Failed, Paper, Skipped, read_path
from hea_rag.lexical import tokenize
from hea_rag.store import (
    MANIFEST,
    IndexReader,
    Manifest,
    NewPassage,
    commit_generation,
    compact_segments,
    merge_newest_segments,
    orphan_generations,
    read_stored_papers,
    remove_stale_generations,
    write_lock,
)

Progress = Callable[[int, int], None]  # (passages embedded so far, total)


@dataclass(frozen=True)
class RecordSource:
    """Records already read (Paper / Skipped / Failed), e.g. works fetched from a literature API,
    given to `index_paths` among its paths: they go through the same dedup and summary."""

    name: str  # stands for them in the summary, like a file name
    records: Iterable

    def __str__(self) -> str:
        return self.name


@dataclass
class IndexSummary:
    added: int = 0
    duplicates: int = 0
    passages: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    papers_total: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0  # of `seconds`, the part spent loading the embedder
    rebuilt: bool = False
    kept: int = 0  # with --rebuild: papers carried over from the old index (not in `added`)


@dataclass
class _Batch:
    """New papers of this run, deduplicated against the index and against each other."""

    dois: set[str]
    keys: set[str]
    papers: list[Paper] = field(default_factory=list)

    def offer(self, paper: Paper) -> bool:
        if (paper.doi and paper.doi in self.dois) or paper.text_key in self.keys:
            return False
        if paper.doi:
            self.dois.add(paper.doi)
        self.keys.add(paper.text_key)
        self.papers.append(paper)
        return True


def index_paths(
    paths: Iterable[str],
    folder: Path,
    embedder_name: str | None = None,
    chunking: ChunkingParams | None = None,
    lock_timeout: float = 600.0,
    on_wait: Callable[[], None] | None = None,
    on_progress: Progress | None = None,
    full_text: bool = False,
    backend: str | None = None,
    merge: bool = True,
) -> IndexSummary:
    """Add the papers in `paths` that the index at `folder` lacks. Safe to interrupt at any point.
    With `full_text`, the body of each PDF is indexed too, a passage per section piece and page.
    The new papers become a segment; with `merge`, the newest segments are then merged as
    hea_rag.merging decides (a separate commit: a crash in it keeps the papers added)."""
    started = time.perf_counter()
    with write_lock(folder, lock_timeout, on_wait):
        manifest = _existing_manifest(folder)
        if manifest:
            remove_stale_generations(folder, keep=manifest.segments)
            name = canonical_name(embedder_name) if embedder_name else None
            manifest.check_compatible(name, chunking.as_dict() if chunking else None, backend)
        summary = IndexSummary()
        batch = _read_new_papers(paths, folder if manifest else None, summary, full_text)
        summary.added = len(batch.papers)
        if batch.papers:
            manifest = _embed_and_commit(batch.papers, folder, manifest, embedder_name, chunking,
                                         summary, on_progress, backend)
            if merge:
                manifest = merge_newest_segments(folder, manifest)
        summary.papers_total = manifest.counts["papers"] if manifest else 0
    summary.seconds = time.perf_counter() - started
    return summary


def rebuild_index(
    paths: Iterable[str],
    folder: Path,
    embedder_name: str | None = None,
    chunking: ChunkingParams | None = None,
    lock_timeout: float = 600.0,
    on_wait: Callable[[], None] | None = None,
    on_progress: Progress | None = None,
    full_text: bool = False,
    backend: str | None = None,
) -> IndexSummary:
    """A fresh generation of the index at `folder` holding the papers it stores plus those in
    `paths`, re-chunked and re-embedded: the fix for a damaged index or an older format. The old
    generation stays live until the new one is committed, so an interruption loses nothing."""
    started = time.perf_counter()
    with write_lock(folder, lock_timeout, on_wait):
        old = _readable_manifest(folder)
        if old:
            remove_stale_generations(folder, keep=old.segments)
        summary = IndexSummary(rebuilt=True)
        batch = _rebuild_batch(folder, old, list(paths), summary, full_text)
        name = embedder_name or (old.embedder if old else None)
        params = chunking or (ChunkingParams(**old.chunking) if old else None)
        backend = backend or (old.embedder_backend if old else None)
        manifest = _embed_and_commit(batch.papers, folder, None, name, params, summary, on_progress,
                                     backend)
        summary.papers_total = manifest.counts["papers"]
    summary.seconds = time.perf_counter() - started
    return summary


def _readable_manifest(folder: Path) -> Manifest | None:
    """The manifest whatever its format version, else None (missing or damaged)."""
    try:
        return Manifest.load(folder, check_version=False)
    except (IndexMissingError, IndexDamagedError):
        return None


def _rebuild_batch(folder: Path, old: Manifest | None, paths: list[str], summary,
                   full_text: bool = False) -> _Batch:
    """The stored papers first, then the new ones of `paths`, deduplicated."""
    batch = _Batch(set(), set())
    for paper in _stored_papers(folder, old, bool(paths), summary):
        batch.offer(paper)
    summary.kept = len(batch.papers)
    _read_paths(paths, batch, summary, full_text)
    summary.added = len(batch.papers) - summary.kept
    if not batch.papers:
        raise IndexMissingError(f"{folder}: no stored papers and no readable files to rebuild from")
    return batch


def _stored_papers(folder, manifest, have_paths: bool, summary: IndexSummary) -> list[Paper]:
    """The papers the index stores; unreadable ones are an error unless files were given."""
    try:
        return read_stored_papers(folder, manifest)
    except IndexDamagedError as error:
        if not have_paths:
            raise
        summary.skipped.append(Skipped(error.what, "rebuilt from the given files only"))
        return []


def _existing_manifest(folder: Path) -> Manifest | None:
    """The index's manifest; None for a new index. Generations without a manifest are refused
    (Manifest.load says so), not swept away as leftovers: they hold the papers."""
    if (folder / MANIFEST).exists() or orphan_generations(folder):
        return Manifest.load(folder)
    return None


def _read_new_papers(paths: Iterable[str], folder: Path | None, summary: IndexSummary,
                     full_text: bool = False) -> _Batch:
    """The papers of `paths` the index lacks: deduplicated among themselves, then looked up
    in every segment (by DOI and text key), so the cost follows the batch, not the corpus."""
    batch = _Batch(set(), set())
    _read_paths(paths, batch, summary, full_text)
    if folder is None or not batch.papers:
        return batch
    with IndexReader(folder) as reader:
        reader.check()  # never build on a damaged index
        dois, keys = reader.already_indexed(batch.dois, batch.keys)
    new = [p for p in batch.papers if not (p.doi and p.doi in dois) and p.text_key not in keys]
    summary.duplicates += len(batch.papers) - len(new)
    batch.papers = new
    return batch


def _read_paths(paths: Iterable[str], batch: _Batch, summary: IndexSummary,
                full_text: bool = False) -> None:
    """Offer every paper of `paths` to `batch`; a path with nothing to index at all fails."""
    for path in paths:
        found = failed = 0
        for record in path.records if isinstance(path, RecordSource) else read_path(path, full_text):
            if isinstance(record, Skipped):
                summary.skipped.append(record)
            elif isinstance(record, Failed):
                summary.failed.append(record)
                failed += 1
            else:
                found += 1
                if not batch.offer(record):
                    summary.duplicates += 1
        if not found and not failed:
            summary.failed.append(Failed(STDIN_NAME if path == "-" else str(path), "no papers found"))


def _embed_and_commit(papers, folder, manifest, embedder_name, chunking, summary, on_progress,
                      backend=None):
    name = manifest.embedder if manifest else (embedder_name or DEFAULT_EMBEDDER)
    backend = manifest.embedder_backend if manifest else backend  # None: load_embedder's default
    started = time.perf_counter()
    embedder = load_embedder(name, backend)
    summary.load_seconds = time.perf_counter() - started
    params = ChunkingParams(**manifest.chunking) if manifest else (chunking or ChunkingParams())
    passages = [
        NewPassage(paper_index=i, position=position, text=text, tokens=" ".join(tokenize(text)),
                   page=page)
        for i, paper in enumerate(papers)
        for position, (text, page) in enumerate(_passage_texts(paper, embedder, params))
    ]
    vectors = _embed(embedder, [p.text for p in passages], on_progress)
    if manifest is None:
        manifest = Manifest(embedder=embedder.name, dimension=embedder.dimension,
                            chunking=params.as_dict(), embedder_backend=embedder.backend)
    summary.passages = len(passages)
    paper_tokens = [lexical_tokens(paper) for paper in papers]
    return commit_generation(folder, manifest, papers, paper_tokens, passages, vectors)


def _passage_texts(paper: Paper, embedder, params: ChunkingParams) -> list[tuple[str, int | None]]:
    """(text, page) of each passage: the abstract's (no page), then the body's, if it was read.
    The whole-paper lexical tokens stay those of the title and abstract, so that full text
    does not change how papers rank for what their abstracts say."""
    limit = ChunkingParams(min(params.max_tokens, embedder.max_tokens), params.overlap_sentences)
    passages = [(text, None) for text in chunk_text(paper.abstract, embedder.count_tokens, limit)]
    for section in paper.body:
        passages += [(text, section.page) for text in chunk_text(section.text, embedder.count_tokens, limit)]
    return passages


def _embed(embedder, texts: list[str], on_progress: Progress | None, batch: int = 64):
    """Vectors in the order of `texts`, embedded longest first so each batch pads little."""
    import numpy as np

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    vectors = np.zeros((len(texts), embedder.dimension), dtype="float32")
    for start in range(0, len(order), batch):
        chosen = order[start : start + batch]
        vectors[chosen] = embedder.encode([texts[i] for i in chosen])
        if on_progress:
            on_progress(min(start + batch, len(texts)), len(texts))
    return vectors


def compact_index(folder: Path, lock_timeout: float = 600.0,
                  on_wait: Callable[[], None] | None = None) -> tuple[int, int]:
    """Merge the index's segments into one; readers keep working on those they opened.
    Returns (segments before, segments after)."""
    with write_lock(folder, lock_timeout, on_wait):
        manifest = Manifest.load(folder)
        remove_stale_generations(folder, keep=manifest.segments)
        with IndexReader(folder) as reader:
            reader.check()  # never merge damage into the one segment left
        compacted = compact_segments(folder, manifest)
    return len(manifest.segments), len(compacted.segments)


def lexical_tokens(paper: Paper) -> str:
    """What the whole-paper lexical index holds for a paper: its title and abstract."""
    return " ".join(tokenize(f"{paper.title or ''} {paper.abstract}"))


def fill_in_papers(folder: Path, found: dict[str, dict], lock_timeout: float = 600.0,
                   on_wait: Callable[[], None] | None = None) -> int:
    """Give the indexed papers that have a DOI but no title the title, authors, year and journal
    in `found` (DOI -> those fields), where they lack them. The abstracts, passages and vectors
    stay as they are, so nothing is re-embedded. Returns how many papers changed."""
    with write_lock(folder, lock_timeout, on_wait):
        manifest = Manifest.load(folder)
        with IndexReader(folder) as reader:
            reader.check()  # never copy damage forward
            rows = reader.papers_without_title()
        changes = [(row.id, paper, lexical_tokens(paper)) for row in rows
                   if (paper := _filled_in(row, found.get(row.doi))) is not None]
        if changes:
            commit_generation(folder, manifest, [], [], [], None, updated=changes)
    return len(changes)


def _filled_in(row, fields: dict | None) -> Paper | None:
    """The stored paper with its empty metadata taken from `fields`; None if nothing changes."""
    if not fields:
        return None
    paper = Paper(abstract=row.abstract, doi=row.doi, title=row.title or fields.get("title"),
                  authors=row.authors or fields.get("authors"), year=row.year or fields.get("year"),
                  source=row.source or fields.get("source"))
    same = (paper.title, paper.authors, paper.year, paper.source) == (row.title, row.authors, row.year, row.source)
    return None if same else paper
