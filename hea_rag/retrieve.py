"""Hybrid retrieval: lexical (FTS5 BM25 over whole abstracts) and dense (FAISS cosine), one hit per paper.

Lexical search with chemistry-aware tokens finds exact alloy formulas and numbers that embeddings
blur; dense search reorders what it found by meaning (see `fuse`). The fusion rule and its weight
were chosen on the `train` split of the dev QA set: reciprocal-rank fusion and an additive mix were
measured too and lost, since they let the much weaker dense ranking outvote exact formula matches.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hea_rag.errors import IndexMismatchError
from hea_rag.lexical import tokenize
from hea_rag.store import IndexReader, PaperRow

Mode = Literal["hybrid", "dense", "lexical"]
CANDIDATES = 50  # papers from lexical search, and passages from dense search, before fusion
DENSE_WEIGHT = 4.0


def fuse(lexical: float, dense: float, weight: float = DENSE_WEIGHT) -> float:
    """Lexical first, reranked by meaning: BM25 (scaled to the query's best) grows with the cosine.

    A paper with no lexical match scores only a sliver of its cosine, so dense-only candidates
    trail the lexical ones but still rank among themselves when no word of the query matched.
    """
    return lexical * (1.0 + weight * max(dense, 0.0)) + 1e-3 * dense


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    paper: PaperRow
    passage_id: int
    text: str
    dense: float | None  # cosine of the shown passage to the query
    lexical: float | None  # BM25 of the whole paper for the query
    best_dense: float | None = None  # cosine of the paper's closest passage: the abstention gate
    page: int | None = None  # page of the shown passage, when it comes from a PDF body


class Retriever:
    """Searches one index. The embedder is loaded by the caller once and reused across queries."""

    def __init__(self, reader: IndexReader, embedder=None, dense_weight: float = DENSE_WEIGHT):
        if embedder is not None and getattr(embedder, "backend", "torch") != reader.manifest.embedder_backend:
            raise IndexMismatchError(  # vectors of two backends are not comparable (int8 ~0.98)
                f"{reader.folder}: the index was embedded with backend "
                f"{reader.manifest.embedder_backend!r}, the query embedder runs {embedder.backend!r}")
        self.reader = reader
        self.embedder = embedder
        self.dense_weight = dense_weight
        # (query, vector) of the last query: `ask` scores passages right after searching
        self._last_query: tuple[str, object] | None = None

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        tokens = tokenize(query)
        lexical = dict(self.reader.lexical_search(tokens, CANDIDATES)) if mode != "dense" else {}
        vector = self._embed(query) if mode != "lexical" else None
        dense_papers = self._dense_candidates(vector) if vector is not None else set()
        passages = self.reader.passage_ids_of(set(lexical) | dense_papers)
        cosines = self._cosines(vector, passages)
        relevance = self._relevance(tokens, cosines)
        scores = self._paper_scores(lexical, cosines, passages, mode)
        ranked = sorted(scores, key=lambda paper_id: -scores[paper_id])[:k]
        return self._hits(ranked, scores, passages, cosines, relevance, lexical)

    def passage_relevance(self, query: str, passages: dict[int, list[int]]) -> dict[int, float]:
        """passage id -> relevance to `query`, for `passages` (paper id -> passage ids): the
        passage's own BM25 and cosine fused, the score `search` picks a paper's shown passage by.
        Without an embedder it is the passage BM25 alone."""
        vector = self._embed(query) if self.embedder is not None else None
        relevance = self._relevance(tokenize(query), self._cosines(vector, passages))
        return {pid: relevance(pid) for group in passages.values() for pid in group}

    def _embed(self, query: str):
        if self.embedder is None:
            raise ValueError("dense search needs an embedder")
        if self._last_query is None or self._last_query[0] != query:
            self._last_query = (query, self.embedder.encode([query])[0])
        return self._last_query[1]

    def _dense_candidates(self, vector) -> set[int]:
        found = self.reader.dense_search(vector, CANDIDATES)
        owners = self.reader.passages(pid for pid, _ in found)
        return {owners[pid][0] for pid, _ in found}

    def _cosines(self, vector, passages: dict[int, list[int]]) -> dict[int, float]:
        ids = [pid for group in passages.values() for pid in group]
        if vector is None or not ids:
            return {}
        return dict(zip(ids, (self.reader.vectors_of(ids) @ vector).tolist()))

    def _relevance(self, tokens, cosines: dict[int, float]):
        """passage id -> its own BM25 and cosine fused. BM25 is scaled to the query's best
        passage in the whole index, so a passage scores the same whatever papers are asked of."""
        found = dict(self.reader.lexical_search(tokens, 4 * CANDIDATES, table="passages_fts"))
        top = max(found.values(), default=0.0) or 1.0
        return lambda pid: fuse(found.get(pid, 0.0) / top, cosines.get(pid, 0.0), self.dense_weight)

    def _paper_scores(self, lexical, cosines, passages, mode: Mode) -> dict[int, float]:
        top = max(lexical.values(), default=0.0) or 1.0
        scores = {}
        for paper_id, group in passages.items():
            lexical_part = lexical.get(paper_id, 0.0) / top
            dense_part = _best_cosine(group, cosines) or 0.0
            if mode == "lexical":
                scores[paper_id] = lexical_part
            elif mode == "dense":
                scores[paper_id] = dense_part
            else:
                scores[paper_id] = fuse(lexical_part, dense_part, self.dense_weight)
        return scores

    def _hits(self, ranked, scores, passages, cosines, relevance, lexical) -> list[Hit]:
        """One hit per paper, showing the passage that best explains the match (max relevance)."""
        papers = self.reader.papers(ranked)
        chosen = {p: max(passages[p], key=relevance) for p in ranked}
        texts = self.reader.passages(chosen.values())
        pages = self.reader.pages_of(chosen.values())
        return [
            Hit(rank=rank, score=scores[paper_id], paper=papers[paper_id],
                passage_id=chosen[paper_id], text=texts[chosen[paper_id]][1],
                dense=cosines.get(chosen[paper_id]), lexical=lexical.get(paper_id),
                best_dense=_best_cosine(passages[paper_id], cosines), page=pages.get(chosen[paper_id]))
            for rank, paper_id in enumerate(ranked, start=1)
        ]


def _best_cosine(group: list[int], cosines: dict[int, float]) -> float | None:
    """The cosine of the paper's closest passage, or None when nothing was embedded."""
    found = [cosines[pid] for pid in group if pid in cosines]
    return max(found) if found else None


@contextmanager
def open_retriever(folder: Path, embedder_name: str | None = None, need_dense: bool = True):
    """A Retriever over the index at `folder`, with the embedder the index was built with.

    Asking for another embedder is refused: its vectors would not be comparable.
    """
    from hea_rag.embedder import canonical_name, load_embedder

    with IndexReader(folder) as reader:
        name = canonical_name(embedder_name) if embedder_name else None
        reader.manifest.check_compatible(name, None)
        manifest = reader.manifest
        embedder = load_embedder(manifest.embedder, manifest.embedder_backend) if need_dense else None
        yield Retriever(reader, embedder)
