"""Scale: synthetic indexes of 10k, 100k (and, with --sizes, 1M) passages, built without the embedder.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_scale.py                   # 10k and 100k
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_scale.py --sizes 1000000   # the issue's 1M
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_scale.py --runs 454        # segments worst case

Synthetic papers are real sentences of the shared corpus recombined (5 each, one passage per
paper); their vectors are random unit vectors. A query is one sentence of a known paper with
that paper's vector plus noise as its embedding, so its nearest passage is known. For each size:
the time and bytes of adding 1,000 papers as a new segment (excluding embedding), search p50/p95
(lexical, dense, hybrid) on one segment and on that segment plus the added one, recall@50 of the
dense candidates against an exact flat search (HNSW above the manifest's threshold), peak RSS of
a `hea-rag search` process, and disk size; and flat against HNSW dense latency, the measurement
the threshold was chosen by.

`--runs N` indexes the shared corpus's first N papers in N one-paper `index` runs (the worst case
for segments, with the real embedder), then `--compact`, and compares the rankings of dev_qa
questions with those of one `index` run over the same papers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402

DIMENSION = 384
QUERIES = 200
ADDED = 1000
DEPTH = 50  # the fusion's dense candidate depth (retrieve.CANDIDATES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=0, help="papers indexed one run each (0: skip)")
    parser.add_argument("--questions", type=int, default=200, help="dev_qa questions for --runs")
    args = parser.parse_args()
    sentences = corpus_sentences()
    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(measure_size(size, sentences, Path(tmp) / "index"))
    if rows:
        print_size_table(rows)
        print_ann_table(rows)
    if args.runs:
        with tempfile.TemporaryDirectory() as tmp:
            print_runs_table(measure_runs(args.runs, args.questions, Path(tmp)))


def corpus_sentences() -> list[str]:
    from hea_rag.ingest import Paper, read_path
    from hea_rag.chunking import split_sentences

    csv_path = shared_dir(ROOT) / "data/hea_qa/Scopus_Abstracts_Dataset.csv"
    papers = [p for p in read_path(str(csv_path)) if isinstance(p, Paper)]
    return [s for p in papers for s in split_sentences(p.abstract) if len(s) > 40]


class PlantedEmbedder:
    """Stands in for the embedder: the vector planted for each query text."""

    dimension = DIMENSION

    @property
    def backend(self) -> str:
        from hea_rag.onnx_encoder import DEFAULT_BACKEND

        return DEFAULT_BACKEND

    def __init__(self, vectors: dict[str, object]):
        self.vectors = vectors

    def encode(self, texts):
        import numpy as np

        return np.stack([self.vectors[t] for t in texts])


def synthetic_batch(count: int, first: int, sentences: list[str], rng: random.Random):
    """`count` papers (5 corpus sentences each, one passage) and their random unit vectors."""
    import numpy as np

    from hea_rag.indexer import lexical_tokens
    from hea_rag.ingest import Paper
    from hea_rag.lexical import tokenize
    from hea_rag.store import NewPassage

    papers, passages = [], []
    for i in range(count):
        text = " ".join(rng.sample(sentences, 5))
        papers.append(Paper(abstract=text, doi=f"10.9997/synthetic.{first + i}", title=f"Synthetic paper {first + i}"))
        passages.append(NewPassage(i, 0, text, " ".join(tokenize(text))))
    vectors = np.random.default_rng(first).standard_normal((count, DIMENSION)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return papers, [lexical_tokens(p) for p in papers], passages, vectors


def build(folder: Path, size: int, sentences: list[str]):
    """A one-segment index of `size` synthetic papers (as `--compact` leaves it); its vectors."""
    import numpy as np

    from hea_rag.onnx_encoder import DEFAULT_BACKEND
    from hea_rag.store import Manifest, commit_generation, compact_segments

    folder.mkdir(parents=True)
    manifest = Manifest(embedder="all-MiniLM-L6-v2", dimension=DIMENSION,
                        chunking={"max_tokens": 200, "overlap_sentences": 0}, embedder_backend=DEFAULT_BACKEND)
    rng, all_vectors = random.Random(size), []
    for start in range(0, size, 50_000):  # batches of 50k keep the writer's memory bounded
        batch = synthetic_batch(min(50_000, size - start), start + 1, sentences, rng)
        manifest = commit_generation(folder, manifest, *batch)
        all_vectors.append(batch[3])
    return compact_segments(folder, manifest), np.concatenate(all_vectors)


def measure_size(size: int, sentences: list[str], folder: Path) -> dict:
    from hea_rag.store import commit_generation

    started = time.perf_counter()
    manifest, vectors = build(folder, size, sentences)
    row = {"size": size, "build_s": time.perf_counter() - started, "hnsw": size >= manifest.ann["min_passages"]}
    queries = planted_queries(folder, vectors)
    row.update(search_latencies(folder, queries, "one segment"))
    row["recall"] = dense_recall(folder, vectors, queries)
    row["flat_ms"], row["hnsw_ms"], row["hnsw_recall"] = flat_against_hnsw(vectors, queries, manifest.ann)
    batch = synthetic_batch(ADDED, size + 1, sentences, random.Random(-size))
    before = disk_bytes(folder)
    started = time.perf_counter()
    commit_generation(folder, manifest, *batch)
    row["add_s"] = time.perf_counter() - started
    row["bytes_per_paper"] = (disk_bytes(folder) - before) / ADDED
    row.update(search_latencies(folder, queries, "two segments"))
    row["rss_mb"] = search_rss(folder, queries)
    row["disk_mb"] = disk_bytes(folder) / 1e6
    return row


def planted_queries(folder: Path, vectors) -> dict[str, object]:
    """Query text (a sentence of a known paper) -> that paper's vector plus a little noise."""
    import numpy as np

    from hea_rag.store import IndexReader

    rng = np.random.default_rng(7)
    ids = rng.choice(len(vectors), QUERIES, replace=False) + 1
    with IndexReader(folder) as reader:
        texts = reader.passages(int(i) for i in ids)
    queries = {}
    for passage_id in ids:
        sentence = texts[int(passage_id)][1].split(". ")[0]
        noisy = vectors[passage_id - 1] + 0.05 * rng.standard_normal(DIMENSION).astype("float32")
        queries[sentence] = noisy / np.linalg.norm(noisy)
    return queries


def search_latencies(folder: Path, queries: dict, label: str) -> dict:
    from hea_rag.retrieve import Retriever
    from hea_rag.store import IndexReader

    found = {}
    with IndexReader(folder) as reader:
        retriever = Retriever(reader, PlantedEmbedder(queries))
        for mode in ("lexical", "dense", "hybrid"):
            retriever.search(next(iter(queries)), mode=mode)  # warm-up: the files are read
            timings = []
            for text in queries:
                started = time.perf_counter()
                retriever.search(text, k=5, mode=mode)
                timings.append((time.perf_counter() - started) * 1000)
            timings.sort()
            found[f"{label} {mode}"] = (statistics.median(timings), timings[int(0.95 * len(timings))])
    return found


def dense_recall(folder: Path, vectors, queries: dict) -> float:
    """Share of the exact top-50 (flat inner product) that the index's dense search returns."""
    from hea_rag.store import IndexReader

    with IndexReader(folder) as reader:
        hits = 0
        for vector in queries.values():
            exact = set((vectors @ vector).argsort()[::-1][:DEPTH] + 1)
            hits += len(exact & {pid for pid, _ in reader.dense_search(vector, DEPTH)})
    return hits / (DEPTH * len(queries))


def flat_against_hnsw(vectors, queries: dict, ann: dict) -> tuple[float, float, float]:
    """p95 dense search ms of a flat index and of HNSW with the manifest's parameters, and
    HNSW's recall@50 against flat (HNSW built here whatever the size, to compare)."""
    import faiss

    flat = faiss.IndexFlatIP(DIMENSION)
    flat.add(vectors)
    graph = faiss.IndexHNSWFlat(DIMENSION, ann["m"], faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = ann["ef_construction"]
    graph.add(vectors)
    graph.hnsw.efSearch = ann["ef_search"]
    timings = {"flat": [], "hnsw": []}
    hits = 0
    for vector in queries.values():
        results = {}
        for name, index in (("flat", flat), ("hnsw", graph)):
            started = time.perf_counter()
            _, ids = index.search(vector.reshape(1, -1), DEPTH)
            timings[name].append((time.perf_counter() - started) * 1000)
            results[name] = set(ids[0])
        hits += len(results["flat"] & results["hnsw"])
    p95 = {name: sorted(t)[int(0.95 * len(t))] for name, t in timings.items()}
    return p95["flat"], p95["hnsw"], hits / (DEPTH * len(queries))


def search_rss(folder: Path, queries: dict) -> float:
    """Peak RSS of a real `hea-rag search` process over 50 of the query texts."""
    from scripts.bench_retrieval import peak_rss_mb

    text = "\n".join(list(queries)[:50]) + "\n"
    return peak_rss_mb([sys.executable, "-m", "hea_rag", "search", "--json", "--index", str(folder)], text)[0]


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def print_size_table(rows: list[dict]) -> None:
    print("\n## Synthetic indexes (one passage per paper; vectors random)\n")
    print("| passages | vectors | build (s) | add 1,000 papers (s) | bytes written per added paper "
          "| dense recall@50 vs flat | peak RSS of `search` (MB) | disk (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']:,} | {'HNSW' if r['hnsw'] else 'flat'} | {r['build_s']:.0f} | {r['add_s']:.2f} "
              f"| {r['bytes_per_paper']:,.0f} | {r['recall']:.3f} | {r['rss_mb']:.0f} | {r['disk_mb']:.0f} |")
    print("\n| passages | segments | lexical p50 / p95 (ms) | dense p50 / p95 (ms) | hybrid p50 / p95 (ms) |")
    print("|---|---|---|---|---|")
    for r in rows:
        for label in ("one segment", "two segments"):
            cells = [r[f"{label} {mode}"] for mode in ("lexical", "dense", "hybrid")]
            print(f"| {r['size']:,} | {label} | " + " | ".join(f"{a:.1f} / {b:.1f}" for a, b in cells) + " |")


def print_ann_table(rows: list[dict]) -> None:
    print("\n## Flat against HNSW, dense search alone (the threshold's measurement)\n")
    print("| passages | flat p95 (ms) | HNSW p95 (ms) | HNSW recall@50 vs flat |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']:,} | {r['flat_ms']:.2f} | {r['hnsw_ms']:.2f} | {r['hnsw_recall']:.3f} |")


def measure_runs(count: int, question_count: int, tmp: Path) -> dict:
    """`count` papers in `count` one-paper index runs, then --compact, against one run."""
    from hea_rag.indexer import RecordSource, compact_index, index_paths
    from hea_rag.ingest import Paper, read_path

    csv_path = shared_dir(ROOT) / "data/hea_qa/Scopus_Abstracts_Dataset.csv"
    papers = list({p.text_key: p for p in read_path(str(csv_path)) if isinstance(p, Paper)}.values())[:count]
    started = time.perf_counter()
    index_paths([RecordSource("all", papers)], tmp / "one-shot")
    one_shot_s = time.perf_counter() - started
    started = time.perf_counter()
    for number, paper in enumerate(papers):
        index_paths([RecordSource(f"paper {number}", [paper])], tmp / "runs")
    runs_s = time.perf_counter() - started
    questions = [json.loads(line)["question"] for line in
                 (shared_dir(ROOT) / "bench/dev_qa.jsonl").read_text(encoding="utf-8").splitlines()]
    questions = questions[::max(1, len(questions) // question_count)][:question_count]
    expected = rankings(tmp / "one-shot", questions)
    row = {"papers": len(papers), "one_shot_s": one_shot_s, "runs_s": runs_s,
           "segmented": compare(rankings(tmp / "runs", questions), expected),
           "segmented_disk": disk_bytes(tmp / "runs") / 1e6}
    started = time.perf_counter()
    compact_index(tmp / "runs")
    row["compact_s"] = time.perf_counter() - started
    row["compacted"] = compare(rankings(tmp / "runs", questions), expected)
    row["compacted_disk"], row["one_shot_disk"] = disk_bytes(tmp / "runs") / 1e6, disk_bytes(tmp / "one-shot") / 1e6
    return row


def rankings(folder: Path, questions: list[str]) -> tuple[list, list[float]]:
    """(top-10 (paper, passage) of each question, hybrid search ms of each)."""
    from hea_rag.retrieve import open_retriever

    found, timings = [], []
    with open_retriever(folder) as retriever:
        retriever.search(questions[0])
        for question in questions:
            started = time.perf_counter()
            hits = retriever.search(question, k=10)
            timings.append((time.perf_counter() - started) * 1000)
            found.append([(h.paper.id, h.passage_id) for h in hits])
    return found, timings


def compare(found: tuple[list, list[float]], expected: tuple[list, list[float]]) -> dict:
    same = sum(a == b for a, b in zip(found[0], expected[0]))
    top1 = sum(a[:1] == b[:1] for a, b in zip(found[0], expected[0]))
    ms = sorted(found[1])
    return {"same": same, "top1": top1, "n": len(found[0]), "p50": statistics.median(ms),
            "p95": ms[int(0.95 * len(ms))], "expected_p50": statistics.median(expected[1])}


def print_runs_table(row: dict) -> None:
    n = row["segmented"]["n"]
    print(f"\n## {row['papers']} papers as {row['papers']} one-paper `index` runs, then `--compact` "
          f"({n} dev_qa questions, hybrid top-10)\n")
    print("| index | time (s) | disk (MB) | same top-10 as one run | same top-1 | hybrid p50 / p95 (ms) |")
    print("|---|---|---|---|---|---|")
    print(f"| one `index` run | {row['one_shot_s']:.0f} | {row['one_shot_disk']:.1f} | - | - "
          f"| {row['segmented']['expected_p50']:.1f} / - |")
    for label, key, seconds, disk in (("one run per paper", "segmented", row["runs_s"], row["segmented_disk"]),
                                      ("after `--compact`", "compacted", row["compact_s"], row["compacted_disk"])):
        c = row[key]
        print(f"| {label} | {seconds:.1f} | {disk:.1f} | {c['same']}/{n} | {c['top1']}/{n} "
              f"| {c['p50']:.1f} / {c['p95']:.1f} |")


if __name__ == "__main__":
    main()
