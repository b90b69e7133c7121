"""Synth benchmark: how fast `hea-rag synth` reads papers, what it writes, and what adapters
trained with its pairs answer.

    .venv/bin/python scripts/bench_synth.py [--index DIR] [--repeat 3]
        [--adapter NAME=DIR ...] [--no-zero-shot] [--limit N]

Indexes the shared CSV into a temporary folder unless --index names an index of it, then runs
`synth_index` (what `hea-rag synth` runs) over every paper, --repeat times, and prints papers/s
(best run), pairs per paper, papers that yield none, and pairs by kind.

With --adapter (repeatable), each adapter, and the model without one unless --no-zero-shot,
answers two question sets end to end with `ask`'s defaults and trust gates: dev_qa `heldout`
(the upstream templates) and scripts/data/natural_heldout.jsonl (questions over the same 20
heldout papers, written as a scientist types them). It prints exact match, contains, answered
wrong and refused per set, and each adapter's recorded training data and steps. The adapters
compared are built by scripts/build_default_adapter.sh on an index without the heldout papers
(synth pairs: HEA_RAG_ADAPTER_EXTRA_QA), so nothing of heldout reaches training.
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
sys.path.insert(0, str(ROOT / "scripts"))  # bench_abstention: one run_set for both benchmarks

from hea_rag.config import shared_dir  # noqa: E402


NATURAL = ROOT / "scripts/data/natural_heldout.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--no-zero-shot", action="store_true")
    parser.add_argument("--limit", type=int, default=None, help="questions per set")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "index"
        if args.index is None:
            csv = shared_dir(ROOT) / "data/hea_qa/Scopus_Abstracts_Dataset.csv"
            subprocess.run([sys.executable, "-m", "hea_rag", "index", "--index", str(index),
                            str(csv)], check=True)
        throughput(index, args.repeat)
        if args.adapter:
            models = ([] if args.no_zero_shot else [("zero-shot", None)]) + [
                tuple(spec.split("=", 1)) for spec in args.adapter]
            compare_adapters(index, models, args.limit)


def throughput(index: Path, repeat: int) -> None:
    from hea_rag.store import IndexReader
    from hea_rag.synth import DEFAULT_PER_PAPER
    from hea_rag.synth.source import parse_selection, synth_index

    runs, per_paper = [], Counter()
    with IndexReader(index) as reader:
        for _ in range(repeat):
            per_paper.clear()
            summary = synth_index(reader, parse_selection("all"),
                                  lambda record: per_paper.update([record["paper_id"]]),
                                  DEFAULT_PER_PAPER)
            runs.append(summary)
    best = min(runs, key=lambda s: s.seconds)
    print("| papers | pairs | pairs/paper | papers with none | papers/s (best of "
          f"{repeat}) |")
    print("|---|---|---|---|---|")
    print(f"| {best.papers} | {best.pairs} | {best.pairs / best.papers:.2f} "
          f"| {best.papers - len(per_paper)} | {best.papers / best.seconds:.1f} |")
    print("\n| kind | pairs |\n|---|---|")
    for kind, count in best.kinds.most_common():
        print(f"| {kind} | {count} |")



def question_sets(limit: int | None) -> dict[str, list[dict]]:
    read = lambda path: [json.loads(line) for line in path.read_text().splitlines()  # noqa: E731
                         if line.strip()]
    heldout = [item for item in read(shared_dir(ROOT) / "bench/dev_qa.jsonl")
               if item["split"] == "heldout"]
    return {"dev_qa heldout": heldout[:limit], "natural": read(NATURAL)[:limit]}


def compare_adapters(index: Path, models: list[tuple[str, str | None]], limit: int | None) -> None:
    """Each model end to end on both sets (bench_abstention's run_set: gates on, gold kept)."""
    from bench_abstention import run_set

    from hea_rag.answer import AskSettings, open_answerer

    sets = question_sets(limit)
    print(f"\n{', '.join(f'{name}: {len(items)} questions' for name, items in sets.items())}; "
          f"model smollm2-135m, ask defaults {AskSettings()}\n")
    print("| adapter | trained on | steps | " + " | ".join(
        f"{name} EM | {name} contains | {name} wrong | {name} refused" for name in sets) + " |")
    print("|---|---|---|" + "---|" * (4 * len(sets)))
    for name, adapter in models:
        with open_answerer(index, "smollm2-135m", adapter, adapter is not None, None,
                           AskSettings(), need_retrieval=True) as answerer:
            cells = []
            for items in sets.values():
                counts = run_set(answerer, items, without_gold=False)
                n = counts["n"] or 1
                cells += [f"{counts[key] / n:.3f}"
                          for key in ("exact_match", "contains", "wrong", "refused")]
        print(f"| {name} | {training_of(adapter)} | " + " | ".join(cells) + " |")


def training_of(adapter: str | None) -> str:
    """What the adapter's card says it was trained on, and for how many steps."""
    if adapter is None:
        return "- | 0"
    card = json.loads((Path(adapter) / "hea_rag_adapter.json").read_text())
    files = " + ".join(Path(part).stem for part in card["data"].split(" + "))
    return f"{files} ({card['train_examples']} examples) | {card['steps']}"


if __name__ == "__main__":
    main()
