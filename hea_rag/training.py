"""The finetune run: QA file -> grounded prompts -> (Q)LoRA training -> adapter folder."""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from contextlib import nullcontext
from pathlib import Path

from hea_rag.adapter import model_fingerprint
from hea_rag.errors import HeaRagError
from hea_rag.finetune import (
    FinetuneResult,
    TrainSettings,
    check_target_modules,
    default_target_modules,
    pad_batch,
    split_by_paper,
    tokenize_example,
    write_adapter_card,
)
from hea_rag.grounding import Grounder, is_prepared, read_examples, write_examples
from hea_rag.output import status
from hea_rag.prompt import REFUSAL, encode_prompt
from hea_rag.qa_data import load_pairs
from hea_rag.resume import checkpoint_to_resume, restored_progress, run_fingerprint

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def run_finetune(qa_paths: list[Path], model_name: str, output: Path, context_mode: str,
                 index_dir: Path, settings: TrainSettings, quantize: str | None = None,
                 show_progress: bool = False, resume: bool = True) -> FinetuneResult:
    """`resume`: continue the checkpoint of an interrupted run with the same data and settings
    (any other checkpoint under `output` is removed first); False always starts fresh."""
    from hea_rag.generator import Generator, default_quantization

    cuda = _cuda()
    quantization = quantize or default_quantization(cuda)
    return_freed_memory()
    tokenizer, model = load_base(model_name, quantization, cuda)
    examples = build_examples(qa_paths, context_mode, index_dir, tokenizer, model.config, settings,
                              model_name)
    train, held = split_by_paper(examples, settings.eval_fraction, settings.seed)
    if not train:
        raise HeaRagError(f"{', '.join(map(str, qa_paths))}: no training example left after grounding and splitting")
    status(f"finetune: {len(train)} training examples, {len(held)} held out (whole papers)")
    fingerprint = run_fingerprint(model_name, model.config, quantization, context_mode, settings,
                                  train)
    checkpoint = checkpoint_to_resume(output / "checkpoints", fingerprint, resume)
    model = with_lora(model, settings, quantization, cuda)
    per_epoch_eval = bool(held) and (cuda or quantization == "none")
    trainer = _trainer(model, tokenizer, train, held, settings, output, cuda, show_progress,
                       per_epoch_eval, quantization)
    result = FinetuneResult(output, len(train), len(held))
    train_from(trainer, checkpoint, result)
    generator = Generator(model_name, trainer.model, tokenizer, quantization)
    result.metrics = _held_out_metrics(trainer, generator, held, settings)
    trainer.model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    write_adapter_card(output, model_name, context_mode, " + ".join(map(str, qa_paths)), settings, result,
                       trainer.state.log_history, base_fingerprint=model_fingerprint(model.config))
    return result


def prepare_examples(qa_paths: list[Path], model_name: str, context_mode: str, index_dir: Path,
                     settings: TrainSettings, destination: Path) -> int:
    """Ground the QA files as `run_finetune` would and write the examples to `destination`
    (`finetune --save-examples`): the model's tokenizer and context window only, no weights."""
    tokenizer, model_config = load_tokenizer_and_config(model_name)
    examples = build_examples(qa_paths, context_mode, index_dir, tokenizer, model_config, settings,
                              model_name)
    write_examples(destination, examples, model_name, settings.negative_rate)
    return len(examples)


def load_tokenizer_and_config(model_name: str):
    from transformers import AutoConfig

    from hea_rag.generator import load_pretrained, model_source
    from hea_rag.runtime import quiet_libraries

    quiet_libraries()
    source, extra = model_source(model_name)
    tokenizer = load_pretrained(model_name, "tokenizer", source, extra)
    try:  # the tokenizer loaded, so the config is on disk unless the hub is the only source
        return tokenizer, AutoConfig.from_pretrained(source, local_files_only=True, **extra)
    except OSError:
        return tokenizer, AutoConfig.from_pretrained(source, **extra)


def return_freed_memory() -> None:
    """Make glibc hand freed blocks of 1 MB and more back to the system at once. By default its
    threshold grows to 32 MB, so the ~14 MB activations each layer frees during a training step
    stay resident: one step at the defaults peaked at 4.9 GB instead of 1.8 GB."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError, TypeError):
        pass  # not glibc: its allocator has no such threshold to tune


def load_base(model_name: str, quantization: str, cuda: bool):
    import torch

    from hea_rag.generator import load_pretrained, model_source, precision_kwargs
    from hea_rag.runtime import quiet_libraries

    quiet_libraries()
    source, extra = model_source(model_name)
    tokenizer = load_pretrained(model_name, "tokenizer", source, extra)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = precision_kwargs(quantization, cuda)
    if quantization == "none" and not cuda:
        kwargs["dtype"] = torch.float32  # CPU training: fp32 master weights for stable updates
    return tokenizer, load_pretrained(model_name, "model", source, {**extra, **kwargs})


def build_examples(qa_paths, context_mode, index_dir, tokenizer, model_config, settings,
                   model_name: str):
    """The training examples of the QA files: QA pairs grounded and packed with `ask`'s budget,
    prepared files (`--save-examples`) as they are; each file weighted by `--mix`."""
    weights = mix_weights(qa_paths, settings.mix)
    to_ground = [path for path in qa_paths if not is_prepared(path)]
    grounded = dict(zip(to_ground, _ground_files(to_ground, context_mode, index_dir, tokenizer,
                                                 model_config, settings))) if to_ground else {}
    kept = []
    for qa_path, weight in zip(qa_paths, weights):
        if qa_path in grounded:
            examples = grounded[qa_path]
        else:
            examples = read_examples(qa_path, model_name, settings.negative_rate)
            status(f"finetune: {qa_path}: {len(examples)} prepared examples")
        kept += weighted(examples, weight, settings.seed)
    negatives = sum(e.answer == REFUSAL for e in kept)
    mixed = f", weighted {dict(zip((p.stem for p in qa_paths), weights))}" if settings.mix else ""
    status(f"finetune: {len(kept)} examples, {negatives} negatives (answer: {REFUSAL!r}){mixed}")
    return kept


def _ground_files(qa_paths, context_mode, index_dir, tokenizer, model_config, settings):
    """Each QA file's grounded examples (a pair and its negative, when drawn), in file order."""
    files = []
    for qa_path in qa_paths:
        loaded, report = load_pairs(qa_path)
        dropped = ", ".join(f"{n} {why}" for why, n in report.dropped.items()) or "none"
        status(f"finetune: {qa_path}: {report.kept} QA pairs kept ({report.cleaned} answers "
               f"cleaned), dropped: {dropped}")
        files.append(loaded)
    from hea_rag.answer import AskSettings, prompt_budget

    count = lambda text: len(encode_prompt(tokenizer, text))  # noqa: E731 - as `ask` counts
    window = int(getattr(model_config, "max_position_embeddings", None) or 2048)

    def budget(question: str) -> int:  # what `ask` would allow, within --max-length
        return min(prompt_budget(AskSettings(), window, count(question)),
                   settings.max_length - 32)

    with _index_for(context_mode, index_dir) as retriever:
        grounder = Grounder(context_mode, count, budget, retriever, settings.negative_rate,
                            settings.seed)
        grounded = [[grounder.examples(pair) for pair in pairs] for pairs in files]
    count_grounded = sum(1 for groups in grounded for group in groups if group)
    total = sum(map(len, files))
    status(f"finetune: {count_grounded} pairs grounded ({context_mode} context), "
           f"{total - count_grounded} could not be grounded and were skipped")
    return [[e for group in groups for e in group] for groups in grounded]


def mix_weights(qa_paths, mix: dict[str, float] | None) -> list[float]:
    """Each file's weight from `--mix` (by file stem; unnamed files weigh 1)."""
    mix = mix or {}
    stems = [Path(p).stem for p in qa_paths]
    unknown = sorted(set(mix) - set(stems))
    if unknown:
        raise HeaRagError(f"--mix names {', '.join(unknown)}, which is no QA file given "
                          f"(the files are {', '.join(stems)})")
    return [mix.get(stem, 1.0) for stem in stems]


def weighted(examples: list, weight: float, seed: int) -> list:
    """`examples` repeated `weight` times: whole copies, then a fixed draw for the fraction."""
    import random

    whole, fraction = int(weight), weight - int(weight)
    drawn = random.Random(seed).sample(examples, round(len(examples) * fraction))
    return examples * whole + drawn


def _index_for(context_mode: str, index_dir: Path):
    """The index to ground in: none for the file's own (`given`) contexts."""
    if context_mode == "given":
        return nullcontext(None)
    from hea_rag.retrieve import open_retriever

    return open_retriever(index_dir)


def with_lora(model, settings: TrainSettings, quantization: str, cuda: bool):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    targets = settings.target_modules or default_target_modules(model)
    check_target_modules(model, targets)
    if quantization in ("4bit", "8bit"):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cuda)
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


class _Tokenized:
    """A list of tokenized examples as the map-style dataset the Trainer expects."""

    def __init__(self, examples, tokenizer, max_length: int):
        self.rows = [tokenize_example(tokenizer, e.prompt, e.answer, max_length) for e in examples]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        return self.rows[index]


def _trainer(model, tokenizer, train, held, settings, output: Path, cuda: bool, show_progress,
             per_epoch_eval: bool, quantization: str):
    """On the CPU, bitsandbytes 0.50 repacks 4-bit weights for inference on the first eval and
    then fails in backward, so there 4-bit runs evaluate once, at the end. The paged 8-bit
    optimizer is QLoRA's (bitsandbytes on CUDA); a full-precision base trains with plain AdamW."""
    import torch
    from transformers import Trainer, TrainingArguments

    from hea_rag.label_loss import label_loss, with_logits_to_keep

    arguments = TrainingArguments(
        output_dir=str(output / "checkpoints"), seed=settings.seed,
        num_train_epochs=settings.epochs, max_steps=settings.max_steps,
        learning_rate=settings.lr, per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        **_length_grouping(TrainingArguments),
        eval_strategy="epoch" if per_epoch_eval else "no", logging_steps=settings.logging_steps, save_steps=settings.save_steps,
        save_total_limit=2, report_to="none", remove_unused_columns=False,
        use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(),
        optim="paged_adamw_8bit" if cuda and quantization != "none" else "adamw_torch",
        # activations, not weights, fill the memory on the CPU too: one step of SmolLM2-135M on the
        # 8 longest dev_qa examples peaked at 10.5 GB without checkpointing, 1.8 GB with it
        # (and return_freed_memory), for about 20-40% more time per step
        gradient_checkpointing=settings.gradient_checkpointing, disable_tqdm=not show_progress,
        include_num_input_tokens_seen="non_padding",  # real tokens, for this run's tokens/s
    )
    return Trainer(
        model=model, args=arguments, train_dataset=_Tokenized(train, tokenizer, settings.max_length),
        eval_dataset=_Tokenized(held, tokenizer, settings.max_length) if held else None,
        data_collator=lambda features: with_logits_to_keep(
            pad_batch(features, tokenizer.pad_token_id)),
        compute_loss_func=label_loss,  # logits of the labelled positions only: see label_loss.py
    )


def _length_grouping(arguments_class) -> dict:
    """Batches of similar lengths, so little compute goes to padding. transformers renamed the
    switch in 5.2x (`group_by_length` -> `train_sampling_strategy`); accept both."""
    if "train_sampling_strategy" in arguments_class.__dataclass_fields__:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def train_from(trainer, checkpoint: Path | None, result: FinetuneResult) -> None:
    """Train, continuing `checkpoint` when given. Seconds, steps and tokens/s count only what
    this run trains (real tokens, padding excluded), never the steps a checkpoint restored."""
    steps_before, tokens_before = restored_progress(checkpoint)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    result.seconds = time.perf_counter() - started
    result.resumed_from_step = steps_before
    result.steps = trainer.state.global_step - steps_before
    tokens = trainer.state.num_input_tokens_seen - tokens_before
    result.tokens_per_second = tokens / result.seconds if result.steps else 0.0


def _held_out_metrics(trainer, generator, held, settings: TrainSettings) -> dict[str, float]:
    if not held:
        return {}
    from hea_rag.evaluate import answer_scores

    metrics = {"eval_loss": round(_final_eval_loss(trainer), 4)}
    trainer.model.eval()  # no dropout while answering
    sample = held[: settings.eval_examples]
    scores = [answer_scores(generator.generate(e.prompt, 48), e.answer) for e in sample]
    for key in ("exact_match", "f1", "contains"):
        metrics[key] = round(sum(s[key] for s in scores) / len(scores), 4)
    metrics["answered"] = len(sample)
    return metrics


def _final_eval_loss(trainer) -> float:
    """The held-out loss after the last step: the per-epoch evaluation's when it ran there (it
    does at the end of training), else a new one."""
    for row in reversed(trainer.state.log_history):
        if "eval_loss" in row and row.get("step") == trainer.state.global_step:
            return row["eval_loss"]
    return trainer.evaluate()["eval_loss"]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
