"""The embedder: the default MiniLM runs through transformers alone and gives sentence-transformers'
own vectors; other layouts still go through sentence-transformers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from hea_rag.embedder import DEFAULT_EMBEDDER, Embedder, MeanPoolingEncoder, load_embedder, resolve_model_path

TEXTS = [
    "The refractory high-entropy alloy MoNbVTa0.5Cr was prepared by spark plasma sintering.",
    "hardness",
    "  Al0.3CoCrFeNi with an FCC structure was cold rolled and annealed at 900 °C.  " * 40,  # > 256
    "x",
]


def test_default_embedder_equals_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    embedder = load_embedder(backend="torch")  # the other backends: test_embedder_backends.py

    assert isinstance(embedder.model, MeanPoolingEncoder)
    reference = Embedder("reference", SentenceTransformer(resolve_model_path(DEFAULT_EMBEDDER),
                                                          device="cpu"))
    ours, theirs = embedder.encode(TEXTS), reference.encode(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert np.abs(ours - theirs).max() < 1e-5
    assert embedder.max_tokens == reference.max_tokens == 256
    assert embedder.count_tokens(TEXTS[2]) == reference.count_tokens(TEXTS[2])


def test_default_embedder_does_not_import_sentence_transformers():
    code = ("import sys; from hea_rag.embedder import load_embedder; load_embedder(); "
            "print([m for m in ('sentence_transformers', 'sklearn', 'peft') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_other_pooling_is_left_to_sentence_transformers(tmp_path):
    source = Path(resolve_model_path(DEFAULT_EMBEDDER))
    folder = tmp_path / "cls-model"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    assert MeanPoolingEncoder.fits(folder)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    assert not MeanPoolingEncoder.fits(folder)
    assert not MeanPoolingEncoder.fits(tmp_path)  # no modules.json at all
