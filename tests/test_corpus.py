"""The real Scopus corpus from shared/: indexing counts and retrieval of the dev questions' abstracts."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.indexer import index_paths
from hea_rag.ingest.clean import clean_abstract
from hea_rag.ingest.doi import doi_from_link, normalize_doi
from hea_rag.ingest.records import text_key
from hea_rag.retrieve import Retriever
from hea_rag.store import IndexReader

pytestmark = pytest.mark.corpus

ROWS = 529
PAPERS = 454
DUPLICATES = 75
EVERY = 40  # dev questions sampled: lines 0, 40, 80, ...
MIN_TOP5 = 0.9


@pytest.fixture(scope="module")
def gold_papers(corpus_index, csv_path) -> dict[str, set[int]]:
    """sha1 of each raw CSV abstract (whitespace collapsed) -> ids of the index papers holding it.

    The index stores cleaned abstracts, so each raw row is matched by the text key of its cleaned
    abstract, or else (a row dropped as a DOI duplicate) by its DOI.
    """
    folder, _ = corpus_index
    with IndexReader(folder) as reader:
        by_key = {key: pid for pid, key in reader.db.execute("SELECT id, text_key FROM papers")}
        by_doi = {doi: pid for pid, doi in reader.db.execute("SELECT id, doi FROM papers WHERE doi IS NOT NULL")}
    gold: dict[str, set[int]] = {}
    with open(csv_path, encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            raw = row["Abstract"]
            sha1 = hashlib.sha1(" ".join(raw.split()).encode()).hexdigest()
            paper = by_key.get(text_key(clean_abstract(raw)))
            if paper is None:
                paper = by_doi.get(normalize_doi(row["DOI"]) or doi_from_link(row["Link"]))
            assert paper is not None, f"row with abstract {sha1} is not in the index"
            gold.setdefault(sha1, set()).add(paper)
    return gold


@pytest.fixture(scope="module")
def dev_questions(shared_dir) -> list[dict]:
    lines = (shared_dir / "bench" / "dev_qa.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_index_counts(corpus_index):
    folder, summary = corpus_index
    assert summary.added == PAPERS
    assert summary.duplicates == DUPLICATES
    assert summary.added + summary.duplicates == ROWS
    assert summary.skipped == [] and summary.failed == []
    assert summary.papers_total == PAPERS
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["papers"] == PAPERS
    assert manifest["counts"]["passages"] == summary.passages >= PAPERS
    with IndexReader(folder) as reader:
        assert reader.vector_count == summary.passages
        # no copyright boilerplate made it into the stored abstracts
        tails = [a[-120:] for (a,) in reader.db.execute("SELECT abstract FROM papers")]
    assert not [t for t in tails if "©" in t and "Elsevier" in t]


def test_reindex_adds_nothing(corpus_index, csv_path):
    folder, _ = corpus_index
    before = (folder / "manifest.json").read_text()
    summary = index_paths([str(csv_path)], folder)
    assert summary.added == 0
    assert summary.duplicates == ROWS
    assert (folder / "manifest.json").read_text() == before


def test_formula_query_finds_its_paper_first(corpus_index):
    folder, _ = corpus_index
    result = CliRunner().invoke(
        cli, ["search", "MoNbVTa0.5Cr yield strength 1500 °C", "--json", "--index", str(folder)]
    )
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(hits) == 5
    with IndexReader(folder) as reader:
        top = reader.papers([hits[0]["paper_id"]])[hits[0]["paper_id"]]
    assert "MoNbVTa0.5Cr" in top.abstract


def test_every_dev_question_has_its_abstract_indexed(gold_papers, dev_questions):
    assert len(gold_papers) == PAPERS
    missing = {q["abstract_sha1"] for q in dev_questions} - set(gold_papers)
    assert not missing


def test_dev_questions_hit_their_abstract(corpus_index, gold_papers, dev_questions, embedder):
    folder, _ = corpus_index
    sample = dev_questions[::EVERY]
    assert len(sample) == 30
    misses = []
    with IndexReader(folder) as reader:
        retriever = Retriever(reader, embedder)
        for question in sample:
            found = [hit.paper.id for hit in retriever.search(question["question"], k=5, mode="hybrid")]
            if not gold_papers[question["abstract_sha1"]] & set(found):
                misses.append(question["question"])
    hit_rate = 1 - len(misses) / len(sample)
    assert hit_rate >= MIN_TOP5, misses
