"""Retrieval over a small invented corpus: formulas in any order, one hit per paper, JSON-able hits."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hea_rag.errors import IndexMismatchError, IndexMissingError
from hea_rag.indexer import index_paths
from hea_rag.output import hit_record
from hea_rag.retrieve import Retriever, open_retriever
from hea_rag.store import IndexReader

MODES = ["hybrid", "lexical", "dense"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, embedder, corpus_csv):
    path = tmp_path_factory.mktemp("retrieve") / "index"
    index_paths([str(corpus_csv)], path)
    return path


@pytest.fixture(scope="module")
def retriever(folder, embedder):
    with IndexReader(folder) as reader:
        yield Retriever(reader, embedder)


def top_doi(retriever, query, mode, k=5):
    hits = retriever.search(query, k=k, mode=mode)
    assert hits, query
    return hits[0].paper.doi


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
@pytest.mark.parametrize(
    "query, doi",
    [
        ("compressive yield strength of CrMoNbTa0.5V at 1500 °C", "10.9999/fake.2024.001"),
        ("CrMoNbTaV", "10.9999/fake.2024.001"),
        ("yield strength of NiFeCrCoAl0.3 after rolling", "10.9999/fake.2023.002"),
        ("hardness of the C(CrHfZrTi) carbide", "10.9999/fake.2022.003"),
        ("Mo30Ti40Nb15(NbC)15 compressive strength", "10.9999/fake.2021.004"),
        ("TaNbHfZrTi hydrogen", "10.9999/fake.2023.007"),
        ("WTaMoNb films", "10.9999/fake.2021.009"),
    ],
)
def test_formula_in_another_order_finds_its_paper_first(retriever, query, doi, mode):
    assert top_doi(retriever, query, mode) == doi


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
def test_number_with_unit_finds_its_paper(retriever, mode):
    assert top_doi(retriever, "which alloy reached 2783 MPa", mode) == "10.9999/fake.2024.001"
    assert top_doi(retriever, "mass gain of 4.7 mg/cm2", mode) == "10.9999/fake.2024.011"


def _cosines(retriever, embedder, query, paper_id):
    """passage id -> cosine to `query`, computed here from the stored vectors."""
    group = retriever.reader.passage_ids_of([paper_id])[paper_id]
    vectors = retriever.reader.vectors_of(group)
    return dict(zip(group, (vectors @ embedder.encode([query])[0]).tolist()))


def test_dense_mode_finds_a_paraphrase(retriever, embedder):
    query = "printing metal parts with a laser from powder"
    hits = retriever.search(query, k=3, mode="dense")
    assert hits[0].paper.doi == "10.9999/fake.2023.012"
    assert all(h.lexical is None for h in hits)
    for hit in hits:
        cosines = _cosines(retriever, embedder, query, hit.paper.id)
        assert hit.dense == pytest.approx(cosines[hit.passage_id], abs=1e-5)
        assert hit.score == pytest.approx(max(cosines.values()), abs=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_one_hit_per_paper_ranked(retriever, mode):
    hits = retriever.search("CoCrFeNi yield strength after laser powder bed fusion and annealing", k=10, mode=mode)
    assert len(hits) == 10
    ids = [h.paper.id for h in hits]
    assert len(set(ids)) == len(ids)
    assert [h.rank for h in hits] == list(range(1, 11))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_best_passage_of_a_long_paper_is_shown(retriever, folder):
    hits = retriever.search("stress-relief annealing at 700 °C residual stress", k=1)
    (hit,) = hits
    assert hit.paper.doi == "10.9999/fake.2023.012"
    assert "Stress-relief annealing at 700 °C" in hit.text
    assert hit.text != hit.paper.abstract  # a passage, not the whole long abstract
    with IndexReader(folder) as reader:
        assert reader.passages([hit.passage_id])[hit.passage_id] == (hit.paper.id, hit.text)


@pytest.mark.parametrize("k", [1, 3, 12, 50])
def test_k_limits_the_hits(retriever, k):
    hits = retriever.search("high-entropy alloy strength", k=k)
    assert len(hits) == min(k, 12)


def test_scores_carry_their_parts(retriever):
    (hybrid,) = retriever.search("MoNbVTa0.5Cr", k=1, mode="hybrid")
    assert hybrid.lexical is not None and hybrid.lexical > 0
    assert hybrid.dense is not None and 0 < hybrid.dense <= 1
    lexical = retriever.search("MoNbVTa0.5Cr", k=3, mode="lexical")
    assert lexical[0].score == pytest.approx(1.0)  # BM25 scaled to the query's best
    assert all(0 < h.score <= 1.0 for h in lexical) and all(h.dense is None for h in lexical)
    (dense,) = retriever.search("MoNbVTa0.5Cr", k=1, mode="dense")
    assert dense.paper.id == hybrid.paper.id
    assert dense.score == pytest.approx(dense.dense, abs=1e-6)  # its (only) passage's cosine
    assert dense.dense == pytest.approx(hybrid.dense, abs=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_hits_are_json_able(retriever, mode):
    hits = retriever.search("Al0.3CoCrFeNi grain size", k=3, mode=mode)
    for hit in hits:
        record = hit_record(hit)
        assert json.loads(json.dumps(record)) == record
        assert {"rank", "score", "paper_id", "doi", "title", "year", "text"} <= set(record)
        assert isinstance(record["score"], float) and isinstance(record["paper_id"], int)
        json.dumps(dataclasses.asdict(hit))  # the dataclass itself holds only plain values
    tagged = hit_record(hits[0], "my query")
    assert tagged["query"] == "my query"


def test_paper_without_doi_or_title(retriever):
    (hit,) = retriever.search("CoCrFeNiCu0.5 corrosion NaCl", k=1)
    assert hit.paper.doi is None and hit.paper.title is None and hit.paper.year is None
    record = hit_record(hit)
    assert record["doi"] is None and record["title"] is None


@pytest.mark.parametrize("query", ["what is the", "", "   ", "zzzunknownword qqqq"])
def test_queries_without_lexical_matches(retriever, query):
    assert retriever.search(query, k=5, mode="lexical") == []


def test_lexical_mode_needs_no_embedder(folder):
    with IndexReader(folder) as reader:
        lexical_only = Retriever(reader, embedder=None)
        assert lexical_only.search("CrMoNbTa0.5V", k=1, mode="lexical")[0].paper.doi == "10.9999/fake.2024.001"
        with pytest.raises(ValueError, match="embedder"):
            lexical_only.search("CrMoNbTa0.5V", k=1, mode="hybrid")


def test_open_retriever(folder):
    with open_retriever(folder) as retriever:
        assert retriever.embedder is not None and retriever.embedder.dimension == 384
        assert top_doi(retriever, "CrMoNbTa0.5V", "hybrid") == "10.9999/fake.2024.001"
    with open_retriever(folder, need_dense=False) as retriever:
        assert retriever.embedder is None


def test_open_retriever_refuses_another_embedder(folder):
    with pytest.raises(IndexMismatchError, match="embedder"):
        with open_retriever(folder, "sentence-transformers/paraphrase-MiniLM-L3-v2"):
            pass


def test_open_retriever_on_missing_index(tmp_path):
    with pytest.raises(IndexMissingError):
        with open_retriever(tmp_path / "nothing-here", need_dense=False):
            pass


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_hit_carries_the_cosine_of_its_papers_closest_passage(retriever, embedder, mode):
    """The abstention gate reads `best_dense`: the closest passage of the paper, which need not
    be the passage shown (that one is picked by its words and meaning together)."""
    query = "porosity of printed parts from the laser power and scan speed"
    hits = retriever.search(query, k=3, mode=mode)
    for hit in hits:
        cosines = _cosines(retriever, embedder, query, hit.paper.id)
        assert hit.best_dense == pytest.approx(max(cosines.values()), abs=1e-5)
        assert hit.dense == pytest.approx(cosines[hit.passage_id], abs=1e-5)
    assert len(_cosines(retriever, embedder, query, hits[0].paper.id)) > 1  # a long abstract


def test_lexical_hits_have_no_cosines(retriever):
    (hit,) = retriever.search("MoNbVTa0.5Cr", k=1, mode="lexical")
    assert hit.dense is None and hit.best_dense is None


@pytest.mark.parametrize("query", ["stress-relief annealing at 700 °C residual stress",
                                   "texture along the build direction", "CoCrFeNi hardness"])
def test_passage_relevance_ranks_the_shown_passage_first(retriever, query):
    """`ask` packs a paper's passages by this relevance: the shown one must come first."""
    (hit,) = retriever.search(query, k=1)
    group = retriever.reader.passage_ids_of([hit.paper.id])
    relevance = retriever.passage_relevance(query, group)
    assert set(relevance) == set(group[hit.paper.id])
    assert max(relevance, key=relevance.get) == hit.passage_id
