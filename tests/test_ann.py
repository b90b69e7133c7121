"""Approximate dense search: a segment of at least ann["min_passages"] passages holds PQ codes
re-ranked exactly (the default kind), built with the manifest's parameters by a real `index`
run and by `index --compact`; its neighbours are flat's on the shared corpus; the manifest's
k_factor is the one searches use; manifests of the HNSW era still open (tests/test_segments.py:
they keep building HNSW)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.indexer import index_paths
from hea_rag.retrieve import CANDIDATES
from hea_rag.segment import ANN_DEFAULTS, DEFAULT_ANN, PQ_CODES, ann_parameters, training_sample
from hea_rag.store import IndexReader


def set_ann(folder: Path, **ann) -> dict:
    """Change the manifest's ANN parameters, as a user may by hand; returns the stored dict."""
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    data["ann"] = {**data["ann"], **ann}
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    return data["ann"]


def inner_indexes(folder: Path) -> list[dict]:
    """What the FAISS index inside each live segment's id map is, as a reader opened it (read
    while the reader is open: the index is freed with it)."""
    with IndexReader(folder) as reader:
        return [describe(faiss.downcast_index(reader._vectors(segment).index)) for segment in reader.segments]


def describe(index) -> dict:
    found = {"type": type(index).__name__, "ntotal": index.ntotal}
    if isinstance(index, faiss.IndexRefine):
        base = faiss.downcast_index(index.base_index)
        found.update(k_factor=index.k_factor, base=type(base).__name__, sub_quantizers=base.M)
    return found


def dense_ids(folder: Path, vectors) -> list[list[int]]:
    with IndexReader(folder) as reader:
        return [[pid for pid, _ in reader.dense_search(v, CANDIDATES)] for v in vectors]


def recall(found: list[list[int]], exact: list[list[int]]) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact)]))


@pytest.fixture(scope="module")
def questions(shared_dir, embedder):
    """Vectors of 40 dev_qa questions, spread over the file."""
    lines = (shared_dir / "bench/dev_qa.jsonl").read_text(encoding="utf-8").splitlines()
    return embedder.encode([json.loads(line)["question"] for line in lines[::len(lines) // 40][:40]])


@pytest.fixture(scope="module")
def compacted_pair(tmp_path_factory, corpus_index, more_csv) -> tuple[Path, Path]:
    """(flat, approximate): two copies of the shared corpus's index, each given the same new
    papers by an `index` run, then compacted by `index --compact`; the second with a
    threshold of 100 passages."""
    flat, approximate = (tmp_path_factory.mktemp("ann") / name for name in ("flat", "approximate"))
    for copy in (flat, approximate):
        shutil.copytree(corpus_index[0], copy)
    set_ann(approximate, min_passages=100)
    for copy in (flat, approximate):
        index_paths([str(more_csv)], copy)
    # the added segment (a few passages) stays flat: under the threshold
    assert [i["type"] for i in inner_indexes(approximate)] == ["IndexFlatIP", "IndexFlatIP"]
    for copy in (flat, approximate):
        result = CliRunner().invoke(cli, ["index", "--compact", "--index", str(copy)])
        assert result.exit_code == 0, result.output
    return flat, approximate


def test_compacting_the_shared_corpus_past_the_threshold_keeps_flats_neighbours(compacted_pair, questions):
    flat, approximate = compacted_pair
    assert [i["type"] for i in inner_indexes(flat)] == ["IndexFlatIP"]
    [merged] = inner_indexes(approximate)
    passages = json.loads((approximate / "manifest.json").read_text(encoding="utf-8"))["counts"]["passages"]
    assert merged == {"type": "IndexRefineFlat", "ntotal": passages, "base": "IndexPQFastScan",
                      "k_factor": DEFAULT_ANN["k_factor"], "sub_quantizers": DEFAULT_ANN["sub_quantizers"]}
    found, exact = dense_ids(approximate, questions), dense_ids(flat, questions)
    assert [ids[:10] for ids in found] == [ids[:10] for ids in exact]
    assert recall(found, exact) >= 0.98
    with IndexReader(approximate) as reader, IndexReader(flat) as reference:
        assert reader.problems() == []
        some = [pid for pid, _ in reference.dense_search(questions[0], 5)]
        assert np.array_equal(reader.vectors_of(some), reference.vectors_of(some))


def test_the_manifests_k_factor_is_the_one_searches_use(tmp_path, compacted_pair, questions):
    flat, shared = compacted_pair
    approximate = tmp_path / "approximate"
    shutil.copytree(shared, approximate)
    exact = dense_ids(flat, questions)
    set_ann(approximate, k_factor=1)  # re-rank only the 50 best by code
    assert inner_indexes(approximate)[0]["k_factor"] == 1
    assert recall(dense_ids(approximate, questions), exact) < recall(dense_ids(shared, questions), exact)


def test_an_index_run_writes_a_segment_past_the_threshold_as_pq(tmp_path, corpus_csv, csv_writer, paper_generator):
    exact, approximate = tmp_path / "flat", tmp_path / "approximate"
    many = csv_writer(tmp_path / "many.csv", paper_generator(60, seed=5))
    for folder in (exact, approximate):
        index_paths([str(corpus_csv)], folder)
    set_ann(approximate, min_passages=50, sub_quantizers=96, k_factor=4)
    for folder in (exact, approximate):
        result = CliRunner().invoke(cli, ["index", str(many), "--no-merge", "--index", str(folder)])
        assert result.exit_code == 0, result.output
    first, added = inner_indexes(approximate)
    assert first["type"] == "IndexFlatIP"  # written before the threshold changed
    assert (added["type"], added["base"], added["ntotal"]) == ("IndexRefineFlat", "IndexPQFastScan", 60)
    assert (added["sub_quantizers"], added["k_factor"]) == (96, 4)
    # k_factor 4 x 50 candidates cover all 60 vectors: the exact re-rank gives flat's answer
    queries = "refractory alloy yield strength\nlaser cladding coating hardness\n"
    searches = [CliRunner().invoke(cli, ["search", "--json", "-k", "10", "--mode", "dense", "--index", str(f)],
                                   input=queries) for f in (exact, approximate)]
    assert all(s.exit_code == 0 for s in searches) and searches[0].stdout == searches[1].stdout
    # merging a PQ segment reads its exact vectors back, not its codes
    for folder in (exact, approximate):
        CliRunner().invoke(cli, ["index", "--compact", "--index", str(folder)])
    [merged] = inner_indexes(approximate)
    assert (merged["type"], merged["ntotal"]) == ("IndexRefineFlat", 60 + first["ntotal"])
    with IndexReader(approximate) as reader, IndexReader(exact) as reference:
        every = range(1, merged["ntotal"] + 1)
        assert np.array_equal(reader.vectors_of(every), reference.vectors_of(every))


def test_a_segment_too_small_for_a_quantizer_stays_flat_whatever_the_threshold(tmp_path, corpus_csv, more_csv):
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    set_ann(folder, min_passages=1)
    index_paths([str(more_csv)], folder)
    added = inner_indexes(folder)[-1]
    assert added["type"] == "IndexFlatIP" and added["ntotal"] < PQ_CODES


def test_merging_segments_trains_on_the_sample_one_segment_would_have():
    vectors = np.random.default_rng(3).standard_normal((1000, 8)).astype("float32")
    ann = {**DEFAULT_ANN, "min_passages": 100, "train_size": 300}
    whole = training_sample([vectors], len(vectors), ann)
    assert whole.shape == (300, 8)
    assert np.array_equal(training_sample([vectors[:123], vectors[123:600], vectors[600:]], 1000, ann), whole)
    assert training_sample([vectors], len(vectors), {**ann, "min_passages": 1001}) is None
    assert training_sample([vectors], len(vectors), {"kind": "hnsw", "min_passages": 1, **ANN_DEFAULTS["hnsw"]}) is None


def test_ann_parameters_fill_in_defaults_and_keep_old_hnsw_manifests():
    old = {"min_passages": 1_000_000, "m": 16, "ef_construction": 40, "ef_search": 64}
    assert ann_parameters(old) == {**old, "kind": "hnsw"}
    assert ann_parameters(None) == DEFAULT_ANN
    assert ann_parameters({"kind": "pq", "k_factor": 3}) == {**DEFAULT_ANN, "k_factor": 3}
    assert ann_parameters({"kind": "hnsw", "min_passages": 5}) == {
        "kind": "hnsw", "min_passages": 5, **ANN_DEFAULTS["hnsw"]}


def test_an_unknown_ann_kind_is_a_damaged_manifest(tmp_path, corpus_csv):
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    set_ann(folder, kind="annoy")
    result = CliRunner().invoke(cli, ["search", "alloy", "--index", str(folder)])
    assert result.exit_code != 0
    assert "manifest.json: malformed ann parameters" in result.output
