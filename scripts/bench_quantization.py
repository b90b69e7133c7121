"""CPU precision benchmark for the answering model: fp32, bf16 and bitsandbytes 4-bit NF4.

    .venv/bin/python scripts/bench_quantization.py [--model smollm2-135m] [--repeats 3]

Each precision runs in its own process (so peak RSS is its own): load time, then greedy
generation of 16 tokens after a ~700-token prompt, warm, best of --repeats. This is the
measurement behind `default_quantization` choosing "none" (bf16 where the CPU has it) on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT_SENTENCE = "The sintered alloy had a yield strength of 2783 MPa at room temperature. "


def child(model_name: str, precision: str, repeats: int) -> None:
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from hea_rag.generator import PRESETS, gguf_preset_checkpoint
    from hea_rag.runtime import quiet_libraries

    quiet_libraries()
    source = str(gguf_preset_checkpoint(model_name)) if model_name in PRESETS else model_name
    kwargs = {
        "fp32": {"dtype": torch.float32},
        "bf16": {"dtype": torch.bfloat16},
        "4bit": {"dtype": torch.float32, "device_map": {"": "cpu"},
                 "quantization_config": BitsAndBytesConfig(
                     load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                     bnb_4bit_compute_dtype=torch.bfloat16)},
    }[precision]
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs).eval()
    load_seconds = time.perf_counter() - started
    prompt = PROMPT_SENTENCE * 45 + "\nQuestion: What is the yield strength?\nAnswer:"
    inputs = tokenizer(prompt, return_tensors="pt")
    timings = []
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first run warms up
            begun = time.perf_counter()
            model.generate(**inputs, max_new_tokens=16, min_new_tokens=16, do_sample=False,
                           pad_token_id=tokenizer.eos_token_id)
            timings.append(time.perf_counter() - begun)
    print(json.dumps({"load_s": load_seconds, "generate_s": min(timings[1:]),
                      "prompt_tokens": int(inputs["input_ids"].shape[1])}))


def run_child(model_name: str, precision: str, repeats: int) -> dict:
    command = [sys.executable, __file__, "--child", precision, "--model", model_name,
               "--repeats", str(repeats)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return {"error": f"exit {os.waitstatus_to_exitcode(status)}"}
    return {**json.loads(output), "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["fp32", "bf16", "4bit"])
    args = parser.parse_args()
    if args.child:
        child(args.model, args.child, args.repeats)
        return
    print(f"\n## CPU precision, {args.model}: load, then 16 new tokens after the prompt\n")
    print("| precision | load (s) | generate (s) | peak RSS (MB) |")
    print("|---|---|---|---|")
    for precision in ("fp32", "bf16", "4bit"):
        row = run_child(args.model, precision, args.repeats)
        if "error" in row:
            print(f"| {precision} | {row['error']} | | |")
            continue
        print(f"| {precision} | {row['load_s']:.2f} | {row['generate_s']:.2f} "
              f"| {row['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
