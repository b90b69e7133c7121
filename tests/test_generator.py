"""Model loading on the Phi code path: a tiny PhiForCausalLM with the real Phi-2 tokenizer."""

import json

import pytest

from hea_rag.errors import ModelUnavailableError
from hea_rag.generator import ADAPTER_METADATA, AdapterMismatchError, load_generator

PHI_TARGETS = {"q_proj", "k_proj", "v_proj", "dense"}


@pytest.fixture(scope="module")
def tiny_adapter(tiny_phi_dir, tmp_path_factory):
    """A LoRA adapter on q/k/v/dense with non-zero B matrices, so it changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_phi_dir)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=sorted(PHI_TARGETS)))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    (folder / ADAPTER_METADATA).write_text(json.dumps({"base_model": str(tiny_phi_dir)}))
    return folder


def test_tiny_phi_loads_and_generates(tiny_phi_dir):
    generator = load_generator(str(tiny_phi_dir), quantize="none")
    assert type(generator.model).__name__ == "PhiForCausalLM"
    assert generator.window == 2048
    answer = generator.generate("Context.\nQuestion: Q?\nAnswer:", max_new_tokens=5)
    assert isinstance(answer, str) and "\n" not in answer


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
    answer = generator.generate("Context.\nQuestion: Q?\nAnswer:", max_new_tokens=3)
    assert isinstance(answer, str)


def test_unavailable_hub_model_gives_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as error:
        load_generator("hea-rag-tests/no-such-model", quantize="none")
    message = str(error.value)
    assert "hea-rag-tests/no-such-model" in message and "smollm2-135m" in message
