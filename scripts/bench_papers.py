"""Answers across papers (`ask --papers N`) on dev_qa `heldout`, with the shipped adapter.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_papers.py --index runs/bench-index
    .venv/bin/python scripts/bench_papers.py --limit 40 --timing-questions 10   # a quick look

Without --index it first indexes the shared CSV into a temporary folder. Prints markdown tables:

1. answer recall at N (the gold answer among the answers of the best N papers, each asked
   alone; exact match after normalisation) for N = 1, 3, 5, beside the single-answer exact match
   of today's `ask` (which is `--papers 1`), and how often the gold paper's own answer is right;
2. the other papers' rows: how many reach the model, how many it answers (not its refusal),
   and what share of those answers their passage supports (the rest are refused as unsupported);
3. seconds per question at N = 1, 3, 5, one prompt at a time and batched (on a subset of the
   questions, configurations interleaved per question), and whether batched rows equal the
   one-at-a-time ones;
4. `--papers all --filter WORDS`: papers asked, rows printed, papers/s and rows/s.

Quality runs one prompt at a time, through a cache of the model's outputs keyed by prompt (greedy
decoding: the same prompt gives the same answer), so the single answer and each paper's answer
cost one generation each. Timings never use the cache.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402

NS = (1, 3, 5)


class CachedGenerator:
    """The real generator, remembering each prompt's greedy answer (quality runs only)."""

    def __init__(self, real):
        self.real, self.cache = real, {}
        self.name, self.adapter, self.window = real.name, real.adapter, real.window
        self.count_tokens, self.model = real.count_tokens, real.model

    def generate(self, prompt: str, max_new_tokens: int = 64, on_text=None) -> str:
        if prompt not in self.cache:
            self.cache[prompt] = self.real.generate(prompt, max_new_tokens)
        return self.cache[prompt]


@dataclass
class Quality:
    questions: int = 0
    single_em: float = 0.0
    recall: dict[int, float] = field(default_factory=lambda: dict.fromkeys(NS, 0.0))
    gold_in_top: dict[int, int] = field(default_factory=lambda: dict.fromkeys(NS, 0))
    gold_right: dict[int, float] = field(default_factory=lambda: dict.fromkeys(NS, 0.0))
    printed: dict[int, int] = field(default_factory=lambda: dict.fromkeys(NS, 0))
    others: int = 0
    others_asked: int = 0  # passed no_match: the model read them
    others_answered: int = 0  # the model gave an answer, not its refusal
    others_printed: int = 0  # ... that its passage supports


def exact(answer, gold: str) -> float:
    """Exact match of an Answer (a refusal answers nothing) with the gold answer."""
    from hea_rag.evaluate import answer_scores

    return answer_scores(answer.answer if answer.answerable else "", gold)["exact_match"]


def measure_quality(answerer, items) -> Quality:
    from hea_rag.answers import PaperAnswerer, PapersSettings

    paper_answerer = PaperAnswerer(answerer, PapersSettings(papers=max(NS), batch_size=1))
    reader, q = answerer.retriever.reader, Quality()
    for item in items:
        gold_paper = reader.find_paper(item.doi, item.abstract_sha1)
        q.questions += 1
        q.single_em += exact(answerer.ask(item.question), item.answer)
        rows = paper_answerer.ask(item.question).answers
        for n in NS:
            top = [row for row in rows if row.rank <= n]
            q.recall[n] += max((exact(row.answer, item.answer) for row in top), default=0.0)
            q.printed[n] += sum(row.answerable for row in top)
            gold = [row for row in top if row.source.paper_id == gold_paper]
            q.gold_in_top[n] += bool(gold)
            q.gold_right[n] += exact(gold[0].answer, item.answer) if gold else 0.0
        for row in (r for r in rows if r.source.paper_id != gold_paper):
            q.others += 1
            q.others_asked += row.answer.reason != "no_match"
            q.others_answered += row.answer.reason in (None, "unsupported")
            q.others_printed += row.answerable
    return q


def measure_speed(answerer, items) -> tuple[dict[tuple[int, int], float], int, int]:
    """Seconds per question for each (N, batch size), configurations interleaved per question
    (rotated, so none always runs first); and how many batched rows equal one-at-a-time rows."""
    from hea_rag.answers import PaperAnswerer, PapersSettings

    configs = [(1, 1)] + [(n, b) for n in NS[1:] for b in (1, n)]
    seconds = dict.fromkeys(configs, 0.0)
    same = total = 0
    for position, item in enumerate(items):
        answers = {}
        for config in configs[position % len(configs):] + configs[: position % len(configs)]:
            n, batch = config
            started = time.perf_counter()
            answers[config] = PaperAnswerer(answerer, PapersSettings(n, None, batch)).ask(
                item.question).answers
            seconds[config] += time.perf_counter() - started
        for n in NS[1:]:
            pairs = [(a, b) for a, b in zip(answers[(n, 1)], answers[(n, n)])
                     if a.answer.reason != "no_match"]  # rows the model read
            same += sum(a.answer.model_output == b.answer.model_output for a, b in pairs)
            total += len(pairs)
    return {c: s / len(items) for c, s in seconds.items()}, same, total


def measure_all(answerer, question: str, words: str) -> tuple[int, int, float]:
    from hea_rag.answers import PaperAnswerer, PapersSettings

    started = time.perf_counter()
    result = PaperAnswerer(answerer, PapersSettings("all", words)).ask(question)
    return len(result.answers), len(result.answered), time.perf_counter() - started


def print_quality(q: Quality) -> None:
    n_q = q.questions or 1
    print(f"\n### Answer recall at N (dev_qa heldout, {q.questions} questions)\n")
    print("| N | answer recall@N | single-answer EM (`ask`) | gold paper in the best N | "
          "gold paper's own answer right (when among them) | rows printed per question |")
    print("|---|---|---|---|---|---|")
    for n in NS:
        inside = q.gold_in_top[n]
        right = q.gold_right[n] / inside if inside else 0.0
        print(f"| {n} | {q.recall[n] / n_q:.3f} | {q.single_em / n_q:.3f} | {inside / n_q:.3f} "
              f"| {right:.3f} | {q.printed[n] / n_q:.2f} |")
    print("\n### The other papers' rows (not the gold paper, best 5)\n")
    print("| rows | reach the model (pass no_match) | the model answers (not its refusal) "
          "| printed (supported by their passage) | supported share of answered |")
    print("|---|---|---|---|---|")
    share = q.others_printed / q.others_answered if q.others_answered else 0.0
    print(f"| {q.others} | {q.others_asked} | {q.others_answered} | {q.others_printed} "
          f"| {share:.3f} |")


def print_speed(speed, same: int, total: int, count: int) -> None:
    base = speed[(1, 1)]
    print(f"\n### Seconds per question ({count} questions, each configuration once per question, "
          "interleaved)\n")
    print("| N | one prompt at a time (s) | batched (s) | one at a time / N=1 | batched / N=1 |")
    print("|---|---|---|---|---|")
    print(f"| 1 | {base:.2f} | - | 1.00 | - |")
    for n in NS[1:]:
        one, batched = speed[(n, 1)], speed[(n, n)]
        print(f"| {n} | {one:.2f} | {batched:.2f} | {one / base:.2f} | {batched / base:.2f} |")
    print(f"\nRows the model read whose batched output equals the one-at-a-time output: "
          f"{same} of {total}.")


def load_items(qa: Path, split: str, limit: int | None):
    from hea_rag.evaluate import load_qa

    return load_qa(qa, split, limit)


def main() -> None:
    shared = shared_dir(ROOT)
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--adapter", default=None, help="default: the one shipped for --model")
    parser.add_argument("--index", type=Path, default=None, help="an index of the shared CSV")
    parser.add_argument("--limit", type=int, default=None, help="first N heldout questions")
    parser.add_argument("--timing-questions", type=int, default=30,
                        help="questions timed (spread evenly over the evaluated ones)")
    parser.add_argument("--all-question", default="What is the yield strength?")
    parser.add_argument("--all-filter", default="NbMoTaW")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "index"
        if args.index is None:
            subprocess.run([sys.executable, "-m", "hea_rag", "index", "--index", str(index),
                            str(shared / "data/hea_qa/Scopus_Abstracts_Dataset.csv")], check=True)
        run(args, index, load_items(shared / "bench/dev_qa.jsonl", "heldout", args.limit))


def run(args, index: Path, items) -> None:
    from hea_rag.answer import Answerer, AskSettings, shipped_adapter
    from hea_rag.generator import load_generator
    from hea_rag.retrieve import open_retriever

    generator = load_generator(args.model, args.adapter or shipped_adapter(args.model))
    step = max(1, len(items) // max(1, args.timing_questions))
    timed = items[::step][: args.timing_questions]
    with open_retriever(index) as retriever:
        cached = Answerer(CachedGenerator(generator), retriever, AskSettings())
        quality = measure_quality(cached, items)
        answerer = Answerer(generator, retriever, AskSettings())
        speed, same, total = measure_speed(answerer, timed)
        papers, rows, seconds = measure_all(answerer, args.all_question, args.all_filter)
    print(f"\n## `ask --papers N` ({args.model} + {Path(generator.adapter or '-').name} adapter, "
          f"{json.dumps(args.all_filter)} filter for --papers all)")
    print_quality(quality)
    print_speed(speed, same, total, len(timed))
    print(f"\n### `--papers all --filter {args.all_filter}`: \"{args.all_question}\"\n")
    print("| papers asked | rows printed | seconds | papers/s | rows/s |")
    print("|---|---|---|---|---|")
    print(f"| {papers} | {rows} | {seconds:.1f} | {papers / seconds:.2f} | {rows / seconds:.3f} |")


if __name__ == "__main__":
    main()
