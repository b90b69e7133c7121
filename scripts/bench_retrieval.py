"""Retrieval benchmark: index the shared Scopus CSV, then run the dev QA questions.

    .venv/bin/python scripts/bench_retrieval.py            # prints markdown tables
    HEA_RAG_SHARED=/path/to/shared .venv/bin/python scripts/bench_retrieval.py

A hit is a retrieved paper built from the CSV row whose whitespace-normalized abstract has the
question's `abstract_sha1` (the index stores cleaned abstracts, so rows are mapped to papers
through the project's own reader and dedup keys). Prints Recall@1/3/5/10 and MRR for dense-only,
lexical-only and hybrid, indexing throughput, warm query latency, index size and peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402

KS = (1, 3, 5, 10)


def main() -> None:
    shared = shared_dir(ROOT)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=shared / "data/hea_qa/Scopus_Abstracts_Dataset.csv")
    parser.add_argument("--qa", type=Path, default=shared / "bench/dev_qa.jsonl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(args.csv, args.qa, Path(tmp))


def run(csv_path: Path, qa_path: Path, tmp: Path) -> None:
    from hea_rag.embedder import load_embedder
    from hea_rag.indexer import index_paths
    from hea_rag.retrieve import Retriever
    from hea_rag.store import IndexReader

    # Child processes first: a child's peak RSS starts from the parent's at fork time, so the
    # parent must not have loaded any model yet.
    processes = process_costs(csv_path, qa_path, tmp)
    folder = tmp / "index"
    summary = index_paths([str(csv_path)], folder)
    questions = [json.loads(line) for line in qa_path.read_text(encoding="utf-8").splitlines()]
    with IndexReader(folder) as reader:
        gold = gold_papers(csv_path, reader)
        retriever = Retriever(reader, load_embedder(reader.manifest.embedder))
        rows = {mode: recall_table(retriever, questions, gold, mode)
                for mode in ("dense", "lexical", "hybrid")}
        latencies = query_latencies(retriever, [q["question"] for q in questions])
    print_quality(rows)
    print_costs(summary, latencies, folder, processes)


def gold_papers(csv_path: Path, reader) -> dict[str, int]:
    """abstract_sha1 of each raw CSV row -> id of the index paper that row became."""
    from hea_rag.ingest import Paper, read_path

    with open(csv_path, encoding="utf-8-sig", newline="") as handle:
        raw = [" ".join(row["Abstract"].split()) for row in csv.DictReader(handle)]
    papers = [r for r in read_path(str(csv_path)) if isinstance(r, Paper)]
    assert len(papers) == len(raw), "every row of the benchmark CSV should read as a paper"
    by_key = dict(reader.db.execute("SELECT text_key, id FROM papers"))
    by_doi = dict(reader.db.execute("SELECT doi, id FROM papers WHERE doi IS NOT NULL"))
    return {
        hashlib.sha1(text.encode()).hexdigest(): by_key.get(paper.text_key) or by_doi[paper.doi]
        for text, paper in zip(raw, papers)
    }


def recall_table(retriever, questions, gold, mode) -> dict[str, dict[str, float]]:
    ranks: dict[str, list[int | None]] = {"all": [], "train": [], "heldout": []}
    for question in questions:
        hits = retriever.search(question["question"], k=max(KS), mode=mode)
        target = gold[question["abstract_sha1"]]
        rank = next((hit.rank for hit in hits if hit.paper.id == target), None)
        ranks["all"].append(rank)
        ranks.setdefault(question.get("split", "all"), []).append(rank)
    return {split: metrics(values) for split, values in ranks.items() if values}


def metrics(ranks: list[int | None]) -> dict[str, float]:
    result = {f"R@{k}": sum(1 for r in ranks if r and r <= k) / len(ranks) for k in KS}
    result["MRR"] = sum(1 / r for r in ranks if r) / len(ranks)
    result["n"] = len(ranks)
    return result


def query_latencies(retriever, questions: list[str]) -> list[float]:
    retriever.search(questions[0])  # warm-up: first-call allocations are not "warm"
    timings = []
    for question in questions:
        started = time.perf_counter()
        retriever.search(question, k=5)
        timings.append(time.perf_counter() - started)
    return timings


def peak_rss_mb(args: list[str], stdin_text: str | None = None) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one `hea-rag ARGS` process. The peak is the child's own
    VmHWM, written by it at exit (PEAK_REPORTER): the rusage of a child counts the memory of the
    parent it was spawned from (Linux keeps the larger high-water mark across exec), which made
    a search started by a benchmark holding a million vectors look as big as the benchmark."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "peak"
        env = {**os.environ, "HEA_RAG_PEAK_FILE": str(report)}
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", PEAK_REPORTER, *args], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                                   env=env, cwd=ROOT)
        if stdin_text is not None:
            process.stdin.write(stdin_text)
        process.stdin.close()
        if process.wait() != 0:
            raise SystemExit(f"hea-rag {' '.join(args)} failed")
        return int(report.read_text()) / 1024, time.perf_counter() - started


# `hea-rag ARGS` in this interpreter, writing its peak resident memory (kB) to $HEA_RAG_PEAK_FILE
# when it exits.
PEAK_REPORTER = """
import atexit, os, sys
def report():
    peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    open(os.environ["HEA_RAG_PEAK_FILE"], "w").write(peak)
atexit.register(report)
sys.argv[0] = "hea-rag"
from hea_rag.cli import main
main()
"""


def print_quality(rows) -> None:
    print("\n## Retrieval quality on dev_qa (gold = the paper the answer comes from)\n")
    print("| split | method | n | R@1 | R@3 | R@5 | R@10 | MRR |")
    print("|---|---|---|---|---|---|---|---|")
    for split in ("all", "train", "heldout"):
        for mode, table in rows.items():
            m = table[split]
            print(f"| {split} | {mode} | {m['n']} | " + " | ".join(
                f"{m[key]:.3f}" for key in ("R@1", "R@3", "R@5", "R@10", "MRR")) + " |")


def process_costs(csv_path: Path, qa_path: Path, tmp: Path) -> dict[str, float]:
    index_rss, index_wall = peak_rss_mb(["index", str(csv_path), "--index", str(tmp / "cli")])
    questions = "\n".join(json.loads(l)["question"] for l in qa_path.read_text().splitlines())
    search_rss, _ = peak_rss_mb(["search", "--json", "--index", str(tmp / "cli")], questions)
    help_seconds = min(peak_rss_mb(["--help"])[1] for _ in range(5))
    return {"index_rss": index_rss, "index_wall": index_wall, "search_rss": search_rss,
            "help_seconds": help_seconds}


def print_costs(summary, latencies, folder, processes) -> None:
    index_rss, index_wall = processes["index_rss"], processes["index_wall"]
    search_rss, help_seconds = processes["search_rss"], processes["help_seconds"]
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    ms = sorted(t * 1000 for t in latencies)
    print("\n## Cost\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| papers indexed | {summary.added} ({summary.passages} passages, {summary.duplicates} duplicates) |")
    print(f"| indexing, in process, excluding model load | {summary.added / (summary.seconds - summary.load_seconds):.1f} abstracts/s |")
    print(f"| indexing, in process, including model load ({summary.load_seconds:.1f} s) | {summary.added / summary.seconds:.1f} abstracts/s |")
    print(f"| `hea-rag index` CLI, wall (process start to exit) | {index_wall:.1f} s |")
    print(f"| warm hybrid search latency p50 / p95 | {statistics.median(ms):.1f} / {ms[int(0.95 * len(ms))]:.1f} ms |")
    print(f"| `hea-rag --help` (best of 5) | {help_seconds:.2f} s |")
    print(f"| index size on disk | {size / 1e6:.1f} MB |")
    print(f"| peak RSS of `hea-rag index` over the CSV | {index_rss:.0f} MB |")
    print(f"| peak RSS of a warm `hea-rag search` over all {len(latencies)} questions | {search_rss:.0f} MB |")


if __name__ == "__main__":
    main()
