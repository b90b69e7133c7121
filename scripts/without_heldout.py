"""Training inputs for the shipped adapter with nothing of dev_qa `heldout` in them.

    python scripts/without_heldout.py SHARED_DIR OUT_DIR

Writes OUT_DIR/corpus.csv: the shared Scopus CSV without the rows whose abstract is a heldout
paper (so no heldout abstract can be grounded), and OUT_DIR/upstream_qa.jsonl: the upstream QA
pairs (HEA_QA_DATASET.json) except those whose answer a heldout abstract states or whose question
is a heldout question. dev_qa was made from the upstream pairs, so without this filter a heldout
question could reach training grounded on another paper that happens to print the same answer.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.grounding import _contains  # noqa: E402 - the grounding's own answer match
from hea_rag.qa_data import load_pairs  # noqa: E402


def abstract_sha1(text: str) -> str:
    """dev_qa's key: sha1 of the abstract with whitespace runs collapsed, stripped."""
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()


def heldout(shared: Path) -> tuple[set[str], set[str]]:
    """(abstract sha1s, questions) of the heldout split."""
    with open(shared / "bench" / "dev_qa.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    rows = [row for row in rows if row.get("split") == "heldout"]
    return {row["abstract_sha1"] for row in rows}, {row["question"].strip() for row in rows}


def write_corpus(shared: Path, held: set[str], out: Path) -> list[str]:
    """The corpus without heldout rows; returns the heldout abstracts it left out."""
    source = shared / "data" / "hea_qa" / "Scopus_Abstracts_Dataset.csv"
    left_out = []
    with open(source, encoding="utf-8", newline="") as reader_handle, \
            open(out, "w", encoding="utf-8", newline="") as writer_handle:
        reader = csv.DictReader(reader_handle)
        writer = csv.DictWriter(writer_handle, fieldnames=reader.fieldnames)
        writer.writeheader()
        for row in reader:
            if abstract_sha1(row["Abstract"]) in held:
                left_out.append(row["Abstract"])
            else:
                writer.writerow(row)
    print(f"{out}: {len(left_out)} heldout rows left out", file=sys.stderr)
    return left_out


def write_upstream(shared: Path, held_abstracts: list[str], held_questions: set[str],
                   out: Path) -> None:
    pairs, _ = load_pairs(shared / "data" / "hea_qa" / "HEA_QA_DATASET.json")
    kept = [pair for pair in pairs if pair.question not in held_questions
            and not any(_contains(abstract, pair.answer) for abstract in held_abstracts)]
    with open(out, "w", encoding="utf-8") as handle:
        for pair in kept:
            handle.write(json.dumps({"question": pair.question, "answer": pair.answer}) + "\n")
    print(f"{out}: {len(kept)} upstream pairs kept, {len(pairs) - len(kept)} left out as heldout",
          file=sys.stderr)


def main(shared: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    held, questions = heldout(shared)
    left_out = write_corpus(shared, held, out_dir / "corpus.csv")
    write_upstream(shared, left_out, questions, out_dir / "upstream_qa.jsonl")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
