"""The finetune run: QA file -> grounded prompts -> (Q)LoRA training -> adapter folder."""

from __future__ import annotations

import time
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
from hea_rag.grounding import Grounder
from hea_rag.output import status
from hea_rag.prompt import encode_prompt
from hea_rag.qa_data import load_pairs


def run_finetune(qa_path: Path, model_name: str, output: Path, context_mode: str,
                 index_dir: Path, settings: TrainSettings, quantize: str | None = None,
                 top_k: int | None = None, show_progress: bool = False) -> FinetuneResult:
    from hea_rag.generator import Generator, default_quantization

    cuda = _cuda()
    quantization = quantize or default_quantization(cuda)
    tokenizer, model = load_base(model_name, quantization, cuda)
    examples = build_examples(qa_path, context_mode, index_dir, tokenizer, model.config, settings,
                         top_k)
    train, held = split_by_paper(examples, settings.eval_fraction, settings.seed)
    if not train:
        raise HeaRagError(f"{qa_path}: no training example left after grounding and splitting")
    status(f"finetune: {len(train)} training examples, {len(held)} held out (whole papers)")
    model = with_lora(model, settings, quantization, cuda)
    per_epoch_eval = bool(held) and (cuda or quantization == "none")
    trainer = _trainer(model, tokenizer, train, held, settings, output, cuda, show_progress,
                       per_epoch_eval)
    started = time.perf_counter()
    checkpoint = _last_checkpoint(output / "checkpoints")
    if checkpoint:
        status(f"finetune: resuming from {checkpoint}")
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - started
    result = FinetuneResult(output, len(train), len(held), seconds=seconds,
                            tokens_per_second=_tokens_per_second(trainer, train, seconds))
    generator = Generator(model_name, trainer.model, tokenizer, quantization)
    result.metrics = _held_out_metrics(trainer, generator, held, settings)
    trainer.model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    write_adapter_card(output, model_name, context_mode, str(qa_path), settings, result,
                       trainer.state.log_history, base_fingerprint=model_fingerprint(model.config))
    return result


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


def build_examples(qa_path, context_mode, index_dir, tokenizer, model_config, settings, top_k):
    pairs, report = load_pairs(qa_path)
    dropped = ", ".join(f"{n} {why}" for why, n in report.dropped.items()) or "none"
    status(f"finetune: {report.kept} QA pairs kept ({report.cleaned} answers cleaned), "
           f"dropped: {dropped}")
    from hea_rag.answer import AskSettings, prompt_budget

    top_k = top_k or AskSettings().top_k  # retrieved contexts hold what `ask` would show
    count = lambda text: len(encode_prompt(tokenizer, text))  # noqa: E731 - as `ask` counts
    window = int(getattr(model_config, "max_position_embeddings", None) or 2048)

    def budget(question: str) -> int:  # what `ask` would allow, within --max-length
        return min(prompt_budget(AskSettings(top_k=top_k), window, count(question)),
                   settings.max_length - 32)

    if context_mode == "given":
        grounder = Grounder("given", count, budget)
        examples = [grounder.ground(pair) for pair in pairs]
    else:
        from hea_rag.retrieve import open_retriever

        with open_retriever(index_dir) as retriever:
            grounder = Grounder(context_mode, count, budget, retriever, top_k)
            examples = [grounder.ground(pair) for pair in pairs]
    kept = [e for e in examples if e is not None]
    status(f"finetune: {len(kept)} pairs grounded ({context_mode} context), "
           f"{len(examples) - len(kept)} could not be grounded and were skipped")
    return kept


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
             per_epoch_eval: bool):
    """On the CPU, bitsandbytes 0.50 repacks 4-bit weights for inference on the first eval and
    then fails in backward, so there 4-bit runs evaluate once, at the end."""
    import torch
    from transformers import Trainer, TrainingArguments

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
        optim="paged_adamw_8bit" if cuda else "adamw_torch",
        gradient_checkpointing=cuda, disable_tqdm=not show_progress,
    )
    return Trainer(
        model=model, args=arguments, train_dataset=_Tokenized(train, tokenizer, settings.max_length),
        eval_dataset=_Tokenized(held, tokenizer, settings.max_length) if held else None,
        data_collator=lambda features: pad_batch(features, tokenizer.pad_token_id),
    )


def _length_grouping(arguments_class) -> dict:
    """Batches of similar lengths, so little compute goes to padding. transformers renamed the
    switch in 5.2x (`group_by_length` -> `train_sampling_strategy`); accept both."""
    if "train_sampling_strategy" in arguments_class.__dataclass_fields__:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def _last_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint of an interrupted run in `folder`, if any."""
    checkpoints = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(checkpoints, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _tokens_per_second(trainer, train, seconds: float) -> float:
    """Real (unpadded) tokens the optimizer saw per second of training."""
    args = trainer.args
    seen = trainer.state.global_step * args.per_device_train_batch_size * args.gradient_accumulation_steps
    mean_length = sum(len(row["input_ids"]) for row in trainer.train_dataset.rows) / len(train)
    return seen * mean_length / seconds if seconds else 0.0


def _held_out_metrics(trainer, generator, held, settings: TrainSettings) -> dict[str, float]:
    if not held:
        return {}
    from hea_rag.evaluate import answer_scores

    metrics = {"eval_loss": round(trainer.evaluate()["eval_loss"], 4)}
    trainer.model.eval()  # no dropout while answering
    sample = held[: settings.eval_examples]
    scores = [answer_scores(generator.generate(e.prompt, 48), e.answer) for e in sample]
    for key in ("exact_match", "f1", "contains"):
        metrics[key] = round(sum(s[key] for s in scores) / len(scores), 4)
    metrics["answered"] = len(sample)
    return metrics


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
