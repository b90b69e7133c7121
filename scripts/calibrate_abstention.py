"""Pick the abstention threshold: the score `ask` abstains on (answer.gate_score: the cosine of
the closest passage of the best GATE_HITS papers) that separates answerable questions (dev QA,
`train` split) from off-corpus ones (tests/data/off_corpus_questions.txt).

    .venv/bin/python scripts/calibrate_abstention.py [--index DIR]

Builds a temporary index of the shared CSV unless --index names one. Prints the score
distributions and, for candidate thresholds, the share of each set that would be refused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.answer import GATE_HITS, gate_score  # noqa: E402
from hea_rag.config import shared_dir  # noqa: E402


def gate_scores(retriever, questions: list[str], k: int) -> list[float]:
    return [gate_score(retriever.search(q, k=k)) if q else 0.0 for q in questions]


def main() -> None:
    from hea_rag.indexer import index_paths
    from hea_rag.retrieve import open_retriever

    shared = shared_dir(ROOT)
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path)
    parser.add_argument("-k", type=int, default=GATE_HITS, help="papers the gate looks at")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.index or Path(tmp) / "index"
        if args.index is None:
            index_paths([str(shared / "data/hea_qa/Scopus_Abstracts_Dataset.csv")], folder)
        qa = [json.loads(line) for line in (shared / "bench/dev_qa.jsonl").read_text().splitlines()]
        answerable = [q["question"] for q in qa if q["split"] == "train"]
        off = (ROOT / "tests/data/off_corpus_questions.txt").read_text().splitlines()
        with open_retriever(folder) as retriever:
            on_scores = gate_scores(retriever, answerable, args.k)
            off_scores = gate_scores(retriever, [q for q in off if q.strip()], args.k)
    print("| set | n | min | p05 | median | max |")
    print("|---|---|---|---|---|---|")
    for name, scores in (("answerable (train)", on_scores), ("off-corpus", off_scores)):
        ordered = sorted(scores)
        print(f"| {name} | {len(ordered)} | {ordered[0]:.3f} | {ordered[len(ordered) // 20]:.3f} "
              f"| {statistics.median(ordered):.3f} | {ordered[-1]:.3f} |")
    print("\n| threshold | answerable refused | off-corpus refused |")
    print("|---|---|---|")
    for threshold in (0.15, 0.20, 0.25, 0.30, 0.35, 0.40):
        refused_on = sum(s < threshold for s in on_scores) / len(on_scores)
        refused_off = sum(s < threshold for s in off_scores) / len(off_scores)
        print(f"| {threshold:.2f} | {refused_on:.3f} | {refused_off:.3f} |")


if __name__ == "__main__":
    main()
