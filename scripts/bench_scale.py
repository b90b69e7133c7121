"""Scale: synthetic indexes of 10k, 100k (and, with --sizes, 1M) passages, built without the embedder.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_scale.py                   # 10k and 100k
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_scale.py --sizes 1000000   # the issue's 1M
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_scale.py --dense-only --sizes 1000000  # the ANN sweep alone
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_scale.py --vectors random  # the ANN's worst case
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_scale.py --runs 454        # segments worst case

Synthetic papers are real sentences of the shared corpus recombined (5 each, one passage per
paper). Their vectors (--vectors sentences, the default) are the normalised mean of the
default embedder's vectors of those 5 sentences (the corpus's sentences are embedded once,
cached under runs/bench_scale/); the script first checks that model on the real abstracts
(cosine of an abstract's own vector with the mean of its sentences'). `--vectors random` gives
random unit vectors instead: no structure at all, the worst case for any approximate index.
A planted query is one sentence of a known paper with that paper's vector plus noise as its
embedding, so its nearest passage is known. For each size: the time and bytes of adding 1,000
papers as a new segment (excluding embedding), search p50/p95 (lexical, dense, hybrid) on one
segment and on that segment plus the added one, recall@50 of the index's dense candidates
against an exact flat search, peak RSS of a `hea-rag search` process, and disk size; then the
dense sweep the ANN default was chosen by: flat, IVF, SQ8 and PQ fast scan (both re-ranked
exactly), HNSW up to --hnsw-max passages, each with its build time, p50/p95 of single queries
and recall@50 against flat, for the planted queries and for real dev_qa questions (embedded).

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
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402
from hea_rag.segment import ANN_DEFAULTS, is_approximate  # noqa: E402

DIMENSION = 384
QUERIES = 200
ADDED = 1000
DEPTH = 50  # the fusion's dense candidate depth (retrieve.CANDIDATES)
BATCH = 50_000  # papers per synthetic segment: bounds the writer's memory
NPROBES = (16, 32, 64, 128, 192, 256, 384, 512, 768, 1024, 1536)  # the IVF sweep's
NOISE = 0.05  # per dimension, added to a planted query's paper vector (cosine ~0.71 to it)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--vectors", choices=("sentences", "random"), default="sentences",
                        help="paper vectors: the mean of their sentences' real vectors, or random (worst case)")
    parser.add_argument("--dense-only", action="store_true", help="only the ANN sweep (no index built)")
    parser.add_argument("--hnsw-max", type=int, default=10_000, help="largest size HNSW is built at")
    parser.add_argument("--runs", type=int, default=0, help="papers indexed one run each (0: skip)")
    parser.add_argument("--questions", type=int, default=200, help="dev_qa questions for --runs")
    args = parser.parse_args()
    sentences = corpus_sentences()
    sentence_vectors = embedded_sentences(sentences) if args.vectors == "sentences" else None
    if sentence_vectors is not None and args.sizes:
        print_model_check(sentence_model_check())
    rows, sweep = [], []
    for size in args.sizes:
        if args.dense_only:
            vectors = synthetic_vectors(size, len(sentences), sentence_vectors)
            sweep += dense_sweep(vectors, args.hnsw_max)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(measure_size(size, sentences, sentence_vectors, Path(tmp) / "index"))
            sweep += dense_sweep(rows[-1].pop("vectors"), args.hnsw_max)
    if rows:
        print_size_table(rows, args.vectors)
    if sweep:
        print_ann_table(sweep, args.vectors)
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


def synthetic_batch(count: int, first: int, sentences: list[str], rng: random.Random, sentence_vectors=None):
    """`count` papers (5 corpus sentences each, one passage) and their vectors: with
    `sentence_vectors` (one row per sentence) the normalised mean of their sentences' vectors,
    else random unit vectors."""
    import numpy as np

    from hea_rag.ingest import Paper
    from hea_rag.lexical import tokenize
    from hea_rag.store import NewPassage

    papers, paper_tokens, passages = [], [], []
    chosen = draw_sentences(count, len(sentences), rng)
    for i, picks in enumerate(chosen):
        text = " ".join(sentences[j] for j in picks)
        tokens = " ".join(sentence_tokens(sentences[j]) for j in picks)
        papers.append(Paper(abstract=text, doi=f"10.9997/synthetic.{first + i}", title=f"Synthetic paper {first + i}"))
        paper_tokens.append(" ".join(tokenize(papers[-1].title)) + " " + tokens)  # as lexical_tokens
        passages.append(NewPassage(i, 0, text, tokens))
    return papers, paper_tokens, passages, paper_vectors(first, chosen, sentence_vectors)


@lru_cache(maxsize=None)
def sentence_tokens(sentence: str) -> str:
    """A corpus sentence's lexical tokens, made once: at 1M papers each sentence is drawn ~1,000
    times, and tokenizing the texts again would take most of the build. (tokenize reads a text
    sentence by sentence, so a paper's tokens are its sentences' tokens in order.)"""
    from hea_rag.lexical import tokenize

    return " ".join(tokenize(sentence))


def draw_sentences(count: int, sentences: int, rng: random.Random) -> list[list[int]]:
    """The 5 sentence positions of each of `count` papers (the draws of rng.sample(sentences, 5))."""
    return [rng.sample(range(sentences), 5) for _ in range(count)]


def paper_vectors(first: int, chosen: list[list[int]], sentence_vectors):
    """Unit vectors of papers: the normalised mean of their sentences' vectors, or random ones."""
    import numpy as np

    if sentence_vectors is None:
        vectors = np.random.default_rng(first).standard_normal((len(chosen), DIMENSION)).astype("float32")
    else:
        vectors = sentence_vectors[np.asarray(chosen)].mean(axis=1)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_vectors(size: int, sentences: int, sentence_vectors):
    """The vectors `build` gives an index of `size` papers (same draws), without the texts."""
    import numpy as np

    rng = random.Random(size)
    return np.concatenate([paper_vectors(start + 1, draw_sentences(min(BATCH, size - start), sentences, rng), sentence_vectors)
                           for start in range(0, size, BATCH)])


def embedded_sentences(sentences: list[str]):
    """The default embedder's vector of each text, cached under runs/ (a minute for the corpus)."""
    import hashlib

    import numpy as np

    from hea_rag.embedder import load_embedder

    embedder = load_embedder()
    key = hashlib.sha1("\n".join([embedder.name, embedder.backend, *sentences]).encode()).hexdigest()[:12]
    cache = ROOT / f"runs/bench_scale/sentences-{key}.npy"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, embedder.encode(sentences))
    return np.load(cache)


def sentence_model_check() -> dict:
    """How well a sentence-mean vector stands in for an abstract's own vector, on the shared
    corpus's real abstracts: cosine of the embedder's vector of the whole abstract with the
    normalised mean of its sentences' vectors, and how often the abstract's own mean is its
    nearest among all abstracts' means."""
    import numpy as np

    from hea_rag.chunking import split_sentences
    from hea_rag.embedder import load_embedder
    from hea_rag.ingest import Paper, read_path

    csv_path = shared_dir(ROOT) / "data/hea_qa/Scopus_Abstracts_Dataset.csv"
    abstracts = list({p.abstract for p in read_path(str(csv_path)) if isinstance(p, Paper)})
    embedder = load_embedder()
    whole = embedder.encode(abstracts)
    means = np.stack([embedder.encode(split_sentences(a)).mean(axis=0) for a in abstracts])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    cosines = np.sort((whole * means).sum(axis=1))
    own_nearest = float(np.mean((whole @ means.T).argmax(axis=1) == np.arange(len(abstracts))))
    return {"abstracts": len(abstracts), "median": float(np.median(cosines)),
            "p5": float(cosines[int(0.05 * len(cosines))]), "own_nearest": own_nearest}


def build(folder: Path, size: int, sentences: list[str], sentence_vectors=None):
    """A one-segment index of `size` synthetic papers (as `--compact` leaves it); its vectors."""
    import numpy as np

    from hea_rag.onnx_encoder import DEFAULT_BACKEND
    from hea_rag.store import Manifest, commit_generation, compact_segments

    folder.mkdir(parents=True)
    manifest = Manifest(embedder="all-MiniLM-L6-v2", dimension=DIMENSION,
                        chunking={"max_tokens": 200, "overlap_sentences": 0}, embedder_backend=DEFAULT_BACKEND)
    rng, all_vectors = random.Random(size), []
    for start in range(0, size, BATCH):
        batch = synthetic_batch(min(BATCH, size - start), start + 1, sentences, rng, sentence_vectors)
        manifest = commit_generation(folder, manifest, *batch)
        all_vectors.append(batch[3])
    return compact_segments(folder, manifest), np.concatenate(all_vectors)


def measure_size(size: int, sentences: list[str], sentence_vectors, folder: Path) -> dict:
    from hea_rag.store import commit_generation

    started = time.perf_counter()
    manifest, vectors = build(folder, size, sentences, sentence_vectors)
    row = {"size": size, "build_s": time.perf_counter() - started, "vectors": vectors,
           "kind": manifest.ann["kind"].upper() if is_approximate(size, manifest.ann) else "flat"}
    queries = planted_queries(folder, vectors)
    row.update(search_latencies(folder, queries, "one segment"))
    row["recall"] = dense_recall(folder, vectors, queries)
    batch = synthetic_batch(ADDED, size + 1, sentences, random.Random(-size), sentence_vectors)
    before = disk_bytes(folder)
    started = time.perf_counter()
    commit_generation(folder, manifest, *batch)
    row["add_s"] = time.perf_counter() - started
    row["bytes_per_paper"] = (disk_bytes(folder) - before) / ADDED
    row.update(search_latencies(folder, queries, "two segments"))
    row["rss_mb"] = search_rss(folder, queries)
    row["disk_mb"] = disk_bytes(folder) / 1e6
    return row


def dense_sweep(vectors, hnsw_max: int) -> list[dict]:
    """ann_sweep over the planted queries and dev_qa questions; the flat row also says how
    often a planted query's own paper is its nearest."""
    ids, planted = planted_vectors(vectors)
    return ann_sweep(vectors, {"planted": planted, "questions": question_vectors()}, hnsw_max, ids - 1)


def planted_queries(folder: Path, vectors) -> dict[str, object]:
    """Query text (a sentence of a known paper) -> that paper's vector plus a little noise."""
    import numpy as np

    from hea_rag.store import IndexReader

    ids, planted = planted_vectors(vectors)
    with IndexReader(folder) as reader:
        texts = reader.passages(int(i) for i in ids)
    return {texts[int(passage_id)][1].split(". ")[0]: vector for passage_id, vector in zip(ids, planted)}


def planted_vectors(vectors):
    """(passage ids, query vectors): QUERIES known papers' vectors plus a little noise."""
    import numpy as np

    rng = np.random.default_rng(7)
    ids = rng.choice(len(vectors), QUERIES, replace=False) + 1
    noisy = np.stack([vectors[i - 1] + NOISE * rng.standard_normal(DIMENSION).astype("float32") for i in ids])
    return ids, noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def question_vectors(count: int = QUERIES):
    """The default embedder's vectors of `count` dev_qa questions (real queries), cached."""
    questions = [json.loads(line)["question"] for line in
                 (shared_dir(ROOT) / "bench/dev_qa.jsonl").read_text(encoding="utf-8").splitlines()]
    return embedded_sentences(questions[::max(1, len(questions) // count)][:count])


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


def ann_sweep(vectors, query_sets: dict[str, object], hnsw_max: int, planted_rows=None) -> list[dict]:
    """Dense search alone, single queries: build time, p50/p95 ms and recall@50 against flat of
    each query set, for flat, IVF (two nlist, an nprobe sweep), 8-bit scalar quantization and
    PQ fast scan (the segments' kind, through their code), both re-ranked exactly, and HNSW
    when the size is at most `hnsw_max` (its build costs minutes per 100k on one core)."""
    size = len(vectors)
    flat, flat_row = _built("flat", "", lambda: approximate_index(vectors, {"min_passages": size + 1}))
    exact = {name: flat.search(queries, DEPTH)[1] for name, queries in query_sets.items()}
    rows = [_timed(flat_row, flat, query_sets, exact)]
    if planted_rows is not None:  # how often a planted query's own paper is its nearest
        rows[0]["planted_nearest"] = float((exact["planted"][:, 0] == planted_rows).mean())
    del flat
    for nlist in sorted({int(size ** 0.5), 4 * int(size ** 0.5)}):
        ivf, row = _built("IVF", "", lambda: ivf_index(vectors, nlist))
        for nprobe in (n for n in NPROBES if n <= nlist // 2):  # more: flat is as fast
            ivf.nprobe = nprobe
            rows.append(_timed({**row, "params": f"nlist {nlist}, nprobe {nprobe}"}, ivf, query_sets, exact))
        del ivf
    rows += _refined_rows("SQ8 + exact re-rank", sq8_index(vectors), (1, 2), query_sets, exact)
    pq = {"kind": "pq", "min_passages": 1, **ANN_DEFAULTS["pq"]}
    rows += _refined_rows(f"PQ{pq['sub_quantizers']}x4 fast scan + exact re-rank", _built(
        "", "", lambda: approximate_index(vectors, pq)), (8, 16, 32, 64), query_sets, exact)
    if size <= hnsw_max:
        ann = {"kind": "hnsw", "min_passages": 1, **ANN_DEFAULTS["hnsw"]}
        graph, row = _built("HNSW", "", lambda: approximate_index(vectors, ann))
        for ef_search in (64, 128, 256, 512):
            faiss_inner(graph).hnsw.efSearch = ef_search
            rows.append(_timed({**row, "params": f"M {ann['m']}, efC {ann['ef_construction']}, efSearch {ef_search}"},
                               graph, query_sets, exact))
    return [{"size": size, **row} for row in rows]


def _refined_rows(kind: str, built, k_factors, query_sets: dict, exact: dict) -> list[dict]:
    index, row = built
    inner = faiss_inner(index) if hasattr(index, "id_map") else index
    found = []
    for k_factor in k_factors:
        inner.k_factor = k_factor
        found.append(_timed({**row, "kind": kind, "params": f"k_factor {k_factor}"}, index, query_sets, exact))
    return found


def ivf_index(vectors, nlist: int):
    """IVF of flat lists, trained on 50 vectors per list."""
    import faiss
    import numpy as np

    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIMENSION), DIMENSION, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.max_points_per_centroid = 50
    sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), 50 * nlist), replace=False)
    index.train(vectors[np.sort(sample)])
    index.add(vectors)
    return index


def sq8_index(vectors) -> tuple[object, dict]:
    """8-bit scalar quantization of every vector, re-ranked with the exact ones; build timed."""
    import faiss

    def make():
        index = faiss.IndexRefineFlat(faiss.IndexScalarQuantizer(
            DIMENSION, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT))
        index.train(vectors)
        index.add(vectors)
        return index

    return _built("", "", make)


def approximate_index(vectors, ann: dict):
    """The FAISS index a segment of these vectors holds with these parameters (the segment
    writer's code: training sample included)."""
    import numpy as np

    from hea_rag.segment import new_vector_index, training_sample

    index = new_vector_index(DIMENSION, len(vectors), ann, training_sample([vectors], len(vectors), ann))
    index.add_with_ids(vectors, np.arange(len(vectors), dtype="int64"))
    return index


def faiss_inner(index):
    import faiss

    return faiss.downcast_index(index.index)


def _built(kind: str, params: str, make) -> tuple[object, dict]:
    started = time.perf_counter()
    index = make()
    return index, {"kind": kind, "params": params, "build_s": time.perf_counter() - started}


def _timed(row: dict, index, query_sets: dict, exact: dict) -> dict:
    """`row` with p50/p95 ms over every query (one at a time) and each set's recall@50."""
    timings = []
    for name, queries in query_sets.items():
        hits = 0
        for vector, truth in zip(queries, exact[name]):
            started = time.perf_counter()
            _, ids = index.search(vector.reshape(1, -1), DEPTH)
            timings.append((time.perf_counter() - started) * 1000)
            hits += len(set(ids[0]) & set(truth))
        row[f"recall {name}"] = hits / (DEPTH * len(queries))
    timings.sort()
    return {**row, "p50": statistics.median(timings), "p95": timings[int(0.95 * len(timings))]}


def search_rss(folder: Path, queries: dict) -> float:
    """Peak RSS of a real `hea-rag search` process over 50 of the query texts."""
    from scripts.bench_retrieval import peak_rss_mb

    text = "\n".join(list(queries)[:50]) + "\n"
    return peak_rss_mb(["search", "--json", "--index", str(folder)], text)[0]


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def print_model_check(check: dict) -> None:
    print(f"\n## Vector model: a paper's vector is the normalised mean of its sentences' vectors "
          f"(checked on the {check['abstracts']} real abstracts of the shared corpus)\n")
    print("| cosine to the abstract's own vector: median | p5 | the abstract's own mean is its nearest mean |")
    print("|---|---|---|")
    print(f"| {check['median']:.3f} | {check['p5']:.3f} | {check['own_nearest']:.3f} |")


def print_size_table(rows: list[dict], model: str) -> None:
    print(f"\n## Synthetic indexes (one passage per paper; vectors: {model})\n")
    print("| passages | vectors | build (s) | add 1,000 papers (s) | bytes written per added paper "
          "| dense recall@50 vs flat | peak RSS of `search` (MB) | disk (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']:,} | {r['kind']} | {r['build_s']:.0f} | {r['add_s']:.2f} "
              f"| {r['bytes_per_paper']:,.0f} | {r['recall']:.3f} | {r['rss_mb']:.0f} | {r['disk_mb']:.0f} |")
    print("\n| passages | segments | lexical p50 / p95 (ms) | dense p50 / p95 (ms) | hybrid p50 / p95 (ms) |")
    print("|---|---|---|---|---|")
    for r in rows:
        for label in ("one segment", "two segments"):
            cells = [r[f"{label} {mode}"] for mode in ("lexical", "dense", "hybrid")]
            print(f"| {r['size']:,} | {label} | " + " | ".join(f"{a:.1f} / {b:.1f}" for a, b in cells) + " |")


def print_ann_table(rows: list[dict], model: str) -> None:
    print(f"\n## Dense search alone, flat against approximate indexes (vectors: {model}; "
          f"{QUERIES} planted queries + {QUERIES} dev_qa questions, one at a time)\n")
    print("| passages | index | parameters | build (s) | p50 / p95 (ms) | recall@50 vs flat: planted "
          "| dev_qa questions |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        note = f" (planted paper nearest: {r['planted_nearest']:.3f})" if "planted_nearest" in r else ""
        print(f"| {r['size']:,} | {r['kind']}{note} | {r['params']} | {r['build_s']:.1f} "
              f"| {r['p50']:.2f} / {r['p95']:.2f} | {r['recall planted']:.3f} | {r['recall questions']:.3f} |")


def measure_runs(count: int, question_count: int, tmp: Path) -> dict:
    """`count` papers in `count` one-paper index runs, kept apart (--no-merge, the worst case)
    and merged as `index` does by default, then --compact; each against one run."""
    from hea_rag.indexer import RecordSource, compact_index, index_paths
    from hea_rag.ingest import Paper, read_path

    csv_path = shared_dir(ROOT) / "data/hea_qa/Scopus_Abstracts_Dataset.csv"
    papers = list({p.text_key: p for p in read_path(str(csv_path)) if isinstance(p, Paper)}.values())[:count]
    started = time.perf_counter()
    index_paths([RecordSource("all", papers)], tmp / "one-shot")
    row = {"papers": len(papers), "one_shot_s": time.perf_counter() - started,
           "one_shot_disk": disk_bytes(tmp / "one-shot") / 1e6}
    questions = [json.loads(line)["question"] for line in
                 (shared_dir(ROOT) / "bench/dev_qa.jsonl").read_text(encoding="utf-8").splitlines()]
    questions = questions[::max(1, len(questions) // question_count)][:question_count]
    expected = rankings(tmp / "one-shot", questions)
    for merge in (False, True):
        folder = tmp / f"runs-merge-{merge}"
        started = time.perf_counter()
        for number, paper in enumerate(papers):
            index_paths([RecordSource(f"paper {number}", [paper])], folder, merge=merge)
        row[merge] = {"runs": (time.perf_counter() - started, disk_bytes(folder) / 1e6, segment_count(folder),
                               compare(rankings(folder, questions), expected))}
        started = time.perf_counter()
        compact_index(folder)
        row[merge]["compact"] = (time.perf_counter() - started, disk_bytes(folder) / 1e6, segment_count(folder),
                                 compare(rankings(folder, questions), expected))
    return row


def segment_count(folder: Path) -> int:
    return len(json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["segments"])


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
    n = row[False]["runs"][3]["n"]
    print(f"\n## {row['papers']} papers as {row['papers']} one-paper `index` runs, then `--compact` "
          f"({n} dev_qa questions, hybrid top-10)\n")
    print("| index | time (s) | disk (MB) | segments | same top-10 as one run | same top-1 | hybrid p50 / p95 (ms) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| one `index` run | {row['one_shot_s']:.0f} | {row['one_shot_disk']:.1f} | 1 | - | - "
          f"| {row[False]['runs'][3]['expected_p50']:.1f} / - |")
    for merge, name in ((False, "`--no-merge`"), (True, "merged as they go (default)")):
        for stage, label in (("runs", f"one run per paper, {name}"), ("compact", "then `--compact`")):
            seconds, disk, segments, c = row[merge][stage]
            print(f"| {label} | {seconds:.1f} | {disk:.1f} | {segments} | {c['same']}/{n} | {c['top1']}/{n} "
                  f"| {c['p50']:.1f} / {c['p95']:.1f} |")


if __name__ == "__main__":
    main()
