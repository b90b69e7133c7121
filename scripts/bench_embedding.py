"""Embedding ceiling: how fast can MiniLM embed the shared corpus's passages on this machine?

    .venv/bin/python scripts/bench_embedding.py

Indexing is bounded by the embedder, so this isolates it: the passages `hea-rag index` makes from
the shared CSV, embedded in fp32 and in the precision the indexer uses (bf16 autocast on CPUs with
native bf16), in the indexer's order (longest first) and in reading order. Prints the token count,
seconds, abstracts/s and passages/s of each, plus the arithmetic rate it implies, so a throughput
target can be checked against what the hardware does.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hea_rag.config import shared_dir  # noqa: E402

# multiply-adds of one token through MiniLM-L6 (6 layers of 4 * 384^2 attention projections and
# 2 * 384 * 1536 feed-forward weights); attention scores add a little on top
FLOPS_PER_TOKEN = 2 * 6 * (4 * 384 * 384 + 2 * 384 * 1536)


def main() -> None:
    import torch

    from hea_rag.chunking import ChunkingParams, chunk_text
    from hea_rag.embedder import load_embedder
    from hea_rag.ingest import Paper, read_path

    csv_path = shared_dir(ROOT) / "data/hea_qa/Scopus_Abstracts_Dataset.csv"
    papers = {p.text_key: p for p in read_path(str(csv_path)) if isinstance(p, Paper)}
    embedder = load_embedder()
    texts = [text for paper in papers.values()
             for text in chunk_text(paper.abstract, embedder.count_tokens, ChunkingParams())]
    tokens = sum(embedder.count_tokens(t) for t in texts)
    longest_first = sorted(texts, key=len, reverse=True)
    print(f"\n{len(papers)} abstracts, {len(texts)} passages, {tokens} tokens, "
          f"{torch.get_num_threads()} torch threads\n")
    print("| precision | order | seconds | abstracts/s | passages/s | GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for precision in ("fp32", "indexer (bf16 autocast)"):
        for order, batch in (("reading order, 64 at a time", texts), ("longest first", longest_first)):
            encode = embedder.model.encode if precision == "fp32" else embedder.encode
            seconds = timed_encode(encode, batch)
            print(f"| {precision} | {order} | {seconds:.1f} | {len(papers) / seconds:.1f} "
                  f"| {len(texts) / seconds:.1f} | {tokens * FLOPS_PER_TOKEN / seconds / 1e9:.0f} |")


def timed_encode(encode, texts: list[str]) -> float:
    encode(texts[:32])  # warm-up
    started = time.perf_counter()
    for start in range(0, len(texts), 64):
        encode(texts[start:start + 64], batch_size=32)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
