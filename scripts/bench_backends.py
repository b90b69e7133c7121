"""Embedder backends compared: indexing speed and retrieval quality on dev_qa, one backend each.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_backends.py
    .venv/bin/python scripts/bench_backends.py --backends torch onnx-int8

For each backend (`hea-rag index --embedder-backend`): a fresh index of the shared Scopus CSV,
timed end to end in one fresh process (reading, chunking, embedding, committing; the model load,
including a first-use ONNX export, shown apart), then Recall@1/@5 of the dev_qa questions, hybrid
and dense, with the query encoder of the same backend. A backend is accepted when its hybrid R@1
and R@5 are within 0.005 of torch's. The exported models are cached, so each backend is run once
beforehand to leave the export out of the timing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402
from hea_rag.onnx_encoder import BACKENDS  # noqa: E402

TOLERANCE = 0.005


def main() -> None:
    shared = shared_dir(ROOT)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=shared / "data/hea_qa/Scopus_Abstracts_Dataset.csv")
    parser.add_argument("--qa", type=Path, default=shared / "bench/dev_qa.jsonl")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child: measure one backend
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.csv, args.qa)))
        return
    rows = [json.loads(subprocess.run([sys.executable, __file__, "--one", backend, "--csv", str(args.csv),
                                       "--qa", str(args.qa)], check=True, capture_output=True,
                                      text=True).stdout.splitlines()[-1]) for backend in args.backends]
    print_table(rows)


def measure(backend: str, csv_path: Path, qa_path: Path) -> dict:
    from hea_rag.embedder import load_embedder
    from hea_rag.indexer import index_paths
    from hea_rag.retrieve import Retriever
    from hea_rag.store import IndexReader
    from scripts.bench_retrieval import gold_papers, recall_table

    load_embedder(backend=backend)  # export and cache the model first: a one-time cost
    questions = [json.loads(line) for line in qa_path.read_text(encoding="utf-8").splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        summary = index_paths([str(csv_path)], Path(tmp) / "index", backend=backend)
        with IndexReader(Path(tmp) / "index") as reader:
            retriever = Retriever(reader, load_embedder(reader.manifest.embedder, backend))
            gold = gold_papers(csv_path, reader)
            quality = {mode: recall_table(retriever, questions, gold, mode)["all"]
                       for mode in ("hybrid", "dense")}
    return {"backend": backend, "papers": summary.added, "passages": summary.passages,
            "seconds": summary.seconds, "load": summary.load_seconds, "quality": quality}


def print_table(rows: list[dict]) -> None:
    reference = next((r["quality"]["hybrid"] for r in rows if r["backend"] == "torch"), None)
    print("| backend | abstracts/s (end to end) | excluding model load | model load (s) "
          "| hybrid R@1 | hybrid R@5 | dense R@1 | dense R@5 | accepted |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        hybrid, dense = row["quality"]["hybrid"], row["quality"]["dense"]
        accepted = "reference" if row["backend"] == "torch" else "n/a (no torch row)"
        if reference and row["backend"] != "torch":
            close = all(abs(hybrid[k] - reference[k]) <= TOLERANCE for k in ("R@1", "R@5"))
            accepted = "yes" if close else "no"
        print(f"| {row['backend']} | {row['papers'] / row['seconds']:.1f} "
              f"| {row['papers'] / (row['seconds'] - row['load']):.1f} | {row['load']:.1f} "
              f"| {hybrid['R@1']:.3f} | {hybrid['R@5']:.3f} | {dense['R@1']:.3f} | {dense['R@5']:.3f} "
              f"| {accepted} |")


if __name__ == "__main__":
    main()
