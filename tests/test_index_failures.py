"""`hea-rag index` failures that used to mislead (bug 10) or run away (bug 8): a path with no
papers fails, the summary says what was added, an embedder that cannot be had fails at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.ingest.records import MAX_ABSTRACT_CHARS


def run_cli(*args, input: str | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def last_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    return lines[-1]


@pytest.mark.parametrize("content", ["", "Title,DOI,Abstract\n"], ids=["empty", "header-only"])
def test_a_file_with_no_papers_fails_and_nothing_is_claimed(tmp_path, content):
    path = tmp_path / "papers.csv"
    path.write_text(content, encoding="utf-8")
    folder = tmp_path / "index"
    result = run_cli("index", path, "--index", folder)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "added 0 papers" in result.stderr and "1 failed" in result.stderr
    assert f"failed {path}: no papers found" in result.stderr
    assert last_line(result) == "hea-rag: error: 1 file(s) or row(s) failed (listed above); nothing was added"
    assert not (folder / "manifest.json").exists()


def test_stdin_with_no_papers_fails(tmp_path):
    result = run_cli("index", "-", "--index", tmp_path / "index", input="\n\n")
    assert result.exit_code == 1
    assert "failed <stdin>: no papers found" in result.stderr


def test_summary_says_how_many_were_added_beside_a_failure(tmp_path, corpus_csv):
    empty = tmp_path / "empty.csv"
    empty.write_text("Title,DOI,Abstract\n", encoding="utf-8")
    result = run_cli("index", corpus_csv, empty, "--index", tmp_path / "index")
    assert result.exit_code == 1
    assert last_line(result) == ("hea-rag: error: 1 file(s) or row(s) failed (listed above); "
                                 "12 new papers were added")
    assert "the rest was indexed" not in result.stderr


def test_runaway_file_is_skipped_with_its_length_and_fails(tmp_path):
    path = tmp_path / "runaway.txt"
    path.write_text("A" * (MAX_ABSTRACT_CHARS + 1), encoding="utf-8")  # one line, one "word"
    result = run_cli("index", path, "--index", tmp_path / "index")
    assert result.exit_code == 1
    assert (f"skipped {path}: abstract of 100,001 characters is longer than the 100,000 an "
            "abstract may have") in result.stderr
    assert f"failed {path}: no papers found" in result.stderr


# --- an embedder that cannot be had -----------------------------------------------------------


@pytest.mark.parametrize("name", ["./no/such/model", "/no/such/model", "~/no-such-model",
                                  "models/minilm/v2"])
def test_missing_local_embedder_folder(tmp_path, corpus_csv, name):
    folder = tmp_path / "index"
    result = run_cli("index", corpus_csv, "--index", folder, "--embedder", name)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"hea-rag: error: embedder '{name}': no such folder (give a sentence-transformers model "
        "folder, a hub id, or drop --embedder for all-MiniLM-L6-v2)")
    assert not (folder / "manifest.json").exists()


def test_hub_embedder_without_a_reachable_hub_fails_at_once(tmp_path, corpus_csv):
    """No retries, no hub-client logs, nothing left in the cache: one line naming the fix. The
    hub endpoint is a local port nothing listens on, so the test means the same everywhere."""
    home = tmp_path / "hf-home"
    env = {**os.environ, "HF_HOME": str(home), "HF_ENDPOINT": "http://127.0.0.1:9"}
    env.pop("HF_HUB_OFFLINE", None)
    done = subprocess.run(
        [sys.executable, "-m", "hea_rag", "index", str(corpus_csv), "--index",
         str(tmp_path / "index"), "--embedder", "some-org/not-cached-model"],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "hea-rag: error: embedder 'some-org/not-cached-model' is not in the local cache and the "
        "hub cannot be reached: download it where there is network (`hf download "
        "some-org/not-cached-model`) and copy ~/.cache/huggingface here, give a local folder, "
        "or use all-MiniLM-L6-v2")
    left = [str(p.relative_to(home)) for p in home.rglob("*")] if home.exists() else []
    assert not [p for p in left if "not-cached-model" in p], left


def test_local_embedder_folder_is_used(tmp_path, corpus_csv, embedder):
    """A path-like name that exists is loaded from there, and recorded as given."""
    from hea_rag.embedder import resolve_model_path

    local = tmp_path / "models" / "minilm"
    local.parent.mkdir()
    local.symlink_to(Path(resolve_model_path("all-MiniLM-L6-v2")), target_is_directory=True)
    folder = tmp_path / "index"
    result = run_cli("index", corpus_csv, "--index", folder, "--embedder", str(local))
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "manifest.json").read_text())["embedder"] == str(local)
