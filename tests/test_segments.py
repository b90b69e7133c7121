"""Segments: each `index` run writes only what it adds; search reads every segment with corpus-wide
BM25 statistics; `--compact` merges them; dedup sees every segment; old indexes still open; a
kill before the manifest switch leaves the index as it was."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.indexer import compact_index, fill_in_papers, index_paths, lexical_tokens
from hea_rag.lexical import tokenize
from hea_rag.retrieve import CANDIDATES, Retriever
from hea_rag.store import IndexReader, Manifest, NewPassage, commit_generation, read_stored_papers

QUERIES = ["MoNbVTa0.5Cr compressive yield strength", "Al0.3CoCrFeNi grain size annealing",
           "hardness of carbide ceramics", "NiCoCrV forging", "creep TiZrNbHfTa"]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def searches(folder: Path) -> dict[str, str]:
    """Every query, every mode, through the real CLI: the JSON lines it prints."""
    found = {}
    for mode in ("hybrid", "lexical", "dense"):
        result = CliRunner().invoke(cli, ["search", "--json", "-k", "5", "--mode", mode, "--index",
                                          str(folder)], input="\n".join(QUERIES) + "\n")
        assert result.exit_code == 0, result.output
        found[mode] = result.stdout
    return found


def rankings(found: dict[str, str]) -> dict[str, list[tuple]]:
    """What was found, in order: the papers, their shown passages. (Scores are left out: the
    embedder's batched numerics give a passage embedded alone a slightly other vector.)"""
    return {mode: [(hit["query"], hit["rank"], hit["paper_id"], hit["passage_id"])
                   for hit in map(json.loads, lines.splitlines())] for mode, lines in found.items()}


def resegment(source: Path, target: Path, size: int) -> None:
    """The papers of the index at `source` committed again, `size` per segment, with their
    stored vectors (no embedding): the same ids, the same rows, other segments."""
    papers = read_stored_papers(source, Manifest.load(source))
    with IndexReader(source) as reader:
        passage_ids = reader.passage_ids_of(range(1, len(papers) + 1))
        texts = reader.passages([pid for group in passage_ids.values() for pid in group])
        pages = reader.pages_of(texts)
        manifest = Manifest(**{**reader.manifest.__dict__, "generation": "", "segments": [],
                               "counts": {"papers": 0, "passages": 0}})
        for start in range(0, len(papers), size):
            chunk = list(range(start + 1, min(start + size, len(papers)) + 1))
            passages = [NewPassage(i, position, texts[pid][1], " ".join(tokenize(texts[pid][1])), pages.get(pid))
                        for i, paper_id in enumerate(chunk) for position, pid in enumerate(passage_ids[paper_id])]
            ids = [pid for paper_id in chunk for pid in passage_ids[paper_id]]
            target.mkdir(parents=True, exist_ok=True)
            chosen = [papers[i - 1] for i in chunk]
            manifest = commit_generation(target, manifest, chosen, [lexical_tokens(p) for p in chosen],
                                         passages, reader.vectors_of(ids))


@pytest.fixture(scope="module")
def one_and_many(corpus_index, tmp_path_factory) -> tuple[Path, Path]:
    """The shared corpus as one segment, and the same papers as 23 segments of 20."""
    single = corpus_index[0]
    many = tmp_path_factory.mktemp("segmented") / "index"
    resegment(single, many, 20)
    return single, many


def test_resegmented_index_holds_the_same_rows(one_and_many):
    single, many = one_and_many
    assert len(manifest(many)["segments"]) == 23
    assert manifest(many)["counts"] == manifest(single)["counts"]
    with IndexReader(single) as one, IndexReader(many) as other:
        sql = "SELECT id, doi, text_key, abstract FROM papers ORDER BY id"
        assert other.db.execute(sql).fetchall() == one.db.execute(sql).fetchall()
        assert other.problems() == []


@pytest.mark.parametrize("table", ["papers_fts", "passages_fts"])
def test_bm25_over_segments_equals_one_segment(one_and_many, shared_dir, table):
    """The corpus-wide statistics: the shared corpus in one segment and in 23 gives the same
    rows with the same scores, for 300 dev_qa questions (the fusion's depth: 50 papers, 200
    passages); and the one segment's are FTS5's own bm25() (float32 against double)."""
    single, many = one_and_many
    lines = (shared_dir / "bench/dev_qa.jsonl").read_text(encoding="utf-8").splitlines()
    limit = CANDIDATES if table == "papers_fts" else 4 * CANDIDATES
    with IndexReader(single) as one, IndexReader(many) as other:
        for line in lines[::4][:300]:
            tokens = tokenize(json.loads(line)["question"])
            expected = one.lexical_search(tokens, limit, table)
            assert other.lexical_search(tokens, limit, table) == expected
            fts5 = one.segments[0].rows(
                f"SELECT rowid, -bm25({table}) AS s FROM {table} WHERE {table} MATCH ? ORDER BY s DESC, rowid "
                "LIMIT ?", (" OR ".join(f'"{t}"' for t in dict.fromkeys(tokens)), limit))
            assert [i for i, _ in expected[:10]] == [i for i, _ in fts5[:10]] and len(expected) == len(fts5)
            assert np.allclose([s for _, s in expected], [s for _, s in fts5], rtol=1e-5)


def test_segments_without_postings_files_are_searched_from_their_rows(one_and_many, tmp_path):
    """A segment written before postings existed (no arrays, no lexicon) builds them from its
    `tokens` column: the same results; `--compact` then writes them."""
    single, many = one_and_many
    old = tmp_path / "old"
    shutil.copytree(many, old)
    for segment in manifest(old)["segments"][::2]:
        for path in (old / segment).glob("*.npy"):
            path.unlink()
    queries = ["yield strength of CoCrFeMnNi", "Al0.3CoCrFeNi grain size annealing", "hardness of carbide"]
    with IndexReader(many) as expected, IndexReader(old) as reader:
        assert not reader.segments[0].has_postings_files and reader.segments[1].has_postings_files
        assert reader.problems() == []
        for query in queries:
            for table in ("papers_fts", "passages_fts"):
                found = reader.lexical_search(tokenize(query), 50, table)
                assert found and found == expected.lexical_search(tokenize(query), 50, table)
    compact_index(old)
    with IndexReader(old) as reader, IndexReader(single) as one:
        assert reader.segments[0].has_postings_files
        assert [reader.lexical_search(tokenize(q), 50) for q in queries] == [one.lexical_search(tokenize(q), 50) for q in queries]


def test_hybrid_rankings_over_segments_equal_one_segment(one_and_many, embedder, shared_dir):
    single, many = one_and_many
    lines = (shared_dir / "bench/dev_qa.jsonl").read_text(encoding="utf-8").splitlines()
    with IndexReader(single) as one, IndexReader(many) as other:
        first, second = Retriever(one, embedder), Retriever(other, embedder)
        for line in lines[1::12][:100]:
            question = json.loads(line)["question"]
            expected = [(h.paper.id, h.passage_id) for h in first.search(question, k=10)]
            assert [(h.paper.id, h.passage_id) for h in second.search(question, k=10)] == expected


def test_one_paper_runs_merge_their_segments_and_compact_gives_one_shot_results(
        tmp_path, corpus_csv, hea_papers, csv_writer):
    """Twelve one-paper `index` runs (the worst case for segments) keep few segments, each more
    than twice the newer ones together (hea_rag.merging); then `--compact`: the results are
    those of one run over all twelve, before and after."""
    one_shot = tmp_path / "one-shot"
    assert CliRunner().invoke(cli, ["index", str(corpus_csv), "--index", str(one_shot)]).exit_code == 0
    folder = tmp_path / "runs"
    for number, row in enumerate(hea_papers):
        path = csv_writer(tmp_path / f"paper-{number}.csv", [row])
        result = CliRunner().invoke(cli, ["index", str(path), "--index", str(folder)])
        assert result.exit_code == 0, result.output
    segments = manifest(folder)["segments"]
    assert len(segments) <= 4
    assert sorted(p.name for p in folder.glob("gen-*")) == segments
    with IndexReader(folder) as reader:
        sizes = [segment.counts()[1] for segment in reader.segments]
    assert all(size > 2 * sum(sizes[i + 1:]) for i, size in enumerate(sizes[:-1])), sizes
    expected = rankings(searches(one_shot))
    assert rankings(searches(folder)) == expected

    result = CliRunner().invoke(cli, ["index", "--compact", "--index", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"compacted {len(segments)} segment(s) into 1" in result.stderr
    assert [p.name for p in folder.glob("gen-*")] == manifest(folder)["segments"] == [manifest(folder)["generation"]]
    assert rankings(searches(folder)) == expected
    info = CliRunner().invoke(cli, ["info", "--index", str(folder)])
    assert info.exit_code == 0 and "segments" in info.stdout
    again = CliRunner().invoke(cli, ["index", "--compact", "--index", str(folder)])
    assert "compacted 1 segment(s) into 1" in again.stderr  # nothing to merge: nothing written


def test_dedup_sees_every_segment(tmp_path, corpus_csv, more_csv):
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    index_paths([str(more_csv)], folder)
    both = tmp_path / "both.csv"
    both.write_text(corpus_csv.read_text(encoding="utf-8") + "".join(
        more_csv.read_text(encoding="utf-8").splitlines(keepends=True)[1:]), encoding="utf-8")
    before = manifest(folder)
    summary = index_paths([str(both)], folder)
    assert summary.added == 0 and summary.duplicates == 16
    assert manifest(folder) == before


def test_an_index_of_format_2_opens_and_grows_into_segments(tmp_path, corpus_csv, more_csv):
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder, backend="torch")  # format 2 knew only torch
    results = searches(folder)
    data = manifest(folder)
    for key in ("segments", "ann", "embedder_backend"):
        del data[key]
    data["format_version"] = 2
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    assert searches(folder) == results
    index_paths([str(more_csv)], folder)
    after = manifest(folder)
    assert after["format_version"] == 3 and after["segments"] == ["gen-000001", "gen-000002"]


def test_a_run_merges_only_the_newest_small_segments(tmp_path, corpus_csv, hea_papers, csv_writer):
    """Three one-paper runs kept apart (--no-merge), then a fourth that merges: the big first
    segment is not rewritten, the four small ones become one, and search finds what one run
    over the same papers finds."""
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    first = manifest(folder)["segments"][0]
    extra = [csv_writer(tmp_path / f"extra-{i}.csv", [{**row, "DOI": f"10.9999/merge.{i}", "Title": f"Copy {i}",
                                                         "Abstract": row["Abstract"] + f" Run {i}."}])
             for i, row in enumerate(hea_papers[:4])]
    for i, path in enumerate(extra):
        args = ["index", str(path), "--index", str(folder)] + (["--no-merge"] if i < 3 else [])
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        if i == 2:
            apart = manifest(folder)["segments"]
    assert len(apart) == 4
    merged = manifest(folder)["segments"]
    assert len(merged) == 2 and merged[0] == first and merged[1] not in apart
    assert sorted(p.name for p in folder.glob("gen-*")) == merged
    with IndexReader(folder) as reader:
        assert reader.segments[1].counts()[0] == 4 and reader.problems() == []
        assert reader.segments[1].has_postings_files
    one_shot = tmp_path / "one-shot"
    index_paths([str(corpus_csv)] + [str(p) for p in extra], one_shot)
    assert rankings(searches(folder)) == rankings(searches(one_shot))


def test_filling_in_metadata_rewrites_only_the_segment_holding_the_paper(tmp_path, corpus_csv, csv_writer):
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    untitled = csv_writer(tmp_path / "untitled.csv", [{
        "DOI": "10.9999/untitled.1", "Year": "2021",
        "Abstract": "Laser cladding of a CoCrFeNiTi0.5 coating raised its microhardness to 720 HV."}])
    index_paths([str(untitled)], folder)
    first, second = manifest(folder)["segments"]
    assert fill_in_papers(folder, {"10.9999/untitled.1": {"title": "Zirconolite coating study"}}) == 1
    segments = manifest(folder)["segments"]
    assert segments[0] == first and segments[1] != second  # only the second one was rewritten
    assert sorted(p.name for p in folder.glob("gen-*")) == segments
    hit = json.loads(CliRunner().invoke(cli, ["search", "zirconolite", "--json", "-k", "1", "--mode",
                                              "lexical", "--index", str(folder)]).stdout)
    assert hit["title"] == "Zirconolite coating study"


def test_a_manifest_of_the_hnsw_era_keeps_building_hnsw_with_the_same_neighbours(tmp_path, corpus_csv, more_csv, embedder):
    import faiss

    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    flat = searches(folder)["dense"]
    data = manifest(folder)
    # the ann of HNSW-era manifests (no "kind"), with a tiny threshold so that a tiny segment is a graph
    data["ann"] = {"min_passages": 2, "m": 32, "ef_construction": 80, "ef_search": 96}
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    index_paths([str(more_csv)], folder)
    compact_index(folder)
    with IndexReader(folder) as reader:
        inner = faiss.downcast_index(reader._vectors(reader.segments[0]).index)
        assert isinstance(inner, faiss.IndexHNSWFlat) and inner.hnsw.efSearch == data["ann"]["ef_search"]
        assert reader.problems() == []
    assert [json.loads(line)["doi"] for line in searches(folder)["dense"].splitlines()][:3] == [
        json.loads(line)["doi"] for line in flat.splitlines()][:3]


# --- a kill before the manifest switch -----------------------------------------------------

KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from hea_rag import store
    from hea_rag.indexer import compact_index, index_paths

    original = store._save_vectors

    def save_then_die(index, staging):
        original(index, staging)  # the new segment is complete on disk ...
        os.kill(os.getpid(), signal.SIGKILL)  # ... and the manifest never switches

    store._save_vectors = save_then_die
    folder = Path(sys.argv[1])
    if sys.argv[2] == "--compact":
        compact_index(folder)
    else:
        index_paths([sys.argv[2]], folder)
    """
)


@pytest.mark.parametrize("what", ["add", "compact"])
def test_sigkill_before_the_switch_leaves_the_segments_as_they_were(
        tmp_path, corpus_csv, more_csv, csv_writer, paper_generator, what):
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    if what == "compact":
        index_paths([str(more_csv)], folder)
        argument = "--compact"
    else:
        argument = str(csv_writer(tmp_path / "new.csv", paper_generator(5, seed=77)))
    before, results = manifest(folder), searches(folder)
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(folder), argument],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert manifest(folder) == before
    leftovers = sorted(p.name for p in folder.glob("gen-*") if p.name not in before["segments"])
    assert len(leftovers) == 1  # the finished but never listed segment
    assert searches(folder) == results
    with IndexReader(folder) as reader:
        assert reader.problems() == []
    # the next writer sweeps the leftover and does the work in full
    if what == "compact":
        assert compact_index(folder) == (2, 1)
    else:
        assert index_paths([argument], folder).added == 5
    after = manifest(folder)
    assert sorted(p.name for p in folder.glob("gen-*")) == after["segments"]
    assert len(after["segments"]) == (1 if what == "compact" else 2)
