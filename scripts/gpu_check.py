"""CUDA check of the Phi code path (run on a machine with a GPU; Phi-2's weights cannot be had
here, so a randomly initialized model of Phi-2's exact shape stands in: memory is the same).

    python scripts/gpu_check.py --tokenizer PATH_TO_PHI2_TOKENIZER

1. `load_generator` with the default quantization (4-bit NF4 on CUDA): GPU memory after load and
   peak while answering after a prompt that fills Phi-2's 2048-token window less 64 new tokens;
2. `run_finetune` (QLoRA: 4-bit base, paged 8-bit AdamW, activation checkpointing) on a tiny
   Phi for a few steps: the loss and that the adapter saves.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def phi2_shaped_model(folder: Path, tokenizer_dir: Path, tiny: bool = False) -> Path:
    import torch
    from transformers import AutoTokenizer, PhiConfig, PhiForCausalLM

    torch.manual_seed(0)
    config = PhiConfig() if not tiny else PhiConfig(hidden_size=64, intermediate_size=128,
                                                     num_hidden_layers=2, num_attention_heads=4)
    config.eos_token_id = config.bos_token_id = 50256
    with torch.device("cuda"):
        model = PhiForCausalLM(config).to(torch.float16)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return folder


def answer_memory(model_dir: Path) -> dict:
    import torch

    from hea_rag.generator import load_generator

    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    generator = load_generator(str(model_dir))
    loaded = torch.cuda.memory_allocated() / 2**30
    prompt = "The alloy was sintered at 1500 °C. " * 150
    ids = generator.tokenizer(prompt)["input_ids"][: generator.window - 64 - 20]
    text = generator.tokenizer.decode(ids) + "\nQuestion: What is it?\nAnswer:"
    begun = time.perf_counter()
    generator.generate(text, max_new_tokens=64)
    return {"quantization": generator.quantization, "window": generator.window,
            "prompt_tokens": generator.count_tokens(text), "load_s": round(begun - started, 1),
            "generate_s": round(time.perf_counter() - begun, 2),
            "gpu_gib_after_load": round(loaded, 3),
            "gpu_gib_peak": round(torch.cuda.max_memory_allocated() / 2**30, 3),
            "weight_dtype_4bit": str(type(generator.model.model.layers[0].self_attn.q_proj).__name__)}


def qlora_steps(model_dir: Path, work: Path) -> dict:
    from hea_rag.finetune import TrainSettings
    from hea_rag.training import run_finetune

    qa = work / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": f"Which lattice does alloy {i} have?",
                                      "answer": "FCC" if i % 2 else "BCC",
                                      "context": f"Alloy {i} is {'FCC' if i % 2 else 'BCC'}."}) + "\n"
                          for i in range(16)))
    settings = TrainSettings(max_steps=6, batch_size=4, lr=5e-3, max_length=128, logging_steps=1,
                             eval_fraction=0.25, eval_examples=4)
    result = run_finetune([qa], str(model_dir), work / "adapter", "given", work / "none", settings)
    state = sorted((work / "adapter/checkpoints").glob("checkpoint-*"))[-1] / "trainer_state.json"
    losses = [r["loss"] for r in json.loads(state.read_text())["log_history"] if "loss" in r]
    return {"losses": losses, "metrics": result.metrics,
            "adapter_saved": (work / "adapter/adapter_model.safetensors").exists()}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        report = {"gpu": torch.cuda.get_device_name(0)}
        report["phi2_shape_4bit"] = answer_memory(phi2_shaped_model(tmp / "phi2", args.tokenizer))
        tiny = phi2_shaped_model(tmp / "tiny", args.tokenizer, tiny=True)
        report["qlora_tiny_phi"] = qlora_steps(tiny, tmp)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
