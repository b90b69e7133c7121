"""`hea-rag info`: readable aligned lines (or one JSON object) and an integrity check."""

from __future__ import annotations

import json
import re
from importlib import metadata

import pytest
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.indexer import index_paths


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder, corpus_csv):
    folder = tmp_path_factory.mktemp("info") / "index"
    summary = index_paths([str(corpus_csv)], folder)
    return folder, summary


def run_info(*args):
    return CliRunner().invoke(cli, ["info", *map(str, args)])


def sections(text: str) -> dict[str, dict[str, str]]:
    """{section: {label: value}} of info's text output, checking its layout on the way."""
    found: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.startswith(" "):
            found[line] = current = {}
            continue
        label, value = re.fullmatch(r"  (\S.*?)  +(\S.*)", line).groups()
        current[label] = value
    return found


def test_info_text_is_readable_and_aligned(built):
    folder, summary = built
    result = run_info("--index", folder)
    assert result.exit_code == 0, result.output
    assert "{" not in result.stdout and "'" not in result.stdout  # no Python reprs
    shown = sections(result.stdout)
    assert list(shown) == ["index", "versions", "device"]
    assert shown["index"] == {
        "path": str(folder.resolve()),
        "papers": "12",
        "passages": str(summary.passages),
        "embedder": "all-MiniLM-L6-v2 (384 dimensions)",
        "chunking": "at most 200 tokens per passage, 0 sentence(s) of overlap",
        "generation": "gen-000001 (format 3)",
        "segments": "1 (vectors: flat below 50000 passages, PQ above)",
        "integrity": "OK",
    }
    assert shown["versions"]["faiss-cpu"] == metadata.version("faiss-cpu")
    assert shown["device"]["4-bit (bitsandbytes)"] in ("yes", "no")
    columns = {len(re.match(r"  \S.*?  +", line).group())
               for line in result.stdout.splitlines() if line.startswith("  ")}
    assert len(columns) == 1  # every value starts in the same column


def test_info_json_is_one_object_with_the_integrity_verdict(built):
    folder, summary = built
    result = run_info("--json", "--index", folder)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["index"]["integrity"] == "ok" and info["index"]["problems"] == []
    assert info["index"]["counts"] == {"papers": 12, "passages": summary.passages}
    assert info["index"]["generation"] == "gen-000001"


def test_info_json_on_a_damaged_index_names_the_problem_and_fails(built, tmp_path):
    import shutil

    folder = tmp_path / "index"
    shutil.copytree(built[0], folder)
    (folder / "gen-000001" / "vectors.faiss").unlink()
    result = run_info("--json", "--index", folder)
    assert result.exit_code == 1
    index = json.loads(result.stdout)["index"]
    assert index["integrity"] == "failed"
    assert index["problems"] == [f"{folder / 'gen-000001' / 'vectors.faiss'}: missing"]
    assert result.stderr.strip() == (
        f"hea-rag: error: index check failed: {folder / 'gen-000001' / 'vectors.faiss'}: missing; "
        f"run `hea-rag index --rebuild --index {folder.resolve()}`")
