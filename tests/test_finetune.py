"""`finetune`: QA layouts, answer-only labels, target modules, and real training of a tiny Phi."""

from __future__ import annotations

import json
import shutil

import pytest

from hea_rag.errors import InputError
from hea_rag.finetune import (
    IGNORE,
    TargetModuleError,
    TrainSettings,
    check_target_modules,
    default_target_modules,
    pad_batch,
    split_by_paper,
    tokenize_example,
)
from hea_rag.grounding import Example
from hea_rag.prompt import build_prompt
from hea_rag.qa_data import clean_answer, load_pairs

# --- QA layouts --------------------------------------------------------------------------------


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_upstream_layout_with_index_keyed_dicts(tmp_path):
    data = {"data": {"0": {"paragraphs": {"0": {"context": "{'alloy': 'CoCrNi'}", "qas": {
        "0": {"id": "a", "question": "Yield strength of CoCrNi?", "answers": {"0": {"text": "700 MPa", "answer_start": 3}}},
        "1": {"id": "b", "question": "Hardness of CoCrNi?", "answers": {"0": {"text": "<Value> <Unit>", "answer_start": 0}}},
        "2": {"id": "c", "question": "Strain of CoCrNi?", "answers": {"0": {"text": "35.7, %", "answer_start": 0}}},
    }}}}}}
    pairs, report = load_pairs(_write(tmp_path, "qa.json", data))
    assert [(p.question, p.answer) for p in pairs] == [
        ("Yield strength of CoCrNi?", "700 MPa"), ("Strain of CoCrNi?", "35.7 %")]
    assert pairs[0].context == "{'alloy': 'CoCrNi'}"
    assert report.dropped == {"placeholder answer": 1} and report.cleaned == 1


def test_standard_squad_lists(tmp_path):
    data = {"data": [{"paragraphs": [{"context": "CoCrNi is FCC.", "qas": [
        {"question": "Which lattice?", "answers": [{"text": "FCC", "answer_start": 10}]}]}]}]}
    pairs, _ = load_pairs(_write(tmp_path, "squad.json", data))
    assert [(p.question, p.answer, p.context) for p in pairs] == [("Which lattice?", "FCC", "CoCrNi is FCC.")]


def test_jsonl_with_optional_fields_and_empty_answers_dropped(tmp_path):
    lines = [{"question": "Q1?", "answer": "1 GPa", "doi": "10.1/x", "split": "train"},
             {"question": "Q2?", "answer": " , "}]
    path = _write(tmp_path, "qa.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    pairs, report = load_pairs(path)
    assert [(p.answer, p.doi, p.split) for p in pairs] == [("1 GPa", "10.1/x", "train")]
    assert report.dropped == {"empty answer": 1}


@pytest.mark.parametrize("name, content, where", [
    ("bad.jsonl", '{"question": "Q?", "answer": "A"}\n{not json\n', "bad.jsonl line 2"),
    ("bad.jsonl", '{"question": "Q?"}\n', "bad.jsonl line 1"),
    ("bad.json", "{\"data\": ", "bad.json"),
    ("bad.json", {"data": [{"paragraphs": [{"qas": [{"answers": []}]}]}]}, "bad.json"),
    ("bad.json", [1, 2], "bad.json"),
])
def test_malformed_files_raise_input_errors_naming_the_place(tmp_path, name, content, where):
    with pytest.raises(InputError) as error:
        load_pairs(_write(tmp_path, name, content))
    assert where in str(error.value)


def test_real_upstream_qa_set_parses(shared_dir):
    pairs, report = load_pairs(shared_dir / "data" / "hea_qa" / "HEA_QA_DATASET.json")
    assert (report.kept, report.cleaned, sum(report.dropped.values())) == (3392, 205, 0)
    density = [p.answer for p in pairs
               if p.question == "What is the density of MoNbVTa0.5Cr at Room Temperature?"]
    assert density == ["9.11 g·cm−3"]  # stored as "9.11 g·cm−3,"
    assert all(p.answer == clean_answer(p.answer) and "<" not in p.answer for p in pairs)


# --- labels ------------------------------------------------------------------------------------


def test_labels_mask_prompt_and_padding_token_by_token(phi_tokenizer):
    prompt = build_prompt("MoNbTaW keeps 405 MPa at 1600 °C.", "Yield strength at 1600 °C?")
    row = tokenize_example(phi_tokenizer, prompt, "405 MPa", max_length=512)
    prompt_ids = phi_tokenizer(prompt)["input_ids"]
    answer_ids = phi_tokenizer(" 405 MPa")["input_ids"]
    assert row["input_ids"] == prompt_ids + answer_ids + [50256]
    for position, (token, label) in enumerate(zip(row["input_ids"], row["labels"])):
        if position < len(prompt_ids):
            assert label == IGNORE, f"prompt token {position} is in the loss"
        else:
            assert label == token, f"answer token {position} is not in the loss"
    assert phi_tokenizer.decode([t for t in row["labels"] if t != IGNORE]) == " 405 MPa<|endoftext|>"
    batch = pad_batch([row, tokenize_example(phi_tokenizer, "Short\nQuestion: Q?\nAnswer:", "A", 512)],
                      pad_id=50256)
    short_length = int(batch["attention_mask"][1].sum())
    assert (batch["labels"][1, short_length:] == IGNORE).all()
    assert (batch["attention_mask"][1, short_length:] == 0).all()


def test_long_prompt_loses_its_start_never_the_answer(phi_tokenizer):
    prompt = build_prompt("word " * 600, "Q?")
    row = tokenize_example(phi_tokenizer, prompt, "3346 MPa", max_length=64)
    assert len(row["input_ids"]) == 64
    kept = [t for t in row["labels"] if t != IGNORE]
    assert phi_tokenizer.decode(kept) == " 3346 MPa<|endoftext|>"


def test_split_holds_out_whole_papers_and_honours_split_fields():
    examples = [Example(f"p{i}", "a", f"paper:{i % 10}", None) for i in range(50)]
    examples += [Example("x", "a", "paper:99", "heldout"), Example("y", "a", "paper:98", "train")]
    train, held = split_by_paper(examples, fraction=0.2, seed=0)
    assert {e.group for e in train}.isdisjoint({e.group for e in held})
    assert "paper:99" in {e.group for e in held} and "paper:98" in {e.group for e in train}
    assert len({e.group for e in held} - {"paper:99"}) == 2


# --- model: tiny Phi -------------------------------------------------------------------------


def test_phi_default_targets_and_missing_module_is_an_error(tiny_phi_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_phi_dir)
    assert default_target_modules(model) == ["q_proj", "k_proj", "v_proj", "dense"]
    with pytest.raises(TargetModuleError, match="o_proj"):
        check_target_modules(model, ["q_proj", "o_proj"])


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory):
    """Eight given-context pairs over four fake papers; one answer each, easy to memorize."""
    folder = tmp_path_factory.mktemp("qa")
    facts = [("CoCrNi", "FCC"), ("NbMoTaW", "BCC"), ("AlCoCrFeNi", "B2"), ("TiZrHfNbTa", "BCC")]
    lines = []
    for alloy, phase in facts:
        context = f"The {alloy} alloy was cast and annealed. Its lattice is {phase}."
        for question in (f"Which lattice does {alloy} have?", f"What is the structure of {alloy}?"):
            lines.append({"question": question, "answer": phase, "context": context})
    path = folder / "qa.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


TINY_SETTINGS = dict(rank=8, alpha=16, dropout=0.0, lr=5e-3, batch_size=4, max_length=128,
                     eval_fraction=0.25, seed=0, logging_steps=1, eval_examples=4)


def _finetune(qa, model_dir, output, quantize, steps=12, resume=True, **overrides):
    from hea_rag.training import run_finetune

    settings = TrainSettings(**{**TINY_SETTINGS, "max_steps": steps, **overrides})
    return run_finetune([qa], str(model_dir), output, "given", output / "no-index", settings,
                        quantize=quantize, resume=resume)


@pytest.mark.parametrize("quantize", ["none", "4bit"])
def test_tiny_phi_trains_saves_and_reloads(tiny_qa, tiny_phi_dir, tmp_path, quantize,
                                           monkeypatch):
    import torch
    from transformers import Trainer

    from hea_rag.generator import load_generator

    evaluated_at, evaluate = [], Trainer.evaluate
    monkeypatch.setattr(Trainer, "evaluate", lambda self, *args, **kwargs: (
        evaluated_at.append(self.state.global_step) or evaluate(self, *args, **kwargs)))
    result = _finetune(tiny_qa, tiny_phi_dir, tmp_path / "adapter", quantize)
    losses = [row["loss"] for row in _log(tmp_path / "adapter") if "loss" in row]
    assert losses[-1] < losses[0], f"loss did not fall: {losses}"
    assert result.train_examples == 6 and result.eval_examples == 2
    assert (result.steps, result.resumed_from_step, result.metrics["answered"]) == (12, 0, 2)
    folder = tmp_path / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md",
                 "hea_rag_adapter.json", "loss_curve.png", "tokenizer.json"):
        assert (folder / name).exists(), name
    config = json.loads((folder / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "dense"}
    metadata = json.loads((folder / "hea_rag_adapter.json").read_text())
    assert metadata["base_model"] == str(tiny_phi_dir) and metadata["context_mode"] == "given"
    assert metadata["metrics"] == result.metrics and metadata["metrics"]["eval_loss"] > 0
    assert evaluated_at[-1] == 12 and len(set(evaluated_at)) == len(evaluated_at)  # none redone
    assert metadata["hyperparameters"]["lr"] == 5e-3 and metadata["steps"] == 12
    plain = load_generator(str(tiny_phi_dir), quantize="none")
    adapted = load_generator(str(tiny_phi_dir), adapter=folder, quantize="none")
    ids = plain.tokenizer("Which lattice does CoCrNi have?", return_tensors="pt")
    with torch.no_grad():
        assert not torch.allclose(plain.model(**ids).logits, adapted.model(**ids).logits)


def _log(folder):
    checkpoints = sorted((folder / "checkpoints").glob("checkpoint-*"),
                         key=lambda p: int(p.name.split("-")[-1]))
    return json.loads((checkpoints[-1] / "trainer_state.json").read_text())["log_history"]


def test_interrupted_run_resumes_from_its_last_checkpoint(tiny_qa, tiny_phi_dir, tmp_path, capsys):
    output = tmp_path / "adapter"
    _finetune(tiny_qa, tiny_phi_dir, output, "none", steps=4, save_steps=2)
    # as if the run had died after step 2: the later checkpoint and the final adapter never got written
    shutil.rmtree(output / "checkpoints" / "checkpoint-4")
    (output / "adapter_model.safetensors").unlink()
    capsys.readouterr()
    result = _finetune(tiny_qa, tiny_phi_dir, output, "none", steps=4, save_steps=2)
    err = capsys.readouterr().err
    assert "resuming from" in err and "checkpoint-2" in err and "starting fresh" not in err
    state = _state(output, 4)
    assert state["global_step"] == 4
    steps_logged = [row["step"] for row in state["log_history"] if "loss" in row]
    assert steps_logged == [1, 2, 3, 4]  # steps 1-2 come from the checkpoint, not a rerun from 0
    assert (output / "adapter_model.safetensors").exists()
    # throughput counts the two steps trained now, not the two restored
    assert (result.steps, result.resumed_from_step) == (2, 2)
    trained_now = state["num_input_tokens_seen"] - _state(output, 2)["num_input_tokens_seen"]
    assert 0 < trained_now < state["num_input_tokens_seen"]
    assert result.tokens_per_second * result.seconds == pytest.approx(trained_now)


def _state(folder, step):
    path = folder / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json"
    return json.loads(path.read_text())


def test_rerun_with_other_settings_or_base_starts_fresh_and_trains_every_step(
        tiny_qa, tiny_phi_dir, phi_tokenizer, tmp_path, capsys):
    """The stale checkpoint of another run is never resumed: not with another learning rate
    (it would train zero steps and claim the new settings), not on another base (a crash)."""
    output = tmp_path / "adapter"
    _finetune(tiny_qa, tiny_phi_dir, output, "none", steps=4, save_steps=2, eval_fraction=0)
    capsys.readouterr()
    result = _finetune(tiny_qa, tiny_phi_dir, output, "none", steps=4, save_steps=2,
                       eval_fraction=0, lr=1e-3)
    err = capsys.readouterr().err
    assert "starting fresh, removing 2 checkpoint(s)" in err and "different lr" in err
    assert "resuming" not in err and (result.steps, result.resumed_from_step) == (4, 0)
    rates = [row["learning_rate"] for row in _state(output, 4)["log_history"] if "loss" in row]
    assert len(rates) == 4 and max(rates) <= 1e-3  # no step of the 5e-3 run is left
    metadata = json.loads((output / "hea_rag_adapter.json").read_text())
    assert (metadata["hyperparameters"]["lr"], metadata["steps"]) == (1e-3, 4)

    other_base = _tiny_phi(tmp_path / "other-base", phi_tokenizer, hidden_size=32)
    result = _finetune(tiny_qa, other_base, output, "none", steps=4, save_steps=2,
                       eval_fraction=0, lr=1e-3)
    err = capsys.readouterr().err
    assert "starting fresh" in err and "different base_model, architecture" in err
    assert (result.steps, result.resumed_from_step) == (4, 0)


def _tiny_phi(folder, tokenizer, hidden_size):
    """Another tiny Phi, saved with the real Phi-2 tokenizer."""
    from transformers import PhiConfig, PhiForCausalLM

    config = PhiConfig(vocab_size=51200, hidden_size=hidden_size, intermediate_size=64,
                       num_hidden_layers=1, num_attention_heads=4, eos_token_id=50256,
                       bos_token_id=50256)
    PhiForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_no_resume_starts_fresh_where_a_matching_run_would_resume(tiny_qa, tiny_phi_dir,
                                                                   tmp_path):
    from click.testing import CliRunner

    from hea_rag.cli import cli

    output = tmp_path / "adapter"
    command = ["finetune", str(tiny_qa), "--model", str(tiny_phi_dir), "--context", "given",
               "--output", str(output), "--max-steps", "2", "--batch-size", "4",
               "--max-length", "128", "--eval-fraction", "0"]
    first = CliRunner().invoke(cli, command)
    assert first.exit_code == 0, first.stderr
    (output / "checkpoints" / "checkpoint-2" / "trainer_state.json").unlink()  # died mid-save
    again = CliRunner().invoke(cli, command)
    assert again.exit_code == 0, again.stderr
    assert "none of them was completely written" in again.stderr
    same = CliRunner().invoke(cli, command)
    assert "resuming from" in same.stderr and "0 steps" in same.stderr
    fresh = CliRunner().invoke(cli, command + ["--no-resume"])
    assert fresh.exit_code == 0, fresh.stderr
    assert "starting fresh, removing 1 checkpoint(s)" in fresh.stderr
    assert "--no-resume" in fresh.stderr and "2 steps in" in fresh.stderr
    assert json.loads((output / "hea_rag_adapter.json").read_text())["steps"] == 2


def test_checkpoints_without_a_readable_run_record_are_stale(tmp_path, capsys):
    from hea_rag.resume import RUN_FILE, checkpoint_to_resume

    folder = tmp_path / "checkpoints"
    (folder / "checkpoint-50").mkdir(parents=True)
    (folder / "checkpoint-50" / "trainer_state.json").write_text("{}")
    (folder / "checkpoint-notes").mkdir()  # not a checkpoint: left alone
    assert checkpoint_to_resume(folder, {"lr": 0.1}) is None
    assert "no readable run.json" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-notes", RUN_FILE]
    (folder / "checkpoint-50").mkdir()
    (folder / "checkpoint-50" / "trainer_state.json").write_text("{}")
    assert checkpoint_to_resume(folder, {"lr": 0.1}) == folder / "checkpoint-50"
    (folder / RUN_FILE).write_text('{"lr": 0.1')  # torn write of an old version
    assert checkpoint_to_resume(folder, {"lr": 0.1}) is None
    assert not (folder / "checkpoint-50").exists()


def test_fingerprint_changes_with_the_training_examples_not_with_logging(tiny_phi_dir):
    from transformers import AutoConfig

    from hea_rag.resume import run_fingerprint

    config = AutoConfig.from_pretrained(tiny_phi_dir)
    examples = [Example("ctx\nQuestion: q?\nAnswer:", "FCC", "paper:1", None)]
    base = run_fingerprint("m", config, "none", "abstract", TrainSettings(), examples)
    assert base == run_fingerprint("m", config, "none", "abstract",
                                   TrainSettings(logging_steps=1, save_steps=7), examples)
    other = [Example("ctx\nQuestion: q?\nAnswer:", "BCC", "paper:1", None)]
    changed = run_fingerprint("m", config, "none", "abstract", TrainSettings(), other)
    assert {k for k in base if base[k] != changed[k]} == {"train_examples_sha256"}
    assert base["architecture"]["hidden_size"] == 64 and base["max_length"] == 1024


# --- memory: logits only where labels are ---------------------------------------------------


def _two_row_batch(tokenizer):
    rows = [tokenize_example(tokenizer, build_prompt("MoNbTaW keeps 405 MPa at 1600 °C.",
                                                     "Yield strength at 1600 °C?"), "405 MPa", 128),
            tokenize_example(tokenizer, build_prompt("CoCrNi is FCC.", "Which lattice?"), "FCC", 128)]
    return rows, pad_batch(rows, tokenizer.pad_token_id)


def test_label_loss_equals_the_models_own_loss_and_gradient(tiny_phi_dir, phi_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from hea_rag.label_loss import label_loss, with_logits_to_keep

    model = AutoModelForCausalLM.from_pretrained(tiny_phi_dir)
    rows, batch = _two_row_batch(phi_tokenizer)
    weight = model.model.layers[0].self_attn.q_proj.weight
    expected = model(**batch).loss
    inputs = with_logits_to_keep(batch)
    labels = inputs.pop("labels")
    outputs = model(**inputs)
    # the short row's answer ends where the long row's prompt still runs: the union is kept
    predicting = {i - 1 for row in rows for i, label in enumerate(row["labels"]) if label != IGNORE}
    assert outputs.logits.shape[:2] == (2, len(predicting)) < (2, batch["input_ids"].shape[1])
    loss = label_loss(outputs, labels)
    assert abs(loss.item() - expected.item()) < 1e-5
    count = sum(label != IGNORE for row in rows for label in row["labels"])
    summed = label_loss(outputs, labels, num_items_in_batch=torch.tensor(count))
    assert abs(summed.item() - expected.item()) < 1e-5
    want, = torch.autograd.grad(expected, weight, retain_graph=True)
    got, = torch.autograd.grad(loss, weight)
    assert torch.allclose(got, want, atol=1e-6)


def test_trainer_projects_only_label_positions_onto_the_vocabulary(tiny_phi_dir, phi_tokenizer,
                                                                   tmp_path):
    """The memory fix in place: the Trainer's loss asks the model for the logits of the label
    positions, not of every position (the whole-vocabulary tensor that took 14 GB)."""
    from transformers import AutoModelForCausalLM

    from hea_rag.training import _trainer, with_lora

    settings = TrainSettings(**TINY_SETTINGS)
    model = with_lora(AutoModelForCausalLM.from_pretrained(tiny_phi_dir), settings, "none", False)
    examples = [Example(build_prompt("CoCrNi is FCC.", "Which lattice?"), "FCC", "p", None)]
    trainer = _trainer(model, phi_tokenizer, examples, [], settings, tmp_path, False, False, False,
                       "none")
    rows, batch = _two_row_batch(phi_tokenizer)
    predicting = {i - 1 for row in rows for i, label in enumerate(row["labels"]) if label != IGNORE}
    shapes = []
    head = model.get_output_embeddings()
    hook = head.register_forward_hook(lambda module, args, out: shapes.append(tuple(out.shape)))
    loss = trainer.compute_loss(trainer.model, trainer.data_collator(rows))
    hook.remove()
    assert shapes == [(2, len(predicting), 51200)] and len(predicting) < batch["input_ids"].shape[1]
    assert abs(loss.item() - model(**batch).loss.item()) < 1e-5


def test_training_recomputes_activations_instead_of_keeping_them(tiny_phi_dir, phi_tokenizer,
                                                                  tmp_path):
    """Activation checkpointing on the CPU too (activations, not logits, then fill memory): each
    layer's inside runs twice per step, once forward and once again in backward."""
    from transformers import AutoModelForCausalLM

    from hea_rag.training import _trainer, with_lora

    settings = TrainSettings(**{**TINY_SETTINGS, "max_steps": 1, "save_steps": 10})
    model = with_lora(AutoModelForCausalLM.from_pretrained(tiny_phi_dir), settings, "none", False)
    examples = [Example(build_prompt("CoCrNi is FCC.", "Which lattice?"), "FCC", "p", None)] * 4
    trainer = _trainer(model, phi_tokenizer, examples, [], settings, tmp_path, False, False, False,
                       "none")
    calls = []
    mlp = model.base_model.model.model.layers[-1].mlp  # the first one's input needs no gradient
    forward = mlp.forward  # wrapped on the instance: module hooks do not run in the recompute
    mlp.forward = lambda *args, **kwargs: calls.append(mlp.training) or forward(*args, **kwargs)
    trainer.train()
    assert calls == [True, True]


def test_grounding_matches_answers_whatever_their_spacing():
    from hea_rag.grounding import _contains

    assert _contains("the fracture strain was 15.92%. The average", "15.92 %")
    assert _contains("a Strength of 1,200 MPa", "1200 MPa")
    assert not _contains("the fracture strain was 15.9%.", "15.92 %")


# --- the command line: defaults end to end ----------------------------------------------------

CORPUS_QA = [
    ("What compressive yield strength did MoNbVTa0.5Cr reach at room temperature?", "2783 MPa"),
    ("How much Laves phase did the BCC matrix of MoNbVTa0.5Cr hold?", "20.45 %"),
    ("What yield strength did the annealed Al0.3CoCrFeNi reach?", "650 MPa"),
    ("What elongation did the rolled Al0.3CoCrFeNi keep?", "35 %"),
    ("What Vickers hardness did the (TiZrHfCr)C ceramics reach?", "24.5 GPa"),
    ("At what temperature was (TiZrHfCr)C synthesized?", "2000 °C"),
]


def test_finetune_command_defaults_to_abstract_context_and_ask_then_uses_the_adapter(
        corpus_csv, tiny_phi_dir, tmp_path):
    from click.testing import CliRunner

    from hea_rag.cli import cli
    from hea_rag.indexer import index_paths

    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in CORPUS_QA))
    result = CliRunner().invoke(cli, [
        "finetune", str(qa), "--model", str(tiny_phi_dir), "--index", str(folder),
        "--max-steps", "2", "--batch-size", "2", "--max-length", "256", "--eval-fraction", "0",
        "--negatives", "0"])
    assert result.exit_code == 0, result.stderr
    assert "pairs grounded (abstract context)" in result.stderr
    adapter = folder / "adapter"
    metadata = json.loads((adapter / "hea_rag_adapter.json").read_text())
    assert metadata["context_mode"] == "abstract" and metadata["train_examples"] == len(CORPUS_QA)

    answer = CliRunner().invoke(cli, ["ask", CORPUS_QA[0][0], "--json", "--model", str(tiny_phi_dir),
                                      "--index", str(folder), "--max-new-tokens", "2"])
    assert answer.exit_code == 0, answer.stderr
    record = json.loads(answer.stdout)
    assert record["adapter"] == str(adapter) and record["sources"]


def test_negatives_ask_the_question_of_a_similar_paper_without_the_answer(corpus_csv, tmp_path,
                                                                          phi_tokenizer):
    """Taught abstention: with --negatives 1 every grounded pair also comes as the same question
    over another retrieved paper that lacks its answer, with the refusal as target; the draw is
    fixed per pair, so file order changes nothing; 0 adds none."""
    from hea_rag.grounding import Grounder
    from hea_rag.indexer import index_paths
    from hea_rag.prompt import REFUSAL
    from hea_rag.qa_data import QAPair
    from hea_rag.retrieve import open_retriever

    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    count = lambda text: len(phi_tokenizer(text)["input_ids"])  # noqa: E731
    pairs = [QAPair(q, a) for q, a in CORPUS_QA]
    with open_retriever(folder) as retriever:
        def ground(rate, order):
            grounder = Grounder("abstract", count, lambda q: 700, retriever, negative_rate=rate)
            return [e for pair in order for e in grounder.examples(pair)]

        none, every = ground(0.0, pairs), ground(1.0, pairs)
        half = ground(0.5, pairs)
        half_reversed = ground(0.5, pairs[::-1])
    assert len(none) == len(pairs) and all(e.answer != REFUSAL for e in none)
    negatives = [e for e in every if e.answer == REFUSAL]
    assert len(negatives) == len(pairs)
    for (question, answer), negative, positive in zip(CORPUS_QA, negatives, none):
        assert negative.prompt.endswith(f"Question: {question}\nAnswer:")
        assert answer not in negative.prompt and answer in positive.prompt
        assert negative.group == positive.group  # split with its positive, never across
        assert negative.prompt != positive.prompt
    assert sorted(e.prompt for e in half) == sorted(e.prompt for e in half_reversed)
    assert 0 < sum(e.answer == REFUSAL for e in half) < len(pairs)


def test_adapter_card_records_the_negative_rate_and_refusal(tmp_path):
    from hea_rag.finetune import FinetuneResult, TrainSettings, write_adapter_card
    from hea_rag.prompt import REFUSAL

    settings = TrainSettings(negative_rate=0.25)
    write_adapter_card(tmp_path, "base", "abstract", "qa.jsonl", settings,
                       FinetuneResult(tmp_path, 10, 0), [])
    metadata = json.loads((tmp_path / "hea_rag_adapter.json").read_text())
    assert metadata["hyperparameters"]["negative_rate"] == 0.25 and metadata["refusal"] == REFUSAL
    assert "torch" in metadata["versions"] and "transformers" in metadata["versions"]
    card = (tmp_path / "README.md").read_text()
    assert "0.25 of the pairs" in card and REFUSAL in card


def test_mix_weights_each_qa_file_by_its_name(tmp_path):
    from hea_rag.errors import HeaRagError
    from hea_rag.training import mix_weights, weighted

    files = [tmp_path / "dev_qa.jsonl", tmp_path / "synth.jsonl"]
    assert mix_weights(files, None) == [1.0, 1.0]
    assert mix_weights(files, {"synth": 2.5}) == [1.0, 2.5]
    with pytest.raises(HeaRagError, match="upstream.*dev_qa, synth"):
        mix_weights(files, {"upstream": 1})
    items = list(range(10))
    twice_and_half = weighted(items, 2.5, seed=0)
    assert len(twice_and_half) == 25 and twice_and_half[:20] == items * 2
    assert set(twice_and_half[20:]) <= set(items) and len(set(twice_and_half[20:])) == 5
    assert weighted(items, 2.5, seed=0) == twice_and_half  # a fixed draw
    assert weighted(items, 0, seed=0) == []


def test_mix_option_is_checked_before_any_work(tmp_path):
    from click.testing import CliRunner

    from hea_rag.cli import cli

    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "q?", "answer": "a"}) + "\n")
    result = CliRunner().invoke(cli, ["finetune", str(qa), "--mix", "qa=two", "--model", "x"])
    assert result.exit_code != 0 and "--mix: 'qa=two' is not NAME=WEIGHT" in result.stderr


def test_saved_examples_train_elsewhere_without_the_index(corpus_csv, tiny_phi_dir, tmp_path):
    """`--save-examples` writes exactly the examples training would use (negatives included) and
    stops; that file then trains as a QA file with no index at all (a GPU machine), and refuses a
    model whose tokenizer and window it was not cut for."""
    from click.testing import CliRunner

    from hea_rag.cli import cli
    from hea_rag.finetune import TrainSettings
    from hea_rag.indexer import index_paths
    from hea_rag.prompt import REFUSAL
    from hea_rag.training import build_examples, load_base

    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in CORPUS_QA))
    saved = tmp_path / "examples.jsonl"
    prepared = CliRunner().invoke(cli, [
        "finetune", str(qa), "--model", str(tiny_phi_dir), "--index", str(folder),
        "--max-length", "256", "--negatives", "1", "--save-examples", str(saved)])
    assert prepared.exit_code == 0, prepared.stderr
    assert not (folder / "adapter").exists()  # nothing trained
    rows = [json.loads(line) for line in saved.read_text().splitlines()]
    settings = TrainSettings(max_length=256, negative_rate=1.0)
    tokenizer, model = load_base(str(tiny_phi_dir), "none", False)
    direct = build_examples([qa], "abstract", folder, tokenizer, model.config, settings,
                            str(tiny_phi_dir))
    assert [(r["prompt"], r["answer"], r["group"]) for r in rows] == [
        (e.prompt, e.answer, e.group) for e in direct]
    assert sum(r["answer"] == REFUSAL for r in rows) == len(CORPUS_QA)

    shutil.rmtree(folder)
    trained = CliRunner().invoke(cli, [
        "finetune", str(saved), "--model", str(tiny_phi_dir), "--index", str(folder),
        "--output", str(tmp_path / "adapter"), "--max-steps", "2", "--batch-size", "2",
        "--max-length", "256", "--eval-fraction", "0", "--negatives", "1"])
    assert trained.exit_code == 0, trained.stderr
    card = json.loads((tmp_path / "adapter" / "hea_rag_adapter.json").read_text())
    assert card["train_examples"] == len(rows) and not folder.exists()

    other = CliRunner().invoke(cli, ["finetune", str(saved), "--model", "smollm2-135m",
                                     "--index", str(folder)])
    assert other.exit_code != 0
    assert f"{saved}, row 1: prepared for --model {tiny_phi_dir}, not smollm2-135m" in other.stderr
    rate = CliRunner().invoke(cli, ["finetune", str(saved), "--model", str(tiny_phi_dir),
                                    "--index", str(folder), "--negatives", "0.3"])
    assert rate.exit_code != 0
    assert f"{saved}, row 1: prepared with --negatives 1.0: pass the same" in rate.stderr
    saved.write_text(json.dumps({"prompt": "p", "answer": "a"}) + "\n")
    broken = CliRunner().invoke(cli, ["finetune", str(saved), "--model", str(tiny_phi_dir),
                                      "--index", str(folder)])
    assert broken.exit_code != 0 and f"{saved}, row 1: not a prepared example" in broken.stderr
