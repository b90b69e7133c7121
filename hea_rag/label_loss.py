"""The training loss over the labelled positions only (the answer and its EOS).

A causal LM's own loss projects every position onto the whole vocabulary (SmolLM2: 49,152 fp32
numbers per token, then as many for the log-softmax and its gradient), which held most of
`finetune`'s memory although the labels cover a few answer tokens. Here the collator asks the
model (`logits_to_keep`, a 1-D index tensor in transformers 5) for the logits of just the positions
whose next token is a label, and the cross-entropy over them is the same number.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from hea_rag.finetune import IGNORE


def label_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions (one set for the whole batch) whose next token is a label in any row."""
    return (labels[:, 1:] != IGNORE).any(dim=0).nonzero().flatten()


def with_logits_to_keep(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch plus the `logits_to_keep` that makes the model compute only the needed logits."""
    return {**batch, "logits_to_keep": label_positions(batch["labels"])}


def label_loss(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """Cross-entropy of the kept logits against their next-token labels: the mean over labels,
    or the sum over `num_items_in_batch` (the Trainer's count across gradient accumulation)."""
    targets = labels[:, label_positions(labels) + 1].to(outputs.logits.device)
    logits = outputs.logits.float()  # upcast like transformers' own loss: bf16 sums drift
    total = functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                     ignore_index=IGNORE, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum()
    return total / count
