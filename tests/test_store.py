"""The on-disk index: manifest, incremental adds, dedup, settings checks, the write lock."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hea_rag.chunking import ChunkingParams
from hea_rag.errors import IndexBusyError, IndexMismatchError, IndexMissingError
from hea_rag.indexer import index_paths
from hea_rag.ingest.records import text_key
from hea_rag.store import FORMAT_VERSION, IndexReader, Manifest


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder, corpus_csv):
    """The invented corpus indexed once for this module: (folder, summary). Do not modify it."""
    folder = tmp_path_factory.mktemp("store") / "index"
    summary = index_paths([str(corpus_csv)], folder)
    return folder, summary


@pytest.fixture
def index_copy(built, tmp_path) -> Path:
    """A private copy of the module's index, for tests that add to it."""
    target = tmp_path / "index"
    shutil.copytree(built[0], target)
    return target


def manifest_json(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def generations(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("gen-*"))


def all_passages(folder: Path) -> list[tuple[int, int, int, str]]:
    with IndexReader(folder) as reader:
        return list(reader.db.execute("SELECT id, paper_id, position, text FROM passages ORDER BY id"))


def all_papers(folder: Path) -> list[tuple]:
    with IndexReader(folder) as reader:
        return list(reader.db.execute("SELECT id, doi, text_key, title, year, abstract FROM papers ORDER BY id"))


# --- a new index --------------------------------------------------------------------------


def test_first_index_summary(built, hea_papers):
    _, summary = built
    assert summary.added == len(hea_papers) == 12
    assert summary.duplicates == 0
    assert summary.skipped == [] and summary.failed == []
    assert summary.papers_total == 12
    assert summary.passages > summary.added  # the long paper is cut into several passages


def test_manifest_content(built):
    folder, summary = built
    data = manifest_json(folder)
    assert data["embedder"] == "all-MiniLM-L6-v2"
    assert data["dimension"] == 384
    assert data["chunking"] == {"max_tokens": 200, "overlap_sentences": 0}
    assert data["format_version"] == FORMAT_VERSION == 3
    assert data["segments"] == ["gen-000001"]
    assert data["counts"] == {"papers": 12, "passages": summary.passages}
    assert data["generation"] == "gen-000001"
    assert generations(folder) == ["gen-000001"]
    assert (folder / "gen-000001" / "index.sqlite").is_file()
    assert (folder / "gen-000001" / "vectors.faiss").is_file()
    assert Manifest.load(folder).counts == data["counts"]


def test_stored_rows_match_manifest_and_vectors(built, hea_papers):
    folder, _ = built
    passages = all_passages(folder)
    papers = all_papers(folder)
    assert len(papers) == manifest_json(folder)["counts"]["papers"]
    assert len(passages) == manifest_json(folder)["counts"]["passages"]
    with IndexReader(folder) as reader:
        assert reader.vector_count == len(passages)
        vectors = reader.vectors_of(p[0] for p in passages)
    assert vectors.shape == (len(passages), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    # DOIs, titles and years come through; the paper without a DOI has NULL, not ""
    by_doi = {p[1]: p for p in papers}
    assert by_doi["10.9999/fake.2024.001"][3] == "Sintered MoNbVTa0.5Cr refractory alloy"
    assert by_doi["10.9999/fake.2024.001"][4] == 2024
    assert None in by_doi and "" not in by_doi
    # every passage is a piece of its paper's abstract, in order (spaces aside: the sentence
    # splitter cuts "0.8 wt.% hydrogen" after "wt.", see test_chunking)
    abstracts = {p[0]: p[5] for p in papers}
    for paper_id in abstracts:
        texts = [t for _, pid, _, t in passages if pid == paper_id]
        assert "".join("".join(texts).split()) == "".join(abstracts[paper_id].split())
    assert {p[2] for p in papers} == {text_key(" ".join(h["Abstract"].split())) for h in hea_papers}


def test_stored_vectors_are_the_embeddings_of_the_passages(built, embedder):
    folder, _ = built
    # all of them: the indexer embeds longest first and must put each vector back in its place
    passages = all_passages(folder)
    assert len({len(p[3]) for p in passages}) > 3
    with IndexReader(folder) as reader:
        stored = reader.vectors_of(p[0] for p in passages)
    fresh = embedder.encode([p[3] for p in passages])
    assert np.allclose(stored, fresh, atol=2e-2)
    assert (np.sum(stored * fresh, axis=1) > 0.999).all()


def test_known_keys(built):
    folder, _ = built
    with IndexReader(folder) as reader:
        dois, keys = reader.known_keys()
    assert "10.9999/fake.2023.002" in dois and len(dois) == 11
    assert len(keys) == 12


# --- adding to an index -------------------------------------------------------------------


def test_reindexing_the_same_file_adds_nothing(index_copy, corpus_csv):
    before = manifest_json(index_copy)
    summary = index_paths([str(corpus_csv)], index_copy)
    assert (summary.added, summary.duplicates, summary.passages) == (0, 12, 0)
    assert summary.papers_total == 12
    assert manifest_json(index_copy) == before
    assert generations(index_copy) == [before["generation"]]


def test_second_file_adds_only_new_papers(index_copy, more_csv):
    before = manifest_json(index_copy)
    old_passages = all_passages(index_copy)
    old_papers = all_papers(index_copy)
    with IndexReader(index_copy) as reader:
        old_vectors = reader.vectors_of(p[0] for p in old_passages)

    summary = index_paths([str(more_csv)], index_copy)

    assert (summary.added, summary.duplicates) == (2, 2)  # one DOI duplicate, one text duplicate
    assert summary.papers_total == 14
    after = manifest_json(index_copy)
    assert after["generation"] == "gen-000002" != before["generation"]
    assert after["counts"]["papers"] == 14
    assert after["counts"]["passages"] == before["counts"]["passages"] + summary.passages
    assert {k: v for k, v in after.items() if k not in ("generation", "counts", "segments")} == {
        k: v for k, v in before.items() if k not in ("generation", "counts", "segments")
    }
    # the new papers are a segment of their own: the first one is not rewritten
    assert after["segments"] == generations(index_copy) == ["gen-000001", "gen-000002"]
    with IndexReader(index_copy) as reader:
        assert [s.counts() for s in reader.segments] == [
            (12, before["counts"]["passages"]), (2, summary.passages)]

    new_passages = all_passages(index_copy)
    assert new_passages[: len(old_passages)] == old_passages  # old rows keep their ids and text
    assert all_papers(index_copy)[: len(old_papers)] == old_papers
    with IndexReader(index_copy) as reader:
        assert np.array_equal(reader.vectors_of(p[0] for p in old_passages), old_vectors)
        assert reader.vector_count == len(new_passages)
        added = all_papers(index_copy)[len(old_papers):]
    assert {p[3] for p in added} == {"Hot forging of NiCoCrV", "Creep of TiZrNbHfTa"}


def test_dedup_within_one_run(tmp_path, csv_writer, hea_papers, more_papers):
    rows = hea_papers[:3] + more_papers[2:]  # paper 2 again by DOI, paper 3 again by text
    path = csv_writer(tmp_path / "dups.csv", rows)
    folder = tmp_path / "index"
    summary = index_paths([str(path)], folder)
    assert (summary.added, summary.duplicates) == (3, 2)
    with IndexReader(folder) as reader:
        titles = [r[0] for r in reader.db.execute("SELECT title FROM papers ORDER BY id")]
    assert titles == [p["Title"] for p in hea_papers[:3]]  # the first one read wins


def test_same_papers_from_two_paths_in_one_run(tmp_path, corpus_csv):
    copy = tmp_path / "again.csv"
    shutil.copy(corpus_csv, copy)
    summary = index_paths([str(corpus_csv), str(copy)], tmp_path / "index")
    assert (summary.added, summary.duplicates) == (12, 12)


def test_text_files_and_folders(tmp_path):
    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "one.txt").write_text(
        "# NbTaTiV under irradiation\n\nNbTaTiV kept its BCC lattice after 5 dpa at 500 °C.", encoding="utf-8"
    )
    (papers / "two.md").write_text("CrMnFeCoNi lost 12 % of its ductility after 1000 h at 700 °C.", encoding="utf-8")
    (papers / "empty.txt").write_text("   ", encoding="utf-8")
    summary = index_paths([str(papers)], tmp_path / "index")
    assert summary.added == 2 and len(summary.skipped) == 1
    with IndexReader(tmp_path / "index") as reader:
        titles = sorted(t or "" for (t,) in reader.db.execute("SELECT title FROM papers"))
    assert titles == ["", "NbTaTiV under irradiation"]


@pytest.mark.parametrize("name, content", [
    ("empty.csv", ""),
    ("header-only.csv", "Title,DOI,Abstract\n"),
    ("no-abstract-column.csv", "Name,Composition\nCantor,CoCrFeMnNi\n"),
    ("empty.txt", "  \n"),
    ("empty.jsonl", "\n"),
    ("papers", None),  # a folder with nothing to index in it
])
def test_a_path_with_no_papers_fails(tmp_path, corpus_csv, name, content):
    path = tmp_path / name
    if content is None:
        path.mkdir()
        (path / "notes.docx").write_bytes(b"PK\x03\x04")
    else:
        path.write_text(content, encoding="utf-8")
    summary = index_paths([str(corpus_csv), str(path)], tmp_path / "index")
    assert summary.added == 12  # the other path still counts
    assert [(f.where, f.reason) for f in summary.failed] == [(str(path), "no papers found")]


def test_a_path_of_duplicates_only_is_no_failure(index_copy, corpus_csv):
    summary = index_paths([str(corpus_csv)], index_copy)
    assert summary.failed == [] and summary.duplicates == 12


# --- settings that do not match -----------------------------------------------------------


def test_other_embedder_is_refused(index_copy, more_csv):
    before = manifest_json(index_copy)
    with pytest.raises(IndexMismatchError, match="all-MiniLM-L6-v2"):
        index_paths([str(more_csv)], index_copy, embedder_name="sentence-transformers/paraphrase-MiniLM-L3-v2")
    assert manifest_json(index_copy) == before
    assert generations(index_copy) == [before["generation"]]


def test_alias_of_the_same_embedder_is_accepted(index_copy, corpus_csv):
    summary = index_paths([str(corpus_csv)], index_copy, embedder_name="sentence-transformers/all-MiniLM-L6-v2")
    assert summary.added == 0 and summary.duplicates == 12


def test_other_chunking_is_refused(index_copy, more_csv):
    before = manifest_json(index_copy)
    with pytest.raises(IndexMismatchError, match="chunking"):
        index_paths([str(more_csv)], index_copy, chunking=ChunkingParams(max_tokens=100))
    assert manifest_json(index_copy) == before


def test_other_format_version_is_refused(index_copy):
    data = manifest_json(index_copy)
    data["format_version"] = FORMAT_VERSION + 1
    (index_copy / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="format") as error:
        IndexReader(index_copy)
    assert f"hea-rag index --rebuild --index {index_copy}" in str(error.value)


def test_missing_index(tmp_path):
    with pytest.raises(IndexMissingError, match="hea-rag index"):
        IndexReader(tmp_path / "nowhere")
    with pytest.raises(IndexMissingError):
        Manifest.load(tmp_path)


def test_readers_only_read(built):
    folder, _ = built
    with IndexReader(folder) as reader:
        with pytest.raises(sqlite3.OperationalError):
            reader.db.execute("DELETE FROM papers")


def test_lexical_search_tables(built):
    folder, _ = built
    with IndexReader(folder) as reader:
        papers = reader.lexical_search(["sys_crmonbtav"], 5)
        passages = reader.lexical_search(["sys_crmonbtav"], 5, table="passages_fts")
        assert reader.lexical_search([], 5) == []
        assert reader.lexical_search(['we"ird', "x OR y"], 5) == []  # quoted, not parsed as syntax
        assert reader.lexical_search(["monbvta0.5cr"], 5, table="no_such_table") == []
        (paper_id, score), = papers
        assert score > 0
        owner = reader.passages([passages[0][0]])[passages[0][0]][0]
        assert owner == paper_id
        assert reader.papers([paper_id])[paper_id].doi == "10.9999/fake.2024.001"


# --- one writer at a time -----------------------------------------------------------------

HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from hea_rag.store import write_lock

    with write_lock(Path(sys.argv[1]), timeout=5):
        print("locked", flush=True)
        sys.stdin.read()  # hold it until the test closes our stdin
    """
)


def test_second_writer_gets_index_busy(index_copy, more_csv, corpus_csv):
    before = manifest_json(index_copy)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(index_copy)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        waits = []
        with pytest.raises(IndexBusyError, match="lock"):
            index_paths([str(more_csv)], index_copy, lock_timeout=0.5, on_wait=lambda: waits.append(1))
        assert waits == [1]
        assert manifest_json(index_copy) == before
        assert generations(index_copy) == [before["generation"]]
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    # released: the next writer goes through
    summary = index_paths([str(corpus_csv)], index_copy, lock_timeout=5)
    assert summary.duplicates == 12


def test_lock_is_released_after_a_failure(index_copy, more_csv, corpus_csv):
    with pytest.raises(IndexMismatchError):
        index_paths([str(more_csv)], index_copy, chunking=ChunkingParams(max_tokens=64))
    summary = index_paths([str(corpus_csv)], index_copy, lock_timeout=0)
    assert summary.added == 0
