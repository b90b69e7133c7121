"""A writer killed at any point leaves the index as it was: same searches, same answers.

A real `python -m hea_rag index B` is started on an index built from file A, then killed with
SIGKILL once its new generation is being written (or interrupted with SIGINT while it embeds).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.indexer import index_paths

B_PAPERS = 200
B_SEED = 7
QUERIES = [
    "compressive yield strength of CrMoNbTa0.5V at 1500 °C",
    "NiFeCrCoAl0.3 grain size after rolling",
    "hardness of high-entropy carbide ceramics",
    "laser powder bed fusion of CoCrFeNi",
    "hydrogen in a BCC refractory alloy",
]
ATTEMPTS = 3
EMBEDDING_UNDER_WAY_CPU_S = 4.5


@pytest.fixture(scope="module")
def base(tmp_path_factory, embedder, corpus_csv):
    """Index A (the invented corpus), built once; tests work on copies of it. On the torch
    backend: the mapping of its weights file tells `model_loaded` that embedding is under way
    (the ONNX backends embed file B in less CPU time than the check's fallback waits for)."""
    folder = tmp_path_factory.mktemp("crash") / "index-a"
    index_paths([str(corpus_csv)], folder, backend="torch")
    return folder


@pytest.fixture(scope="module")
def file_b(tmp_path_factory, csv_writer, paper_generator):
    return csv_writer(tmp_path_factory.mktemp("crash-b") / "papers_b.csv",
                      paper_generator(B_PAPERS, seed=B_SEED))


@pytest.fixture(scope="module")
def base_results(base):
    return searches(base)


def searches(folder: Path) -> dict[str, str]:
    """The JSON Lines output of `hea-rag search --json` for QUERIES, in each mode."""
    results = {}
    for mode in ("hybrid", "lexical", "dense"):
        result = CliRunner().invoke(
            cli, ["search", "--json", "-k", "5", "--mode", mode, "--index", str(folder)],
            input="\n".join(QUERIES) + "\n",
        )
        assert result.exit_code == 0, result.output
        assert len(result.stdout.splitlines()) == 5 * len(QUERIES)
        results[mode] = result.stdout
    return results


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def start_indexing(folder: Path, path: Path) -> subprocess.Popen:
    # the child gets the default Ctrl-C handling a user's shell gives it: a test run started as
    # a background job (`cmd &`) has SIGINT ignored, and a child would inherit that
    return subprocess.Popen(
        [sys.executable, "-m", "hea_rag", "index", str(path), "--index", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(process: subprocess.Popen, ready, timeout: float = 400.0, pause: float = 0.001) -> bool:
    """Poll `ready()` until it is true (True) or the process ends first (False)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if ready():
            return True
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the indexing run neither finished nor reached the point to stop it")
        time.sleep(pause)
    return False


def staging_appeared(folder: Path, live: str):
    def ready() -> bool:
        try:
            return any(name.startswith("gen-") and name != live for name in os.listdir(folder))
        except FileNotFoundError:
            return False

    return ready


def model_loaded(process: subprocess.Popen):
    """True once the embedder's weights are mapped: imports done, embedding under way."""
    watched = psutil.Process(process.pid)

    def ready() -> bool:
        try:
            if any("model.safetensors" in m.path for m in watched.memory_maps()):
                return True
            # a load from a warm page cache can map and unmap the file between two polls; by
            # this much CPU time the imports (about 3 s) are done and embedding is under way
            times = watched.cpu_times()
            return times.user + times.system > EMBEDDING_UNDER_WAY_CPU_S
        except psutil.Error:
            return False

    return ready


def test_sigkill_while_committing_leaves_the_index_as_it_was(base, base_results, file_b, tmp_path):
    live = manifest(base)["generation"]
    for attempt in range(ATTEMPTS):
        folder = tmp_path / f"index-{attempt}"
        shutil.copytree(base, folder)
        process = start_indexing(folder, file_b)
        caught = wait_for(process, staging_appeared(folder, live))
        if caught:
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        if caught and manifest(folder)["generation"] == live:
            break  # killed after the new generation was started and before it was committed
    else:
        pytest.fail(f"in {ATTEMPTS} tries the run always finished before SIGKILL: make file B bigger")

    assert process.returncode == -signal.SIGKILL
    assert manifest(folder) == manifest(base)  # same generation, same counts
    leftovers = sorted(p.name for p in folder.glob("gen-*") if p.name != live)
    assert leftovers, "the kill should have left the unfinished generation behind"
    assert searches(folder) == base_results

    # the next run cleans up the leftover and adds B in full
    result = CliRunner().invoke(cli, ["index", str(file_b), "--no-merge", "--index", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"added {B_PAPERS} papers" in result.stderr
    after = manifest(folder)
    assert after["counts"]["papers"] == manifest(base)["counts"]["papers"] + B_PAPERS
    assert after["generation"] != live
    # the leftover is gone; B is a segment of its own beside A's
    assert sorted(p.name for p in folder.glob("gen-*")) == after["segments"] == [live, after["generation"]]
    found = CliRunner().invoke(
        cli, ["search", "sample 7-123", "--json", "-k", "1", "--mode", "lexical", "--index", str(folder)]
    )
    assert json.loads(found.stdout)["doi"] == f"10.9998/gen.{B_SEED}.00123"
    # and A's papers are all still there, with the same top answers in lexical mode for A's formulas
    hits = CliRunner().invoke(cli, ["search", QUERIES[0], "--json", "-k", "1", "--index", str(folder)])
    assert json.loads(hits.stdout)["doi"] == "10.9999/fake.2024.001"


def test_sigint_exits_130_and_leaves_the_index_usable(base, base_results, file_b, tmp_path, corpus_csv):
    live = manifest(base)["generation"]
    for attempt in range(ATTEMPTS):
        folder = tmp_path / f"index-{attempt}"
        shutil.copytree(base, folder)
        process = start_indexing(folder, file_b)
        caught = wait_for(process, model_loaded(process), pause=0.02)
        if caught:
            process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
        if caught and process.returncode != 0:
            break
    else:
        pytest.fail(f"in {ATTEMPTS} tries the run always finished before SIGINT: make file B "
                    f"bigger (last exit {process.returncode}, caught {caught}, "
                    f"SIGINT here: {signal.getsignal(signal.SIGINT)})")

    assert process.returncode == 130, stderr
    assert stdout == ""
    assert stderr.strip().splitlines()[-1] == "hea-rag: error: interrupted"
    assert "Traceback" not in stderr
    assert manifest(folder) == manifest(base)
    assert searches(folder) == base_results
    # the lock was released with the process: a writer gets it at once
    summary = index_paths([str(corpus_csv)], folder, lock_timeout=0)
    assert summary.added == 0 and summary.duplicates == manifest(base)["counts"]["papers"]
