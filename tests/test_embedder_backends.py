"""`--embedder-backend`: the MiniLM exported to ONNX (fp32, int8) and run by ONNX Runtime or
OpenVINO; the backend is recorded in the manifest, queries use it, and a mismatch is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.embedder import load_embedder
from hea_rag.errors import IndexMismatchError, ModelUnavailableError
from hea_rag.indexer import index_paths, rebuild_index
from hea_rag.onnx_encoder import ENV_CACHE
from hea_rag.retrieve import Retriever, open_retriever
from hea_rag.store import IndexReader, Manifest

TEXTS = [
    "The refractory high-entropy alloy MoNbVTa0.5Cr was prepared by spark plasma sintering.",
    "hardness",
    "  Al0.3CoCrFeNi with an FCC structure was cold rolled and annealed at 900 °C.  " * 40,  # > 256
    "x",
]
# the least cosine to torch's vectors each backend must reach (int8 is lossy by design; its
# retrieval quality is what scripts/bench_backends.py judges it by)
LEAST_COSINE = {"onnx": 0.9999, "openvino": 0.9999, "onnx-int8": 0.97}


@pytest.fixture(scope="module", autouse=True)
def export_cache(tmp_path_factory):
    """One cache of exported models for this module, outside the user's own."""
    folder = tmp_path_factory.mktemp("embedder-cache")
    old = os.environ.get(ENV_CACHE)
    os.environ[ENV_CACHE] = str(folder)
    yield folder
    if old is None:
        os.environ.pop(ENV_CACHE)
    else:
        os.environ[ENV_CACHE] = old


@pytest.fixture(scope="module")
def torch_embedder():
    return load_embedder(backend="torch")


@pytest.mark.parametrize("backend", sorted(LEAST_COSINE))
def test_backend_vectors_match_torch(torch_embedder, backend):
    embedder = torch_embedder
    other = load_embedder(backend=backend)
    ours, reference = other.encode(TEXTS), embedder.encode(TEXTS)
    assert ours.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    assert (ours * reference).sum(1).min() >= LEAST_COSINE[backend]
    # the same tokens, counted past the 256-token limit (chunking depends on it)
    assert other.count_tokens(TEXTS[2]) == embedder.count_tokens(TEXTS[2]) > 256
    assert (other.max_tokens, other.dimension, other.backend) == (256, 384, backend)


def test_export_is_cached_and_reused(export_cache):
    load_embedder(backend="onnx-int8")
    files = sorted(export_cache.rglob("*.onnx"))
    assert [f.name for f in files] == ["model-int8.onnx", "model.onnx"]
    stamps = [f.stat().st_mtime_ns for f in files]
    load_embedder(backend="onnx-int8")
    assert [f.stat().st_mtime_ns for f in sorted(export_cache.rglob("*.onnx"))] == stamps
    assert not list(export_cache.rglob("*.tmp"))


def test_unknown_backend_and_other_layouts_are_refused(tmp_path):
    with pytest.raises(ModelUnavailableError, match="unknown embedder backend 'cuda'"):
        load_embedder(backend="cuda")
    (tmp_path / "model").mkdir()
    with pytest.raises(ModelUnavailableError, match="mean-pooling models only"):
        load_embedder(str(tmp_path / "model"), backend="onnx")


@pytest.fixture(scope="module")
def onnx_index(tmp_path_factory, corpus_csv) -> Path:
    folder = tmp_path_factory.mktemp("onnx") / "index"
    index_paths([str(corpus_csv)], folder, backend="onnx")
    return folder


def test_the_default_backend_is_recorded(tmp_path, more_csv):
    from hea_rag.onnx_encoder import DEFAULT_BACKEND

    index_paths([str(more_csv)], tmp_path / "index")
    assert Manifest.load(tmp_path / "index").embedder_backend == DEFAULT_BACKEND == "onnx-int8"


def test_manifest_records_the_backend_and_queries_use_it(onnx_index):
    assert json.loads((onnx_index / "manifest.json").read_text())["embedder_backend"] == "onnx"
    with open_retriever(onnx_index) as retriever:
        assert retriever.embedder.backend == "onnx"
        hits = retriever.search("MoNbVTa0.5Cr compressive yield strength")
    assert hits[0].paper.title == "Sintered MoNbVTa0.5Cr refractory alloy"
    assert hits[0].dense > 0.3


def test_adding_with_another_backend_is_refused(onnx_index, more_csv):
    before = (onnx_index / "manifest.json").read_text()
    result = CliRunner().invoke(cli, ["index", str(more_csv), "--index", str(onnx_index),
                                      "--embedder-backend", "torch"])
    assert result.exit_code != 0
    assert "built with embedder backend 'onnx', not 'torch'" in result.output
    assert "--rebuild --embedder-backend torch" in result.output
    assert (onnx_index / "manifest.json").read_text() == before


def test_a_query_embedder_of_another_backend_is_refused(onnx_index, torch_embedder):
    with IndexReader(onnx_index) as reader, pytest.raises(IndexMismatchError, match="backend 'onnx'"):
        Retriever(reader, torch_embedder)


def test_rebuild_changes_the_backend(tmp_path, corpus_csv):
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder, backend="torch")
    assert Manifest.load(folder).embedder_backend == "torch"
    rebuild_index([], folder, backend="onnx-int8")
    manifest = Manifest.load(folder)
    assert manifest.embedder_backend == "onnx-int8"
    rebuild_index([], folder)  # a rebuild keeps the backend unless told otherwise
    assert Manifest.load(folder).embedder_backend == "onnx-int8"
    with open_retriever(folder) as retriever:
        assert retriever.search("Al0.3CoCrFeNi grain size")[0].paper.title == "Grain refinement of Al0.3CoCrFeNi"


def test_an_index_from_before_backends_is_torch(tmp_path, corpus_csv):
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder, backend="torch")
    data = json.loads((folder / "manifest.json").read_text())
    del data["embedder_backend"]
    (folder / "manifest.json").write_text(json.dumps(data))
    assert Manifest.load(folder).embedder_backend == "torch"
    data["embedder_backend"] = "tpu"
    (folder / "manifest.json").write_text(json.dumps(data))
    result = CliRunner().invoke(cli, ["search", "hardness", "--index", str(folder)])
    assert result.exit_code != 0 and "unknown embedder_backend 'tpu'" in result.output


def test_search_on_an_onnx_index_imports_no_torch(onnx_index):
    """The point of the runtime backends for cold start: no torch, no transformers' BERT."""
    code = ("import sys; from hea_rag.cli import cli; "
            f"cli(['search', 'MoNbVTa0.5Cr', '--index', {str(onnx_index)!r}, '--json'], "
            "standalone_mode=False); print('torch' in sys.modules, 'transformers' in sys.modules, "
            "file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False False"
    assert "MoNbVTa0.5Cr" in done.stdout
