"""Lexical search over posting lists against SQLite FTS5's own bm25(), on a real index.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_lexical.py [--index DIR]

Every dev_qa question is asked of both tables (papers at the fusion's depth of 50, passages at
200) of a one-segment index (default: the shared corpus indexed into a temporary folder): the
postings search of hea-rag, and FTS5's ranking of the same tokens (each a quoted phrase, ORed)
in the segment's own FTS5 table. Prints how often the top 10 and the result counts agree, the
largest relative score difference, and the time of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402

DEPTHS = {"papers_fts": 50, "passages_fts": 200}  # retrieve.CANDIDATES and 4x it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="a one-segment index (default: the shared corpus)")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in
                 (shared_dir(ROOT) / "bench/dev_qa.jsonl").read_text(encoding="utf-8").splitlines()]
    if args.index:
        rows = compare(args.index, questions)
    else:
        from hea_rag.indexer import index_paths

        with tempfile.TemporaryDirectory() as tmp:
            index_paths([str(shared_dir(ROOT) / "data/hea_qa/Scopus_Abstracts_Dataset.csv")], Path(tmp) / "index")
            rows = compare(Path(tmp) / "index", questions)
    print_table(rows, len(questions))


def fts5_query(tokens) -> str:
    return " OR ".join('"' + token.replace('"', '""') + '"' for token in dict.fromkeys(tokens))


def compare(folder: Path, questions: list[str]) -> list[dict]:
    from hea_rag.lexical import tokenize
    from hea_rag.store import IndexReader

    rows = []
    with IndexReader(folder) as reader:
        if len(reader.segments) != 1:
            raise SystemExit(f"{folder}: {len(reader.segments)} segments; run `hea-rag index --compact` first")
        segment = reader.segments[0]
        for table, depth in DEPTHS.items():
            row = {"table": table, "depth": depth, "top10": 0, "count": 0, "worst": 0.0, "ours": [], "fts5": []}
            reader.lexical_search(tokenize(questions[0]), depth, table)  # maps the files
            for question in questions:
                tokens = tokenize(question)
                started = time.perf_counter()
                ours = reader.lexical_search(tokens, depth, table)
                middle = time.perf_counter()
                theirs = segment.rows(f"SELECT rowid, -bm25({table}) AS s FROM {table} WHERE {table} MATCH ? "
                                      "ORDER BY s DESC, rowid LIMIT ?", (fts5_query(tokens), depth))
                row["ours"].append((middle - started) * 1000)
                row["fts5"].append((time.perf_counter() - middle) * 1000)
                row["top10"] += [i for i, _ in ours[:10]] == [i for i, _ in theirs[:10]]
                row["count"] += len(ours) == len(theirs)
                row["worst"] = max([row["worst"]] + [abs(a - b) / abs(b) for (_, a), (_, b) in zip(ours, theirs)])
            rows.append(row)
    return rows


def print_table(rows: list[dict], questions: int) -> None:
    print(f"\n## Posting lists against FTS5's bm25() ({questions} dev_qa questions, one segment)\n")
    print("| table (depth) | same top 10 | same count | largest relative score difference "
          "| postings p50 / p95 (ms) | FTS5 p50 / p95 (ms) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        times = {name: sorted(r[name]) for name in ("ours", "fts5")}
        cells = [f"{statistics.median(t):.2f} / {t[int(0.95 * len(t))]:.2f}" for t in times.values()]
        print(f"| {r['table']} ({r['depth']}) | {r['top10']}/{questions} | {r['count']}/{questions} "
              f"| {r['worst']:.1e} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
