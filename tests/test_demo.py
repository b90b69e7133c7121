"""README's first command, scripts/demo.sh, run as a user runs it (set-up already done by the
test command): each corpus gets its own index folder, and the answer names its source."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEA_RAG_DEMO_DIR": str(tmp_path / "demo")}
    env.pop("HEA_RAG_INDEX")  # the demo picks its folder per corpus unless told otherwise
    return subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_demo_keeps_each_corpus_in_its_own_index(tmp_path, corpus_csv):
    sample = run_demo(tmp_path)
    assert sample.returncode == 0, sample.stderr
    lines = sample.stdout.strip().splitlines()
    assert lines[0].strip(), sample.stdout  # the answer
    assert any("NbMoTaW" in line for line in lines[1:]), sample.stdout  # its cited note

    other = run_demo(tmp_path, str(corpus_csv), "What is the hardness of NbMoTaW films?")
    assert other.returncode == 0, other.stderr
    folders = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert folders == ["papers_a", "sample_corpus"]
    assert "added 18 papers" in sample.stderr and "18 papers in the index" in sample.stderr
    assert "12 papers in the index" in other.stderr  # the sample notes are not in it
