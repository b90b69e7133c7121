"""Embedding without torch at run time: the MiniLM transformer exported once to ONNX, then run by
ONNX Runtime (fp32, or int8 by dynamic quantization) or by OpenVINO.

sentence-transformers' own `backend="onnx"/"openvino"` needs optimum-onnx (which pins
transformers < 4.58) or optimum-intel (which pins torch and transformers to other versions): both
would break the rest of the project, so the export is done here with torch.onnx and
onnxruntime.quantization, and the exported files are cached under the user cache folder, keyed by
the model's files and the backend. Only models of the plain transformer -> mean pooling ->
normalize layout are exported (`MeanPoolingEncoder.fits`); the pooling is redone here in numpy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from hea_rag.errors import ModelUnavailableError

BACKENDS = ("torch", "onnx", "onnx-int8", "openvino")
# chosen by scripts/bench_backends.py: 2.4x torch's indexing speed at the same hybrid Recall@1/@5
# on dev_qa, and `search` imports no torch
DEFAULT_BACKEND = "onnx-int8"
ENV_CACHE = "HEA_RAG_CACHE"  # the folder exported models are cached in
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OPSET = 17


def cache_root() -> Path:
    """$HEA_RAG_CACHE, else the user cache folder (~/.cache/hea-rag on Linux)."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hea-rag"))


def exported_model(folder: Path, backend: str) -> Path:
    """The ONNX file for `backend` (fp32 for onnx and openvino, int8 for onnx-int8), exported on
    first use. The key hashes the model's path and weights' size and time, so a changed model
    is exported again."""
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights)
    key = hashlib.sha1(stamp.encode()).hexdigest()[:16]
    target = cache_root() / "embedders" / f"{folder.name}-{key}"
    fp32 = target / "model.onnx"
    if not fp32.exists():
        _atomically(fp32, lambda path: _export(folder, path))
    if backend != "onnx-int8":
        return fp32
    int8 = target / "model-int8.onnx"
    if not int8.exists():
        _atomically(int8, lambda path: _quantize(fp32, path))
    return int8


def _atomically(target: Path, write) -> None:
    """Write to a temporary file beside `target`, then rename: two processes exporting at once
    each write their own file, and a reader never sees half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _export(folder: Path, path: Path) -> None:
    """torch.onnx's TorchScript exporter with eager attention: SDPA's traced branches would fix
    the padding pattern of the example batch into the graph."""
    import warnings

    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    example = _example_batch(folder)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(_hidden_states_module(model), tuple(torch.from_numpy(a) for a in example),
                          str(path), dynamo=False, input_names=list(_INPUTS),
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=_OPSET)


def _example_batch(folder: Path):
    tokenizer = _tokenizer(folder, 256)
    return _arrays(tokenizer.encode_batch(["an example sentence", "a longer example sentence to pad"]))


def _hidden_states_module(model):
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    return HiddenStates()


def _quantize(fp32: Path, path: Path) -> None:
    """Dynamic int8: weights quantized per output channel ahead of time, activations per batch."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice
    quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True)


def _tokenizer(folder: Path, max_length: int | None):
    """The model's fast tokenizer, truncating and padding batches; with no `max_length`, as it
    is (for counting tokens, which chunking needs past the limit)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    pad = tokenizer.padding or {"pad_id": 0, "pad_token": "[PAD]"}  # the file may fix a length
    tokenizer.no_truncation()
    tokenizer.no_padding()
    if max_length is None:
        return tokenizer
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=pad["pad_id"], pad_token=pad["pad_token"])
    return tokenizer


def _arrays(encodings):
    import numpy as np

    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask, np.zeros_like(ids)


def _threads() -> int:
    """OMP_NUM_THREADS bounds these runtimes too, as it bounds torch; 0 lets them choose."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else 0


class OnnxEncoder:
    """The `MeanPoolingEncoder` interface (encode, tokenizer, dimension, max length, device) over
    an exported model; numpy and tokenizers only, so searching imports no torch."""

    device = type("Device", (), {"type": "cpu"})()  # no autocast: the runtimes pick precision

    def __init__(self, folder: Path, backend: str, max_seq_length: int, dimension: int):
        self.backend = backend
        self.max_seq_length = max_seq_length
        self._dimension = dimension
        self._tokens = _tokenizer(folder, max_seq_length)
        self._counter = _tokenizer(folder, None)
        self._run = _runner(exported_model(folder, backend), backend)

    def tokenizer(self, text: str, add_special_tokens: bool = True) -> dict:
        encoding = self._counter.encode(text, add_special_tokens=add_special_tokens)
        return {"input_ids": encoding.ids}

    def get_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, texts: list[str], batch_size: int = 32, **_):
        """One text at a time, whatever `batch_size`: int8's activation scales are computed
        over the whole input, padding included, so a batched text's vector would depend on
        its neighbours (and then a paper indexed alone would not match a one-shot index);
        without padding it is also faster here (bench: 5.1 s against 8.3 s for 323 passages)."""
        import numpy as np

        vectors = []
        for text in texts:
            ids, mask, types = _arrays([self._tokens.encode(text.strip())])
            pooled = self._run(ids, mask, types)[0].mean(0)  # no padding: every token counts
            vectors.append(pooled / max(float(np.linalg.norm(pooled)), 1e-12))
        return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, self._dimension), np.float32)


def _runner(model: Path, backend: str):
    """A function (ids, mask, types) -> last hidden states, on ONNX Runtime or OpenVINO."""
    try:
        if backend == "openvino":
            import openvino

            compiled = openvino.Core().compile_model(str(model), "CPU", _openvino_config())
            return lambda *arrays: compiled(dict(zip(_INPUTS, arrays)))[0]
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _threads()
        session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        return lambda *arrays: session.run(None, dict(zip(_INPUTS, arrays)))[0]
    except ImportError as error:
        package = "openvino" if backend == "openvino" else "onnxruntime"
        raise ModelUnavailableError(f"embedder backend {backend!r} needs {package}: "
                                    f"pip install {package} ({error})") from None


def _openvino_config() -> dict:
    threads = _threads()
    return {"INFERENCE_NUM_THREADS": threads} if threads else {}
