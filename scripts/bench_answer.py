"""Answer benchmark: `hea-rag eval` on the dev QA held-out split, gold and retrieved context.

    .venv/bin/python scripts/bench_answer.py [--model smollm2-135m] [--adapter DIR] [--limit N]
    .venv/bin/python scripts/bench_answer.py --adapter DIR --ks 1,2,3     # the `-k` sweep

Indexes the shared CSV into a temporary folder, then runs the real CLI (`python -m hea_rag eval`)
once with the gold abstract as context and once per `-k` with retrieved context. Prints how many
distinct papers the questions come from, then EM, token F1, answer-contains, abstention, seconds
per question and the peak RSS of each eval process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402


def run_eval(arguments: list[str]) -> tuple[dict, float]:
    """(metrics, peak RSS MB) of one `hea-rag eval --json` process."""
    command = [sys.executable, "-m", "hea_rag", "eval", "--json", *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return json.loads(output), usage.ru_maxrss / 1024


def distinct_papers(qa: Path, split: str, limit: int | None) -> int:
    """How many abstracts the evaluated questions (the first `limit` of `split`) come from."""
    with open(qa, encoding="utf-8") as handle:
        items = [item for item in map(json.loads, handle) if item.get("split") == split]
    return len({item["abstract_sha1"] for item in items[:limit]})


def main() -> None:
    shared = shared_dir(ROOT)
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--index", type=Path, default=None, help="reuse an index of the shared CSV")
    parser.add_argument("--ks", default="1", help="comma-separated -k values for retrieved context")
    args = parser.parse_args()
    qa = shared / "bench/dev_qa.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "index"
        if args.index is None:
            subprocess.run([sys.executable, "-m", "hea_rag", "index", "--index", str(index),
                            str(shared / "data/hea_qa/Scopus_Abstracts_Dataset.csv")], check=True)
        common = [str(qa), "--split", args.split, "--model", args.model,
                  "--index", str(index)]
        common += ["--adapter", args.adapter] if args.adapter else ["--no-adapter"]
        common += ["--limit", str(args.limit)] if args.limit else []
        rows = {"gold": run_eval(common + ["--gold-context"])}
        for k in args.ks.split(","):
            rows[f"retrieved, -k {k}"] = run_eval(common + ["-k", k])
    label = f"{args.model} + {'adapter ' + args.adapter if args.adapter else 'no adapter'}"
    papers = distinct_papers(qa, args.split, args.limit)
    print(f"\n## Answers on dev_qa `{args.split}` ({label}; the questions come from {papers} "
          "distinct papers)\n")
    print("| context | n | EM | F1 | contains | abstained | R@1 | s/question | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for context, (m, rss) in rows.items():
        print(f"| {context} | {m['questions']} | {m['exact_match']:.3f} | {m['f1']:.3f} "
              f"| {m['contains']:.3f} | {m['abstention_rate']:.3f} | {m['recall@1']:.3f} "
              f"| {m['seconds_per_question']:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
