"""Model loading on the Phi code path: a tiny PhiForCausalLM with the real Phi-2 tokenizer;
adapter checks; and generation with a BOS-adding tokenizer on a tiny Llama."""

import json
import shutil

import pytest
from click.testing import CliRunner
from transformers import AutoTokenizer

from hea_rag.adapter import model_fingerprint
from hea_rag.cli import cli
from hea_rag.errors import ModelUnavailableError
from hea_rag.generator import (
    ADAPTER_METADATA,
    AdapterMismatchError,
    Generator,
    end_ids,
    load_generator,
)
from hea_rag.prompt import PROMPT_TEMPLATE, build_prompt, cut_answer, encode_prompt, fit_prompt

PHI_TARGETS = {"q_proj", "k_proj", "v_proj", "dense"}
PROMPT = "The CoCrNi alloy reached 1200 MPa.\nQuestion: What strength?\nAnswer:"


@pytest.fixture(scope="module")
def tiny_adapter(tiny_phi_dir, tmp_path_factory):
    """A LoRA adapter on q/k/v/dense with non-zero B matrices, so it changes the output."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_phi_dir)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=sorted(PHI_TARGETS)))
    _randomize_lora_b(model, seed=1)
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    (folder / ADAPTER_METADATA).write_text(json.dumps({"base_model": str(tiny_phi_dir)}))
    return folder


def _randomize_lora_b(model, seed: int) -> None:
    """LoRA B starts at zero (a no-op adapter): give it weights so the adapter changes answers."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)


@pytest.fixture(scope="module")
def plain_peft_adapter(tiny_phi_dir, tmp_path_factory):
    """Like the old tool's published adapter: saved by PEFT alone (no hea-rag metadata), base
    `microsoft/phi-2`, targets q/k/v/o_proj (Phi has `dense`, not `o_proj`)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_phi_dir)
    base.name_or_path = "microsoft/phi-2"  # as if loaded from the hub: PEFT records this name
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    model = get_peft_model(base, config)
    _randomize_lora_b(model, seed=2)
    folder = tmp_path_factory.mktemp("plain-peft")
    model.save_pretrained(folder)
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        "microsoft/phi-2"
    return folder


@pytest.fixture
def downloaded_phi2(tiny_phi_dir, tmp_path):
    """The tiny Phi as a hub download of microsoft/phi-2 looks: config.json records the id."""
    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_phi_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "_name_or_path": "microsoft/phi-2"}))
    return folder


def _adapter_with_card(source, folder, **card):
    shutil.copytree(source, folder)
    (folder / ADAPTER_METADATA).write_text(json.dumps(card))
    return folder


def _tiny_phi_fingerprint(tiny_phi_dir):
    from transformers import AutoConfig

    return model_fingerprint(AutoConfig.from_pretrained(tiny_phi_dir))


def test_greedy_answer_is_the_models_own_continuation_cut_by_the_rules(tiny_phi_dir, phi_tokenizer):
    generator = load_generator(str(tiny_phi_dir), quantize="none")
    assert type(generator.model).__name__ == "PhiForCausalLM"
    assert generator.window == 2048
    ids = phi_tokenizer(PROMPT, return_tensors="pt")
    direct = generator.model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=50256)
    expected = cut_answer(phi_tokenizer.decode(direct[0, ids["input_ids"].shape[1]:],
                                               skip_special_tokens=True))
    streamed = []
    assert expected  # the tiny model's random weights still write something
    assert generator.generate(PROMPT, max_new_tokens=8, on_text=streamed.append) == expected
    assert "".join(streamed) == expected


def test_generation_ends_at_any_special_token_not_only_the_eos(tiny_phi_dir, phi_tokenizer):
    """An adapter trained under a tokenizer whose EOS was another special token (transformers
    5.17's GGUF conversion made SmolLM2's EOS `<|im_start|>`) emits that token to end its answer:
    generation stops there instead of running on into a new chat turn."""
    import torch

    tokenizer = AutoTokenizer.from_pretrained(tiny_phi_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|turn|>"]})
    turn = tokenizer.convert_tokens_to_ids("<|turn|>")
    assert turn != tokenizer.eos_token_id and turn in end_ids(tokenizer)
    generator = load_generator(str(tiny_phi_dir), quantize="none")
    generator.tokenizer = tokenizer
    with torch.no_grad():  # the model can only say <|turn|>
        generator.model.lm_head.bias.fill_(-1e4)
        generator.model.lm_head.bias[turn] = 1e4
    steps = []
    generator.model.lm_head.register_forward_hook(lambda *args: steps.append(1))
    assert generator.generate(PROMPT, max_new_tokens=12) == ""
    assert len(steps) == 1
    steps.clear()
    assert generator.generate(PROMPT, max_new_tokens=12, answer_rules=False) == ""
    assert len(steps) == 1


def test_stop_rule_ends_generation_at_the_answers_newline(phi_tokenizer):
    """On a known continuation: the criterion fires on the token that brings the newline, and
    the streamer shows the answer without the leading space or what follows."""
    import torch

    from hea_rag.generator import _AnswerStreamer, _StopAtAnswerEnd

    prompt_ids = phi_tokenizer(PROMPT)["input_ids"]
    continuation = phi_tokenizer(" 1200 MPa\nQuestion: next")["input_ids"]
    stop = _StopAtAnswerEnd(phi_tokenizer, len(prompt_ids))
    fired = [bool(stop(torch.tensor([prompt_ids + continuation[:n]]), None)[0])
             for n in range(1, len(continuation) + 1)]
    newline_at = next(n for n in range(1, len(continuation) + 1)
                      if "\n" in phi_tokenizer.decode(continuation[:n]))
    assert fired == [n >= newline_at for n in range(1, len(continuation) + 1)]
    shown = []
    streamer = _AnswerStreamer(phi_tokenizer, shown.append)
    streamer.put(torch.tensor([prompt_ids]))
    for token in continuation:
        streamer.put(torch.tensor([token]))
    assert "".join(shown) == "1200 MPa"


def test_adapter_targets_phi_attention_and_changes_the_output(tiny_phi_dir, tiny_adapter):
    plain = load_generator(str(tiny_phi_dir), quantize="none")
    adapted = load_generator(str(tiny_phi_dir), adapter=tiny_adapter, quantize="none")
    assert adapted.adapter == str(tiny_adapter)
    lora_modules = {name.split(".")[-1] for name, module in adapted.model.named_modules()
                    if hasattr(module, "lora_A")}
    assert lora_modules == PHI_TARGETS  # `dense`, not the `o_proj` Phi does not have
    import torch

    ids = plain.tokenizer("The alloy was sintered.", return_tensors="pt")
    with torch.no_grad():
        before = plain.model(**ids).logits
        after = adapted.model(**ids).logits
    assert not torch.allclose(before, after)


def test_adapter_for_another_base_is_refused(tiny_phi_dir, tiny_adapter, tmp_path):
    import shutil

    other = tmp_path / "other-adapter"
    shutil.copytree(tiny_adapter, other)
    (other / ADAPTER_METADATA).write_text(json.dumps({"base_model": "microsoft/phi-2"}))
    with pytest.raises(AdapterMismatchError, match="microsoft/phi-2"):
        load_generator(str(tiny_phi_dir), adapter=other, quantize="none")


def test_folder_without_adapter_config_is_refused(tiny_phi_dir, tmp_path):
    with pytest.raises(ModelUnavailableError, match="not a LoRA adapter"):
        load_generator(str(tiny_phi_dir), adapter=tmp_path, quantize="none")


def test_four_bit_nf4_path_through_bitsandbytes_on_cpu(tiny_phi_dir):
    import bitsandbytes as bnb

    generator = load_generator(str(tiny_phi_dir), quantize="4bit")
    quantized = [m for m in generator.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized, "no Linear4bit layer: the model was not loaded in 4-bit"
    assert all(m.weight.quant_state.quant_type == "nf4" for m in quantized)
    assert generator.model.config.quantization_config.bnb_4bit_use_double_quant is True
    ids = generator.tokenizer(PROMPT, return_tensors="pt")
    direct = generator.model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=50256)
    expected = cut_answer(generator.tokenizer.decode(direct[0, ids["input_ids"].shape[1]:],
                                                     skip_special_tokens=True))
    assert generator.generate(PROMPT, max_new_tokens=3) == expected


def test_unavailable_hub_model_gives_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as error:
        load_generator("hea-rag-tests/no-such-model", quantize="none")
    message = str(error.value)
    assert "hea-rag-tests/no-such-model" in message and "smollm2-135m" in message


@pytest.mark.parametrize("name", ["/tmp/no/such/model", "./no-such-model", "~/no-such-model",
                                  "models/no/such-model"])
def test_missing_local_model_folder_is_named_as_such(name, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # a path is never looked up on the hub
    with pytest.raises(ModelUnavailableError) as error:
        load_generator(name, quantize="none")
    assert str(error.value) == f"no such model folder: {name}"


def test_missing_model_folder_through_the_cli_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["ask", "Q?", "--context", "C.", "--model",
                                      "/tmp/no/such/model", "--index", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == "hea-rag: error: no such model folder: /tmp/no/such/model\n"


def test_same_base_folder_spelled_differently_is_accepted(tiny_phi_dir, tiny_adapter, tmp_path):
    adapter = _adapter_with_card(tiny_adapter, tmp_path / "a", base_model=str(tiny_phi_dir))
    spelled = str(tiny_phi_dir / ".." / tiny_phi_dir.name) + "/"
    assert load_generator(spelled, adapter=adapter, quantize="none").adapter == str(adapter)


def test_plain_peft_adapter_loads_on_a_local_copy_of_its_hub_base_and_warns_once(
        plain_peft_adapter, downloaded_phi2, tiny_phi_dir, capsys):
    plain = load_generator(str(tiny_phi_dir), quantize="none")
    adapted = load_generator(str(downloaded_phi2), adapter=plain_peft_adapter, quantize="none")
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and "o_proj" in warning[0] and "q_proj" not in warning[0]
    lora = {n.split(".")[-1] for n, m in adapted.model.named_modules() if hasattr(m, "lora_A")}
    assert lora == {"q_proj", "k_proj", "v_proj"}
    assert adapted.generate(PROMPT, 6) != plain.generate(PROMPT, 6)  # the LoRA weights act


def test_plain_peft_adapter_is_refused_on_an_unrelated_base(plain_peft_adapter, tiny_phi_dir):
    with pytest.raises(AdapterMismatchError) as error:
        load_generator(str(tiny_phi_dir), adapter=plain_peft_adapter, quantize="none")
    assert "'microsoft/phi-2'" in str(error.value) and str(tiny_phi_dir) in str(error.value)


def test_recorded_fingerprint_accepts_the_same_architecture_under_another_name(
        tiny_phi_dir, tiny_adapter, tmp_path):
    adapter = _adapter_with_card(tiny_adapter, tmp_path / "a", base_model="microsoft/phi-2",
                                 base_fingerprint=_tiny_phi_fingerprint(tiny_phi_dir),
                                 prompt_format=PROMPT_TEMPLATE)
    generator = load_generator(str(tiny_phi_dir), adapter=adapter, quantize="none")
    assert generator.adapter == str(adapter)


def test_fingerprint_mismatch_is_refused_naming_both(tiny_phi_dir, tiny_adapter, tmp_path):
    other = {**_tiny_phi_fingerprint(tiny_phi_dir), "hidden_size": 2560, "num_hidden_layers": 32}
    adapter = _adapter_with_card(tiny_adapter, tmp_path / "a", base_model=str(tiny_phi_dir),
                                 base_fingerprint=other, prompt_format=PROMPT_TEMPLATE)
    with pytest.raises(AdapterMismatchError) as error:
        load_generator(str(tiny_phi_dir), adapter=adapter, quantize="none")
    message = str(error.value)
    assert "\n" not in message and "hidden_size 2560" in message and "hidden_size 64" in message


def test_adapter_whose_shapes_do_not_fit_the_named_base_is_one_line(tiny_phi_dir, tiny_adapter,
                                                                    tmp_path):
    """A third-party card can name the right folder and still be for other shapes: PEFT's
    error becomes one line."""
    from transformers import PhiConfig, PhiForCausalLM

    narrower = tmp_path / "narrower-phi"
    PhiForCausalLM(PhiConfig(vocab_size=51200, hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=4)).save_pretrained(narrower)
    shutil.copytree(tiny_phi_dir, narrower, dirs_exist_ok=True,  # the tokenizer files
                    ignore=shutil.ignore_patterns("*.safetensors", "config.json"))
    adapter = _adapter_with_card(tiny_adapter, tmp_path / "a", base_model=str(narrower))
    with pytest.raises(AdapterMismatchError) as error:
        load_generator(str(narrower), adapter=adapter, quantize="none")
    message = str(error.value)
    assert "\n" not in message and "does not fit" in message and "--no-adapter" in message


def test_adapter_for_another_prompt_format_is_refused(tiny_phi_dir, tiny_adapter, tmp_path):
    adapter = _adapter_with_card(tiny_adapter, tmp_path / "a", base_model=str(tiny_phi_dir),
                                 prompt_format="### Context: {context}\n### Q: {question}\n### A:")
    with pytest.raises(AdapterMismatchError, match="prompt"):
        load_generator(str(tiny_phi_dir), adapter=adapter, quantize="none")


def test_damaged_adapter_metadata_is_one_line_naming_the_file(tiny_phi_dir, tiny_adapter, tmp_path):
    adapter = _adapter_with_card(tiny_adapter, tmp_path / "a")
    (adapter / ADAPTER_METADATA).write_text('{"base_model": ')
    result = CliRunner().invoke(cli, ["ask", "Q?", "--context", "C.", "--model", str(tiny_phi_dir),
                                      "--adapter", str(adapter), "--index", str(tmp_path)])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert str(adapter / ADAPTER_METADATA) in line and "--no-adapter" in line


@pytest.fixture(scope="module")
def tiny_llama(bos_tokenizer):
    """A tiny LlamaForCausalLM over the BOS-adding tokenizer's vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(bos_tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=256, bos_token_id=bos_tokenizer.bos_token_id,
                         eos_token_id=bos_tokenizer.eos_token_id,
                         pad_token_id=bos_tokenizer.pad_token_id)
    return Generator("tiny-llama", LlamaForCausalLM(config).eval(), bos_tokenizer, "none")


def test_generation_feeds_the_bos_and_budgets_count_it(tiny_llama, bos_tokenizer):
    fed = []
    hook = tiny_llama.model.register_forward_pre_hook(
        lambda module, args, kwargs: fed.append(kwargs["input_ids"][0].tolist()), with_kwargs=True)
    try:
        tiny_llama.generate(PROMPT, max_new_tokens=2)
    finally:
        hook.remove()
    assert fed[0] == encode_prompt(bos_tokenizer, PROMPT) == bos_tokenizer(PROMPT)["input_ids"]
    assert fed[0][0] == bos_tokenizer.bos_token_id
    assert tiny_llama.count_tokens(PROMPT) == len(fed[0])
    passages = [(0, "The CoCrNi alloy reached 1200 MPa.")]
    text_only = len(bos_tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    # a budget of the prompt's text tokens alone is one short: the BOS counts
    assert fit_prompt("What strength?", passages, tiny_llama.count_tokens, text_only)[1] == []
    assert fit_prompt("What strength?", passages, tiny_llama.count_tokens, text_only + 1)[1] \
        == passages
    assert build_prompt(passages[0][1], "What strength?") == PROMPT
