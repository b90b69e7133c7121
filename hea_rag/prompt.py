"""The one prompt format, shared by `ask` and `finetune` so the two can never drift apart.

    {context}\\nQuestion: {question}\\nAnswer:

The answer follows after a space and ends at the first newline (leading whitespace skipped), at
EOS, or where the model starts a new `Question:`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

PROMPT_TEMPLATE = "{context}\nQuestion: {question}\nAnswer:"
# what `finetune --negatives` teaches the model to answer when the context does not hold the answer
REFUSAL = "Not reported in this paper."
PASSAGE_SEPARATOR = "\n"
STOP_MARKERS = ("\n", "Question:")

TokenCounter = Callable[[str], int]


def build_prompt(context: str, question: str) -> str:
    return PROMPT_TEMPLATE.format(context=context.strip(), question=question.strip())


def answer_target(answer: str) -> str:
    """The completion the model is trained to produce after `Answer:` (EOS is added by the caller)."""
    return " " + answer.strip()


def cut_answer(generated: str) -> str:
    """The answer in generated text: up to the first newline or new `Question:`, stripped.

    Leading whitespace is skipped first: untuned models often open with a newline.
    """
    generated = generated.lstrip()
    end = len(generated)
    for marker in STOP_MARKERS:
        position = generated.find(marker)
        if position != -1:
            end = min(end, position)
    return generated[:end].strip()


def is_refusal(answer: str) -> bool:
    """Whether a generated answer is the trained refusal (case and final full stop aside)."""
    return _bare(answer) == _bare(REFUSAL)


def _bare(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".").strip()


def answer_complete(generated: str) -> bool:
    """True once `generated` holds a whole answer, so generation can stop."""
    text = generated.lstrip()
    return any(marker in text for marker in STOP_MARKERS)


def join_passages(passages: Sequence[tuple[Hashable, str]]) -> str:
    """Context text: passages of one source joined by spaces (an abstract reads as written),
    sources separated by newlines."""
    lines: list[list[str]] = []
    previous: object = object()
    for source, text in passages:
        if source != previous or not lines:
            lines.append([])
        lines[-1].append(text.strip())
        previous = source
    return PASSAGE_SEPARATOR.join(" ".join(line) for line in lines)


def fit_prompt(question: str, passages: Sequence[tuple[Hashable, str]], count_tokens: TokenCounter,
               max_prompt_tokens: int, print_order: Sequence[tuple[Hashable, str]] | None = None,
               ) -> tuple[str, list[tuple[Hashable, str]]]:
    """The prompt holding as many passages as fit in `max_prompt_tokens`, and those passages.

    Passages come most relevant first as (source, text) and go in whole: one that does not fit
    is skipped and a shorter later one may still go in, so the model never reads half a
    sentence as if it were the source. The chosen ones are printed in the order of
    `print_order` (the same passages in reading order; default: `passages`). The whole prompt
    is counted, since tokens can merge across joins.
    """
    order = {passage: position for position, passage in enumerate(print_order or passages)}
    used: list[tuple[Hashable, str]] = []
    for passage in passages:
        candidate = sorted(used + [passage], key=order.__getitem__)
        if count_tokens(build_prompt(join_passages(candidate), question)) <= max_prompt_tokens:
            used = candidate
    return build_prompt(join_passages(used), question), used


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """The token ids of `prompt` exactly as the model reads it, at inference and in training:
    the special tokens the tokenizer puts before a text (BOS for Llama, Mistral or Qwen
    tokenizers; none for Phi-2's), then the text; never a trailing EOS. Budgets count these."""
    return leading_special_ids(tokenizer) + tokenizer(prompt, add_special_tokens=False)["input_ids"]


def leading_special_ids(tokenizer) -> list[int]:
    """What the tokenizer adds before any text, found by encoding a probe with and without."""
    probe = "a"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start]
    return []
