"""Abstention benchmark: does `ask` answer what the papers say and refuse what they do not?

    .venv/bin/python scripts/bench_abstention.py [--adapter NAME=DIR ...] [--no-zero-shot]
        [--split heldout] [--limit N] [--index DIR] [--calibrate]

Three question sets, all end to end (retrieval, the gates of `ask`, generation, the support check):
- answerable: dev_qa questions of `--split`, over an index of the whole shared corpus;
- in-domain unanswerable: the same questions with their gold paper taken out of retrieval, so
  the corpus no longer holds the answer (the gold paper is removed from the search results,
  which is what indexing without it does, except that it still counts in BM25's statistics);
- off-topic: tests/data/off_corpus_questions.txt, plus the hand-written in-domain questions of
  tests/data/in_domain_unanswerable.jsonl as their own row.
For each answering model (zero-shot, and each `--adapter NAME=DIR`) it prints: answerable answered
right (exact match, contains), answered wrong, refused (and by which gate); unanswerable refused or
answered; and the count of printed answers with a number absent from their evidence (must be 0).
`--calibrate` first prints the gates before generation (low_score at several thresholds, then
no_match) on the `train` questions, answerable and made unanswerable: thresholds are chosen there,
never on heldout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.answer import GATE_HITS, AskSettings, gate_score  # noqa: E402
from hea_rag.config import shared_dir  # noqa: E402
from hea_rag.evaluate import answer_scores  # noqa: E402
from hea_rag.evidence import match_question, numbers_in, question_terms  # noqa: E402

THRESHOLDS = (0.20, 0.25, 0.30, 0.35, 0.40)


def load_sets(shared: Path, split: str, limit: int | None) -> dict[str, list[dict]]:
    with open(shared / "bench/dev_qa.jsonl", encoding="utf-8") as handle:
        items = [item for item in map(json.loads, handle) if item["split"] == split][:limit]
    off = [q for q in (ROOT / "tests/data/off_corpus_questions.txt").read_text().splitlines()
           if q.strip()]
    written = [json.loads(line)["question"] for line in
               (ROOT / "tests/data/in_domain_unanswerable.jsonl").read_text().splitlines()
               if line.strip()]
    return {"answerable": items,
            "unanswerable": items,
            "off-topic": [{"question": q} for q in off],
            "in-domain (written)": [{"question": q} for q in written]}


def hits_for(retriever, item: dict, without_gold: bool) -> list:
    """The hits `ask` would see; with `without_gold`, as if the gold paper were not indexed."""
    hits = retriever.search(item["question"], k=GATE_HITS + 1)
    if without_gold:
        gold = retriever.reader.find_paper(item.get("doi") or None, item.get("abstract_sha1"))
        hits = [hit for hit in hits if hit.paper.id != gold]
    return hits[:GATE_HITS]


def run_set(answerer, items: list[dict], without_gold: bool) -> dict:
    counts: Counter = Counter()
    for item in items:
        answer = answerer.ask(item["question"], hits=hits_for(answerer.retriever, item,
                                                             without_gold))
        counts["n"] += 1
        if not answer.answerable:
            counts["refused"] += 1
            counts[f"refused_{answer.reason}"] += 1
            continue
        counts["answered"] += 1
        if not numbers_in(answer.answer) <= numbers_in(answer.evidence.text):
            counts["number_not_in_evidence"] += 1
        if "answer" in item and not without_gold:
            scores = answer_scores(answer.answer, item["answer"])
            counts["exact_match"] += scores["exact_match"]
            counts["contains"] += scores["contains"]
            counts["wrong"] += not scores["contains"]
    return counts


def calibrate(retriever, shared: Path) -> None:
    """The gates before generation on `train` questions: thresholds are chosen here."""
    with open(shared / "bench/dev_qa.jsonl", encoding="utf-8") as handle:
        items = [item for item in map(json.loads, handle) if item["split"] == "train"]
    rows = {}
    for name, without_gold in (("answerable (train)", False), ("unanswerable (train)", True)):
        outcomes = []
        for item in items:
            hits = hits_for(retriever, item, without_gold)
            terms = question_terms(item["question"])
            papers = retriever.reader.papers([h.paper.id for h in hits])
            matched = any(match_question(item["question"], papers[h.paper.id].abstract or "",
                                         terms).ok for h in hits)
            outcomes.append((gate_score(hits), matched))
        rows[name] = outcomes
    print("| train set | n | " + " | ".join(f"low_score < {t:.2f}" for t in THRESHOLDS)
          + " | no_match (at 0.30) | refused before generating (0.30) |")
    print("|---|---|" + "---|" * (len(THRESHOLDS) + 2))
    for name, outcomes in rows.items():
        n = len(outcomes)
        low = [sum(score < t for score, _ in outcomes) / n for t in THRESHOLDS]
        no_match = sum(score >= 0.30 and not matched for score, matched in outcomes) / n
        either = sum(score < 0.30 or not matched for score, matched in outcomes) / n
        print(f"| {name} | {n} | " + " | ".join(f"{v:.3f}" for v in low)
              + f" | {no_match:.3f} | {either:.3f} |")
    print()


def report(name: str, results: dict[str, Counter]) -> None:
    answerable, unanswerable = results["answerable"], results["unanswerable"]
    n = answerable["n"] or 1
    share = lambda counts, key: counts[key] / (counts["n"] or 1)  # noqa: E731
    by_gate = ", ".join(f"{reason} {answerable[f'refused_{reason}']}"
                        for reason in ("low_score", "no_match", "model", "unsupported")
                        if answerable[f"refused_{reason}"])
    unanswered = ", ".join(f"{reason} {unanswerable[f'refused_{reason}']}"
                           for reason in ("low_score", "no_match", "model", "unsupported")
                           if unanswerable[f"refused_{reason}"])
    bad = sum(c["number_not_in_evidence"] for c in results.values())
    print(f"| {name} | {answerable['exact_match'] / n:.3f} | {answerable['contains'] / n:.3f} "
          f"| {answerable['wrong'] / n:.3f} | {share(answerable, 'refused'):.3f} ({by_gate or '-'}) "
          f"| {share(unanswerable, 'refused'):.3f} ({unanswered or '-'}) "
          f"| {share(results['in-domain (written)'], 'refused'):.3f} "
          f"| {share(results['off-topic'], 'refused'):.3f} | {bad} |")


def main() -> None:
    from hea_rag.answer import open_answerer
    from hea_rag.retrieve import open_retriever

    shared = shared_dir(ROOT)
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--no-zero-shot", action="store_true")
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--index", type=Path, default=None, help="an index of the shared CSV")
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    sets = load_sets(shared, args.split, args.limit)
    models = ([] if args.no_zero_shot else [("zero-shot", None)]) + [
        tuple(spec.split("=", 1)) for spec in args.adapter]
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "index"
        if args.index is None:
            subprocess.run([sys.executable, "-m", "hea_rag", "index", "--index", str(index),
                            str(shared / "data/hea_qa/Scopus_Abstracts_Dataset.csv")], check=True)
        if args.calibrate:
            with open_retriever(index) as retriever:
                calibrate(retriever, shared)
        print(f"{args.split}: {len(sets['answerable'])} answerable questions, the same made "
              f"unanswerable, {len(sets['in-domain (written)'])} written in-domain unanswerable, "
              f"{len(sets['off-topic'])} off-topic; model smollm2-135m, ask defaults "
              f"{AskSettings()}\n")
        print("| answering model | EM | contains | wrong | refused answerable (by gate) "
              "| refused unanswerable (by gate) | refused written in-domain | refused off-topic "
              "| printed numbers not in evidence |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, adapter in models:
            with open_answerer(index, "smollm2-135m", adapter, adapter is not None, None,
                               AskSettings(), need_retrieval=True) as answerer:
                results = {label: run_set(answerer, items, label == "unanswerable")
                           for label, items in sets.items()}
            report(name, results)


if __name__ == "__main__":
    main()
