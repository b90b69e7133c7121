"""Synth benchmark, first part: how fast `hea-rag synth` reads papers and what it writes.

    .venv/bin/python scripts/bench_synth.py [--index DIR] [--repeat 3]

Indexes the shared CSV into a temporary folder unless --index names an index of it, then runs
`synth_index` (what `hea-rag synth` runs) over every paper, --repeat times, and prints papers/s
(best run), pairs per paper, papers that yield none, and pairs by kind. The adapter comparison the
synth issue asks for (upstream, synth, both; dev_qa heldout and scripts/data/natural_heldout.jsonl)
is not in this script yet.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402


def main() -> None:
    from hea_rag.store import IndexReader
    from hea_rag.synth import DEFAULT_PER_PAPER
    from hea_rag.synth.source import parse_selection, synth_index

    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "index"
        if args.index is None:
            csv = shared_dir(ROOT) / "data/hea_qa/Scopus_Abstracts_Dataset.csv"
            subprocess.run([sys.executable, "-m", "hea_rag", "index", "--index", str(index),
                            str(csv)], check=True)
        runs, per_paper = [], Counter()
        with IndexReader(index) as reader:
            for _ in range(args.repeat):
                per_paper.clear()
                summary = synth_index(reader, parse_selection("all"),
                                      lambda record: per_paper.update([record["paper_id"]]),
                                      DEFAULT_PER_PAPER)
                runs.append(summary)
    best = min(runs, key=lambda s: s.seconds)
    print("| papers | pairs | pairs/paper | papers with none | papers/s (best of "
          f"{args.repeat}) |")
    print("|---|---|---|---|---|")
    print(f"| {best.papers} | {best.pairs} | {best.pairs / best.papers:.2f} "
          f"| {best.papers - len(per_paper)} | {best.papers / best.seconds:.1f} |")
    print("\n| kind | pairs |\n|---|---|")
    for kind, count in best.kinds.most_common():
        print(f"| {kind} | {count} |")


if __name__ == "__main__":
    main()
