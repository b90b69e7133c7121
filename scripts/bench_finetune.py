"""Fine-tuning benchmark: SmolLM2-135M on dev_qa `train`, scored with `hea-rag eval` on `heldout`.

    .venv/bin/python scripts/bench_finetune.py [--max-steps 160] [--limit N] [--padded-steps 10]
        [--contexts abstract] [--reuse MODE=ADAPTER_DIR] [--memory-steps 6] [--only-memory]

1. indexes the shared CSV (or reuses --index);
2. `hea-rag eval` before training (no adapter), gold-abstract and retrieved context;
3. for each training context mode: `hea-rag finetune --context MODE` on the `train` items only,
   timing it, then `hea-rag eval` with that adapter;
4. a plain padded loop (every batch padded to --max-length, no length grouping) for a few steps
   on the same examples, for the training tokens/s ratio measured in this same run;
5. peak memory at `hea-rag finetune`'s own defaults (batch size, --max-length), for
   --memory-steps steps on the `train` items (all marked `train`, so nothing is held out: load,
   grounding, training and saving; `--only-memory`: this step alone).
`--reuse abstract=DIR` scores an adapter that `hea-rag finetune --context abstract` already wrote
with this script's settings instead of training it again (its card holds the training tokens/s;
wall time and peak RSS of training print as "reused").
Prints EM, F1 and contains before/after, tokens/s, wall time and peak RSS of each process
(peak RSS: the child's ru_maxrss, as `/usr/bin/time -v` reports it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402

CLI = [sys.executable, "-m", "hea_rag"]


def run(command: list[str]) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS MB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return output, time.perf_counter() - started, usage.ru_maxrss / 1024


def evaluate(qa: Path, index: Path, adapter: Path | None, gold: bool, limit: int | None) -> dict:
    command = CLI + ["eval", str(qa), "--split", "heldout", "--json", "--model", "smollm2-135m",
                     "--index", str(index)]
    command += ["--adapter", str(adapter)] if adapter else ["--no-adapter"]
    command += ["--gold-context"] if gold else []
    command += ["--limit", str(limit)] if limit else []
    output, _, rss = run(command)
    return {**json.loads(output), "rss": rss}


def padded_loop_tokens_per_second(index: Path, train_qa: Path, steps: int, args) -> float:
    """Tokens/s of a plain loop: fixed-length padding, random order, plain AdamW, same LoRA."""
    import random

    import torch

    from hea_rag.finetune import TrainSettings, pad_batch, tokenize_example
    from hea_rag.training import build_examples, load_base, with_lora

    settings = TrainSettings(max_length=args.max_length, batch_size=args.batch_size)
    tokenizer, model = load_base("smollm2-135m", "none", False)
    examples = build_examples([train_qa], "abstract", index, tokenizer, model.config, settings,
                              "smollm2-135m")
    model = with_lora(model, settings, "none", False)
    rows = [tokenize_example(tokenizer, e.prompt, e.answer, args.max_length) for e in examples]
    random.Random(0).shuffle(rows)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    model.train()
    real_tokens, started = 0, time.perf_counter()
    for step in range(steps):
        batch_rows = rows[step * args.batch_size:(step + 1) * args.batch_size]
        # one extra all-padding row of full length makes pad_batch pad everything to max_length
        full = {"input_ids": [tokenizer.pad_token_id] * args.max_length,
                "attention_mask": [0] * args.max_length, "labels": [-100] * args.max_length}
        batch = pad_batch(batch_rows + [full], tokenizer.pad_token_id)
        batch = {key: value[:-1] for key, value in batch.items()}
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        real_tokens += sum(len(r["input_ids"]) for r in batch_rows)
    return real_tokens / (time.perf_counter() - started)


def main() -> None:
    shared = shared_dir(ROOT)
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path)
    parser.add_argument("--max-steps", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=768)
    parser.add_argument("--limit", type=int, default=None, help="held-out questions evaluated")
    parser.add_argument("--padded-steps", type=int, default=10)
    parser.add_argument("--reuse", action="append", default=[], metavar="MODE=DIR",
                        help="score this already trained adapter for MODE instead of training")
    parser.add_argument("--contexts", default="abstract", type=_modes,
                        help="training context modes to compare, comma-separated (abstract, given)")
    parser.add_argument("--memory-steps", type=int, default=6,
                        help="steps of the peak-memory run at finetune's defaults (0: skip)")
    parser.add_argument("--only-memory", action="store_true", help="run step 5 alone")
    args = parser.parse_args()
    qa = shared / "bench/dev_qa.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        index = args.index or tmp / "index"
        if args.index is None:
            run(CLI + ["index", str(shared / "data/hea_qa/Scopus_Abstracts_Dataset.csv"), "--index", str(index)])
        train_qa = tmp / "train.jsonl"
        train_qa.write_text("".join(line + "\n" for line in qa.read_text().splitlines()
                                    if json.loads(line)["split"] == "train"))
        if not args.only_memory:
            print_tables(args, *compare_contexts(args, qa, train_qa, index, tmp))
        if args.memory_steps > 0:
            print_memory(args.memory_steps, memory_at_defaults(train_qa, index, tmp, args.memory_steps))


def _modes(text: str) -> str:
    modes = [mode for mode in text.split(",") if mode]
    if not modes or set(modes) - {"abstract", "given"}:
        raise argparse.ArgumentTypeError(f"context modes are abstract and given, not {text!r}")
    return ",".join(modes)


def compare_contexts(args, qa: Path, train_qa: Path, index: Path, tmp: Path):
    """Steps 2-4: scores before and after training in each context mode, and the padded loop."""
    tables = {"none": {g: evaluate(qa, index, None, g, args.limit) for g in (True, False)}}
    trained = {}
    reused = dict(item.split("=", 1) for item in args.reuse)
    for mode in args.contexts.split(","):
        adapter = Path(reused[mode]) if mode in reused else tmp / f"adapter-{mode}"
        wall = rss = 0.0
        if mode not in reused:
            _, wall, rss = run(CLI + [
                "finetune", str(train_qa), "--model", "smollm2-135m", "--index", str(index),
                "--context", mode, "--output", str(adapter), "--max-steps", str(args.max_steps),
                "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
                "--eval-fraction", "0"])
        card = json.loads((adapter / "hea_rag_adapter.json").read_text())
        trained[mode] = {"wall": wall, "rss": rss, "card": card}
        tables[f"trained, {mode} context"] = {
            g: evaluate(qa, index, adapter, g, args.limit) for g in (True, False)}
    return tables, trained, padded_loop_tokens_per_second(index, train_qa, args.padded_steps, args)


def memory_at_defaults(train_qa: Path, index: Path, tmp: Path, steps: int) -> dict:
    """Step 5: `hea-rag finetune` with its defaults but --max-steps, on the `train` items."""
    adapter = tmp / "adapter-defaults"
    _, wall, rss = run(CLI + ["finetune", str(train_qa), "--model", "smollm2-135m",
                              "--index", str(index), "--output", str(adapter),
                              "--max-steps", str(steps)])
    return {"wall": wall, "rss": rss, "card": json.loads((adapter / "hea_rag_adapter.json").read_text())}


def print_memory(steps: int, measured: dict) -> None:
    hyper = measured["card"]["hyperparameters"]
    print(f"\n## Peak memory of `hea-rag finetune` at its defaults ({steps} steps)\n")
    print("| batch size | max length | steps | held out | wall (s) | peak RSS (MB) | tokens/s |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {hyper['batch_size']} | {hyper['max_length']} | {measured['card']['steps']} "
          f"| {measured['card']['eval_examples']} | {measured['wall']:.0f} | {measured['rss']:.0f} "
          f"| {measured['card']['tokens_per_second']:.0f} |")


def print_tables(args, tables: dict, trained: dict, padded: float) -> None:
    print(f"\n## Fine-tuning SmolLM2-135M on dev_qa train ({args.max_steps} steps of "
          f"{args.batch_size}), scored on heldout\n")
    print("| eval context | adapter | n | EM | F1 | contains | s/question | eval peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, table in tables.items():
        for gold, m in table.items():
            print(f"| {'gold abstract' if gold else 'retrieved'} | {label} | {m['questions']} "
                  f"| {m['exact_match']:.3f} | {m['f1']:.3f} | {m['contains']:.3f} "
                  f"| {m['seconds_per_question']:.2f} | {m['rss']:.0f} |")
    print("\n| training context | examples | wall (load, ground, train, save) | peak RSS (MB) "
          "| Trainer tokens/s | padded loop tokens/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for mode, run_ in trained.items():
        card = run_["card"]
        wall = f"{run_['wall']:.0f} s" if run_["wall"] else "reused"
        rss = f"{run_['rss']:.0f}" if run_["rss"] else "reused"
        print(f"| {mode} | {card['train_examples']} | {wall} | {rss} "
              f"| {card['tokens_per_second']:.0f} | {padded:.0f} "
              f"| {card['tokens_per_second'] / padded:.2f}x |")
    print(f"\nThe padded loop pads every batch to {args.max_length} tokens, in random order, on "
          "`abstract`-context examples.")


if __name__ == "__main__":
    main()
