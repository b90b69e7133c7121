"""Readers keep the segments they opened for their whole life, while real writers replace them.

A writer adds a segment, or `--compact` merges them all into a new one and deletes the old
`gen-N` folders right after switching the manifest. A reader opened before that (a long
`search -` batch, or a search still loading its embedder) must go on searching the segments it
started on, dense and lexical alike.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from hea_rag.indexer import compact_index, index_paths
from hea_rag.retrieve import Retriever
from hea_rag.store import IndexReader

MONBVTACR_DOI = "10.9999/fake.2024.001"
NICOCRV_DOI = "10.9999/fake.2024.101"  # in more_csv only
QUERIES = ["CrMoNbTa0.5V yield strength at 1500 °C", "hardness of carbide ceramics", "NiCoCrV forging"]
BATCHES = 6
MAX_ROUNDS = 5000  # the reader loop's bound; it stops earlier, when the writer is done


def in_thread(target, *args) -> None:
    """Run `target(*args)` in another thread, to its end; re-raise what it raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the test below
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def test_an_open_reader_outlives_the_writer_that_deletes_its_generation(
        tmp_path, embedder, corpus_csv, more_csv):
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    reader = IndexReader(folder)
    try:
        old = reader.manifest.generation
        in_thread(add_and_compact, more_csv, folder)  # adds gen 2, merges both into gen 3
        assert not (folder / old).exists()

        retriever = Retriever(reader, embedder)
        for mode in ("dense", "lexical", "hybrid"):
            hits = retriever.search(QUERIES[0], k=3, mode=mode)
            assert len(hits) == 3, mode
            if mode != "dense":
                assert hits[0].paper.doi == MONBVTACR_DOI
        # it still sees its own generation: not the paper the writer added
        assert NICOCRV_DOI not in {h.paper.doi for h in retriever.search(QUERIES[2], k=20)}
    finally:
        reader.close()
    with IndexReader(folder) as fresh:
        assert fresh.manifest.generation != old
        assert Retriever(fresh, embedder).search(QUERIES[2], k=1)[0].paper.doi == NICOCRV_DOI


def add_and_compact(path, folder) -> None:
    index_paths([str(path)], folder)
    assert compact_index(folder) == (2, 1)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from hea_rag.embedder import load_embedder
    from hea_rag.indexer import compact_index, index_paths

    load_embedder()  # imports and weights warm, so that the batches follow each other closely
    print("ready", flush=True)
    for number, path in enumerate(sys.argv[2:]):
        index_paths([path], Path(sys.argv[1]))
        if number % 2:  # every other batch, merge the segments (deleting the old folders)
            compact_index(Path(sys.argv[1]))
    """
)


def test_readers_never_fail_while_a_writer_keeps_committing(
        tmp_path, embedder, corpus_csv, csv_writer, paper_generator):
    folder = tmp_path / "index"
    index_paths([str(corpus_csv)], folder)
    batches = [str(csv_writer(tmp_path / f"batch-{n}.csv", paper_generator(3, seed=100 + n)))
               for n in range(BATCHES)]
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), *batches],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        failures, generations, rounds = search_until_done(writer, folder, embedder)
    finally:
        stdout, stderr = writer.communicate(timeout=600)
    assert writer.returncode == 0, stderr
    assert failures == []
    assert rounds > 0 and len(generations) >= 2  # the readers really overlapped the commits
    with IndexReader(folder) as reader:
        assert reader.manifest.counts["papers"] == 12 + 3 * BATCHES
        assert len(reader.segments) == 1 and reader.problems() == []


def search_until_done(writer, folder, embedder) -> tuple[list[str], set[str], int]:
    """Open a reader and search with it, again and again, until the writer exits."""
    failures: list[str] = []
    generations: set[str] = set()
    rounds = 0
    while writer.poll() is None and rounds < MAX_ROUNDS:
        rounds += 1
        try:
            with IndexReader(folder) as reader:
                generations.add(reader.manifest.generation)
                retriever = Retriever(reader, embedder)
                for query in QUERIES:
                    assert len(retriever.search(query, k=3)) == 3
        except Exception as error:  # noqa: BLE001 - collected, so that the test shows them all
            failures.append(f"round {rounds}: {type(error).__name__}: {error}")
    return failures, generations, rounds
