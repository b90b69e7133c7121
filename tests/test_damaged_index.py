"""A damaged index (bug 9): every kind of damage gives one line naming the damaged file and the
fix, a non-zero exit, and never a changed index; `index --rebuild` repairs it; `info` checks it.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.indexer import index_paths
from hea_rag.store import FORMAT_VERSION

QUERY = "compressive yield strength of CrMoNbTa0.5V at 1500 °C"
MONBVTACR_DOI = "10.9999/fake.2024.001"


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder, corpus_csv) -> Path:
    """The invented corpus indexed once; tests damage copies of it."""
    folder = tmp_path_factory.mktemp("damage") / "index"
    index_paths([str(corpus_csv)], folder)
    return folder


@pytest.fixture
def index(built, tmp_path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(built, target)
    return target


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def live_file(folder: Path, name: str) -> Path:
    return folder / manifest(folder)["generation"] / name


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of the index, to show that a refused command changed nothing."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("hea-rag: error: "), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], result.stderr
    return lines[-1]


def assert_refused_everywhere(folder: Path, damaged: Path, *fragments: str) -> None:
    """search, index and info all name the damaged file and the fix, and change nothing."""
    before = snapshot(folder)
    fix = f"hea-rag index --rebuild --index {folder}"
    for args in (["search", QUERY], ["index", str(folder.parent / "more.csv")], ["info"]):
        result = run_cli(*args, "--index", folder)
        assert_one_line_error(result, str(damaged), fix, *fragments)
        assert result.stdout == "" or args[0] == "info"
    assert snapshot(folder) == before


def assert_rebuilt(folder: Path, papers: int = 12) -> None:
    result = run_cli("index", "--rebuild", "--index", folder)
    assert result.exit_code == 0, result.output
    assert f"rebuilt from {papers} stored papers" in result.stderr
    assert_sound(folder, papers)


def assert_sound(folder: Path, papers: int = 12) -> None:
    data = manifest(folder)
    assert data["counts"]["papers"] == papers and data["format_version"] == FORMAT_VERSION
    assert sorted(p.name for p in folder.glob("gen-*")) == [data["generation"]]
    info = run_cli("info", "--index", folder)
    assert info.exit_code == 0, info.output
    assert "integrity  " in info.stdout and info.stdout.split("integrity")[1].split()[0] == "OK"
    hit = json.loads(run_cli("search", QUERY, "--json", "-k", "1", "--index", folder).stdout)
    assert hit["doi"] == MONBVTACR_DOI


@pytest.fixture(autouse=True)
def more_papers_file(index, more_csv):
    """`index` commands in these tests add this file, beside the index folder."""
    shutil.copy(more_csv, index.parent / "more.csv")


# --- manifest.json --------------------------------------------------------------------------


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],  # truncated
    lambda text: "\x00\xff garbage \x1b",
    lambda text: "",
    lambda text: json.dumps({**json.loads(text), "generation": "../../elsewhere"}),
    lambda text: json.dumps({**json.loads(text), "counts": "many"}),
    lambda text: "[1, 2, 3]",
], ids=["truncated", "garbage", "empty", "generation-outside", "counts-malformed", "not-an-object"])
def test_damaged_manifest(index, damage):
    path = index / "manifest.json"
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    assert_refused_everywhere(index, path, "manifest.json")
    assert_rebuilt(index)  # from the generation folder that holds the papers


# --- index.sqlite ---------------------------------------------------------------------------


def overwrite_tables(db_path: Path, keep: set[str]) -> None:
    """Overwrite the root page of every table and index of the database except those in `keep`,
    as a disk or a careless copy would: the file is still there, its pages are garbage."""
    with sqlite3.connect(db_path) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
        roots = [page for name, page in db.execute("SELECT name, rootpage FROM sqlite_master")
                 if page and name not in keep]
    db.close()
    with open(db_path, "r+b") as handle:
        for page in roots:
            handle.seek((page - 1) * size)
            handle.write(b"\xa5" * size)


def test_overwritten_sqlite_pages_are_found_and_rebuilt_from_the_papers_table(index):
    path = live_file(index, "index.sqlite")
    overwrite_tables(path, keep={"papers"})
    assert_refused_everywhere(index, path, "index.sqlite")
    lexical = run_cli("search", QUERY, "--mode", "lexical", "--index", index)
    assert_one_line_error(lexical, str(path), "damaged", "--rebuild")
    info = run_cli("info", "--index", index)
    assert "quick_check" in info.stderr and "FAILED" in info.stdout
    assert_rebuilt(index)  # the papers table was intact: every paper is back


def test_sqlite_that_is_no_database(index):
    path = live_file(index, "index.sqlite")
    path.write_bytes(b"\x00" * 100 + path.read_bytes()[100:])  # the header overwritten
    assert_refused_everywhere(index, path, "index.sqlite", "not a database")


def test_unreadable_stored_papers_ask_for_the_original_files(index, corpus_csv):
    path = live_file(index, "index.sqlite")
    overwrite_tables(path, keep=set())
    before = snapshot(index)
    result = run_cli("index", "--rebuild", "--index", index)
    assert_one_line_error(result, str(path), "stored papers cannot be read",
                          f"give the original files: `hea-rag index --rebuild --index {index} PATHS...`")
    assert snapshot(index) == before

    result = run_cli("index", "--rebuild", corpus_csv, "--index", index)
    assert result.exit_code == 0, result.output
    assert "rebuilt from 0 stored papers, added 12 papers" in result.stderr
    assert f"skipped {path}: the stored papers cannot be read" in result.stderr
    assert_sound(index)


# --- vectors.faiss --------------------------------------------------------------------------


def test_missing_vectors_file(index):
    path = live_file(index, "vectors.faiss")
    path.unlink()
    assert_refused_everywhere(index, path, "vectors.faiss", "missing")
    assert_rebuilt(index)


def test_garbage_vectors_file(index):
    path = live_file(index, "vectors.faiss")
    path.write_bytes(b"not a faiss index at all" * 10)
    assert_refused_everywhere(index, path, "vectors.faiss", "not a readable FAISS index")
    assert_rebuilt(index)


def test_vectors_of_another_index(index, tmp_path, more_csv):
    other = tmp_path / "other"
    index_paths([str(more_csv)], other)  # 2 papers: fewer vectors than this index has passages
    path = live_file(index, "vectors.faiss")
    shutil.copy(live_file(other, "vectors.faiss"), path)
    assert_refused_everywhere(index, path, "vectors.faiss", "vectors, manifest.json")
    assert_rebuilt(index)


# --- postings (the lexical search's arrays) ---------------------------------------------------


def test_missing_postings_file(index):
    path = live_file(index, "passages_fts.rows.npy")
    path.unlink()
    assert_refused_everywhere(index, path, "missing")
    assert_rebuilt(index)


def test_garbage_postings_file(index):
    path = live_file(index, "papers_fts.counts.npy")
    path.write_bytes(b"not an array" * 10)
    assert_refused_everywhere(index, path, "not readable postings")
    assert_rebuilt(index)


def test_cut_short_postings_file(index):
    path = live_file(index, "papers_fts.rows.npy")
    path.write_bytes(path.read_bytes()[:-40])
    assert_refused_everywhere(index, path, "not readable postings", "cut short")
    assert_rebuilt(index)


def test_postings_of_another_index(index, tmp_path, more_csv):
    other = tmp_path / "other"
    index_paths([str(more_csv)], other)  # fewer papers: postings of fewer rows
    for name in ("rowids", "lengths"):
        shutil.copy(live_file(other, f"papers_fts.{name}.npy"), live_file(index, f"papers_fts.{name}.npy"))
    assert_refused_everywhere(index, live_file(index, "papers_fts.rowids.npy"), "postings of 4 rows",
                              "index.sqlite holds 12")
    assert_rebuilt(index)


# --- an older format ------------------------------------------------------------------------


def test_older_format_is_refused_with_the_fix_and_rebuilt(index):
    data = manifest(index)
    data["format_version"] = 1  # format 1 had the same schema, other lexical tokens
    (index / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    result = run_cli("search", QUERY, "--index", index)
    assert_one_line_error(result, "manifest.json", "index format 1", f"hea-rag index --rebuild --index {index}")
    info = run_cli("info", "--index", index)
    assert_one_line_error(info, "index format 1, this version reads 2, 3", "--rebuild")
    assert "gen-000001 (format 1)" in info.stdout
    assert_rebuilt(index)
    assert manifest(index)["generation"] == "gen-000002"


def test_rebuild_can_add_files_and_change_the_chunking(index, more_csv):
    result = run_cli("index", "--rebuild", more_csv, "--chunk-tokens", "64", "--index", index)
    assert result.exit_code == 0, result.output
    assert "rebuilt from 12 stored papers, added 2 papers" in result.stderr
    assert "2 duplicates" in result.stderr
    assert manifest(index)["chunking"]["max_tokens"] == 64
    assert_sound(index, papers=14)


def test_rebuild_of_nothing(tmp_path):
    result = run_cli("index", "--rebuild", "--index", tmp_path / "empty")
    assert_one_line_error(result, "no stored papers")


# --- a read-only index folder ---------------------------------------------------------------


def _without_root_overrides() -> None:
    """In the child, before exec: drop the capabilities that let root write anywhere
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), so file modes apply to it too."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def hea_rag(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hea_rag", *map(str, args)], capture_output=True,
                          text=True, timeout=300,
                          preexec_fn=_without_root_overrides if os.geteuid() == 0 else None)


def test_read_only_folder_searches_but_refuses_writes(index, more_csv):
    paths = [index, *index.rglob("*")]
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        found = hea_rag("search", QUERY, "--json", "-k", "1", "--index", index)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["doi"] == MONBVTACR_DOI
        for args in (["index", more_csv], ["index", "--rebuild"]):
            refused = hea_rag(*args, "--index", index)
            assert refused.returncode == 1, refused.stderr
            line = refused.stderr.strip()
            assert line == (f"hea-rag: error: {index}: the index folder is not writable: fix its "
                            "permissions, or index into another folder with --index")
        assert hea_rag("info", "--index", index).returncode == 0
    finally:
        for path in paths:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert_sound(index)


def test_deleted_manifest_keeps_the_generations_for_rebuild(index):
    """A lost manifest.json is damage, not a new index: `index` must not sweep the generation
    that holds the papers away as a leftover."""
    path = index / "manifest.json"
    path.unlink()
    assert_refused_everywhere(index, path, "missing, while gen-")
    assert_rebuilt(index)
