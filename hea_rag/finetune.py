"""`hea-rag finetune`: a (Q)LoRA adapter trained on exactly the prompts `ask` sends.

    hea-rag finetune ../shared/bench/dev_qa.jsonl --model smollm2-135m --max-steps 160
    hea-rag finetune dev_qa.jsonl HEA_QA_DATASET.json --negatives 0.3 ...   # several QA files
    hea-rag finetune qa.json --model microsoft/phi-2 --context given --output runs/phi2-lora
    accelerate launch -m hea_rag finetune qa.jsonl ...     # several GPUs, same code

Built on the transformers Trainer: length-grouped batches, checkpoints that a rerun with the same data
and settings resumes from (hea_rag/resume.py), a loss over the answer positions only, eval loss
per epoch on held-out papers, and exact match at the end with `ask`'s answer rules.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hea_rag.errors import HeaRagError
from hea_rag.grounding import Example
from hea_rag.prompt import PROMPT_TEMPLATE, REFUSAL, answer_target, encode_prompt, leading_special_ids

IGNORE = -100  # label value the loss skips
ARCHITECTURE_TARGETS = {
    "phi": ["q_proj", "k_proj", "v_proj", "dense"],  # Phi's attention output is `dense`
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
}
HELD_OUT_SPLITS = {"heldout", "eval", "validation", "test", "dev"}


class TargetModuleError(HeaRagError):
    """A LoRA target that the model does not have."""


@dataclass
class TrainSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] | None = None
    epochs: float = 1.0
    max_steps: int = -1
    lr: float = 2e-4
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 1024
    seed: int = 0
    eval_fraction: float = 0.1
    # share of QA pairs also asked of a similar paper without their answer, answered with the
    # refusal (taught abstention; scripts/bench_abstention.py measures it against 0)
    negative_rate: float = 0.3
    eval_examples: int = 100  # held-out examples answered for exact match at the end
    save_steps: int = 50  # checkpoint interval: an interrupted run resumes from the last one
    logging_steps: int = 5
    # weight of each QA file's examples, by file stem (`synth` = 2: each example twice); None: 1
    mix: dict[str, float] | None = None
    # recompute activations in backward: ~5x less memory for ~30% more time per step
    gradient_checkpointing: bool = True


def tokenize_example(tokenizer, prompt: str, answer: str, max_length: int) -> dict[str, list[int]]:
    """input_ids = the prompt as `ask` feeds it (BOS included where the tokenizer adds one) +
    answer + EOS; labels mask the prompt, so loss falls on the answer and its EOS only. A prompt
    too long for `max_length` loses the start of its text (never its BOS, never the answer)."""
    prompt_ids = encode_prompt(tokenizer, prompt)
    answer_ids = tokenizer(answer_target(answer), add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids + [tokenizer.eos_token_id]
    overflow = max(0, len(prompt_ids) + len(answer_ids) - max_length)
    keep = len(leading_special_ids(tokenizer))
    prompt_ids = prompt_ids[:keep] + prompt_ids[keep + overflow:]
    return {"input_ids": prompt_ids + answer_ids,
            "attention_mask": [1] * (len(prompt_ids) + len(answer_ids)),
            "labels": [IGNORE] * len(prompt_ids) + answer_ids}


def pad_batch(features: list[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad to the longest example; padding is masked from attention and from the loss."""
    import torch

    width = max(len(f["input_ids"]) for f in features)
    batch = {key: [] for key in ("input_ids", "attention_mask", "labels")}
    for feature in features:
        gap = width - len(feature["input_ids"])
        batch["input_ids"].append(feature["input_ids"] + [pad_id] * gap)
        batch["attention_mask"].append(feature["attention_mask"] + [0] * gap)
        batch["labels"].append(feature["labels"] + [IGNORE] * gap)
    return {key: torch.tensor(value) for key, value in batch.items()}


def default_target_modules(model) -> list[str]:
    model_type = getattr(model.config, "model_type", "")
    if model_type not in ARCHITECTURE_TARGETS:
        raise TargetModuleError(
            f"no default LoRA targets for model type {model_type!r}: pass --target-modules")
    return ARCHITECTURE_TARGETS[model_type]


def check_target_modules(model, targets: list[str]) -> None:
    """Every named target must exist: a silent skip is how the old tool trained nothing."""
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in present]
    if missing:
        raise TargetModuleError(
            f"the model has no module named {', '.join(missing)} "
            f"(model type {getattr(model.config, 'model_type', '?')!r})")


def split_by_paper(examples: list[Example], fraction: float, seed: int):
    """(train, held-out): a `split` field decides where given; otherwise whole papers are held
    out, so no paraphrase of a training fact is ever evaluated."""
    held = [e for e in examples if e.split in HELD_OUT_SPLITS]
    free = [e for e in examples if e.split not in HELD_OUT_SPLITS]
    groups = sorted({e.group for e in free if e.split is None})
    random.Random(seed).shuffle(groups)
    chosen = set(groups[: round(len(groups) * fraction)])
    train = [e for e in free if e.group not in chosen]
    return train, held + [e for e in free if e.group in chosen]


@dataclass
class FinetuneResult:
    output: Path
    train_examples: int
    eval_examples: int
    metrics: dict[str, float] = field(default_factory=dict)
    tokens_per_second: float = 0.0  # real tokens trained per second, this run's steps only
    seconds: float = 0.0
    steps: int = 0  # optimizer steps trained by this run
    resumed_from_step: int = 0  # steps restored from a checkpoint of the same run


def write_adapter_card(output: Path, base_model: str, context_mode: str, data: str,
                       settings: TrainSettings, result: FinetuneResult, log_history,
                       base_fingerprint: dict[str, Any] | None = None) -> None:
    """Metadata (read back by `ask`), a Hugging Face style README and a loss curve.
    `base_fingerprint` (adapter.model_fingerprint of the base) lets `ask` accept the same
    base under another name."""
    metadata = {"base_model": base_model, "base_fingerprint": base_fingerprint,
                "context_mode": context_mode, "data": data,
                "prompt_format": PROMPT_TEMPLATE, "refusal": REFUSAL, "train_examples": result.train_examples,
                "eval_examples": result.eval_examples, "hyperparameters": asdict(settings),
                "metrics": result.metrics, "tokens_per_second": result.tokens_per_second,
                "steps": result.steps, "resumed_from_step": result.resumed_from_step,
                "versions": library_versions(), "command": _command_line()}
    (output / "hea_rag_adapter.json").write_text(json.dumps(metadata, indent=2))
    (output / "README.md").write_text(_card(metadata))
    _plot_loss(log_history, output / "loss_curve.png")


def _command_line() -> str:
    """The command that trained the adapter, as typed (program name shortened)."""
    import shlex
    import sys

    return shlex.join(["hea-rag", *sys.argv[1:]])


def library_versions() -> dict[str, str]:
    """Versions of what the adapter was trained with, for the card."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("hea-rag", "torch", "transformers", "peft", "bitsandbytes"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _card(metadata: dict[str, Any]) -> str:
    hyper = "\n".join(f"| {k} | {v} |" for k, v in metadata["hyperparameters"].items())
    metrics = "\n".join(f"| {k} | {v} |" for k, v in metadata["metrics"].items()) or (
        "| none | no example was held out (`--eval-fraction 0`, no `split` field) |")
    prompt = metadata["prompt_format"].replace("\n", "\\n")
    return f"""---
base_model: {metadata['base_model']}
library_name: peft
tags: [lora, high-entropy-alloys, question-answering, hea-rag]
---

# HEA question-answering LoRA adapter for {metadata['base_model']}

Trained by `hea-rag finetune` to answer questions about High Entropy Alloys from paper abstracts.

- Data: `{metadata['data']}`: {metadata['train_examples']} training examples, {metadata['eval_examples']} held out (whole papers).
- Taught abstention: a share of {metadata['hyperparameters']['negative_rate']} of the pairs also asked of a similar paper without the answer, target `{metadata['refusal']}`.
- Context mode: `{metadata['context_mode']}`.
- Prompt format (loss on the answer and its EOS only): `{prompt}`
- Command: `{metadata.get('command', '')}`
- Use: `hea-rag ask "..." --model {metadata['base_model']} --adapter THIS_FOLDER`

## Hyperparameters

| name | value |
|---|---|
{hyper}

## Versions

{", ".join(f"{k} {v}" for k, v in metadata.get("versions", {}).items())}

## Held-out metrics

| metric | value |
|---|---|
{metrics}

![loss](loss_curve.png)
"""


def _plot_loss(log_history, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in log_history if "loss" in r]
    held = [(r["step"], r["eval_loss"]) for r in log_history if "eval_loss" in r]
    figure, axes = plt.subplots(figsize=(6, 4))
    for points, label in ((train, "train loss"), (held, "eval loss")):
        if points:
            axes.plot(*zip(*points), marker="o" if len(points) < 20 else None, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    if train or held:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)

