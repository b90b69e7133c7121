"""The ask pipeline: retrieve -> decide whether the corpus can answer -> pack -> generate."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hea_rag.chunking import split_sentences
from hea_rag.prompt import fit_prompt
from hea_rag.retrieve import Hit, Retriever

# Cosine of the best retrieved passage below which the question is taken as off-corpus. Chosen by
# scripts/calibrate_abstention.py between the dev QA questions and the project's own off-corpus
# questions (tests/data/off_corpus_questions.txt).
DEFAULT_MIN_SCORE = 0.30
ADAPTER_DIRNAME = "adapter"
NOT_ANSWERABLE = "The indexed abstracts do not seem to answer this question."
# abstention looks at this many best papers whatever -k is: --min-score was calibrated on them
GATE_HITS = 3


@dataclass(frozen=True)
class AskSettings:
    # papers whose passages go into the prompt: one beat three end to end with a trained adapter
    # (distractor passages mislead a small model more than a missed paper costs; see README)
    top_k: int = 1
    max_new_tokens: int = 48
    context_tokens: int = 768  # cap on the context, for speed; the model window caps it too
    min_score: float = DEFAULT_MIN_SCORE


@dataclass
class Source:
    rank: int
    paper_id: int
    doi: str | None
    title: str | None
    year: int | None
    score: float
    text: str


@dataclass
class Answer:
    question: str
    answer: str
    answerable: bool
    sources: list[Source] = field(default_factory=list)
    model: str = ""
    adapter: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Answerer:
    """Answers questions with one loaded generator and, unless a context is given, one retriever."""

    def __init__(self, generator, retriever: Retriever | None, settings: AskSettings = AskSettings()):
        self.generator = generator
        self.retriever = retriever
        self.settings = settings

    def ask(self, question: str, context: str | None = None,
            on_text: Callable[[str], None] | None = None, hits: list[Hit] | None = None) -> Answer:
        """Answer one question. `hits`, when given, are search results to use (best first)
        instead of searching again; the first `top_k` go into the prompt, the first `GATE_HITS` (or
        `top_k`, if more) decide whether to abstain."""
        started = time.perf_counter()
        if context is not None:
            hits = []
        elif hits is None:
            hits = self._retrieve(question)
        gate_hits = hits[: self._search_k]
        hits = hits[: self.settings.top_k]
        retrieved = time.perf_counter()
        answer = Answer(question=question, answer="", answerable=True, model=self.generator.name,
                        adapter=self.generator.adapter)
        if context is None and not self._relevant(gate_hits):
            answer.answerable, answer.answer = False, NOT_ANSWERABLE
        else:
            prompt, answer.sources = self._prompt(question, context, hits)
            answer.answer = self.generator.generate(prompt, self.settings.max_new_tokens, on_text)
        answer.timings = {"retrieve": round(retrieved - started, 4),
                          "generate": round(time.perf_counter() - retrieved, 4)}
        return answer

    def _retrieve(self, question: str) -> list[Hit]:
        if self.retriever is None:
            raise ValueError("asking without --context needs an index")
        return self.retriever.search(question, k=self._search_k)

    @property
    def _search_k(self) -> int:
        return max(self.settings.top_k, GATE_HITS)

    def _relevant(self, hits: list[Hit]) -> bool:
        return bool(hits) and max(h.dense or 0.0 for h in hits) >= self.settings.min_score

    def _prompt(self, question: str, context: str | None, hits: list[Hit]):
        budget = prompt_budget(self.settings, self.generator.window,
                               self.generator.count_tokens(question))
        if context is not None:
            passages = [(0, sentence) for sentence in split_sentences(context)]
        else:
            passages = self._passages(hits)
        prompt, used = fit_prompt(question, passages, self.generator.count_tokens, budget)
        used_ranks = {rank for rank, _ in used}
        return prompt, [_source(hit) for hit in hits if hit.rank in used_ranks]

    def _passages(self, hits: list[Hit]) -> list[tuple[int, str]]:
        """(hit rank, passage) for every passage of the hit papers."""
        rank_of = {hit.paper.id: hit.rank for hit in hits}
        passages = paper_passages(self.retriever.reader, [hit.paper.id for hit in hits])
        return [(rank_of[paper_id], text) for paper_id, text in passages]


def prompt_budget(settings: AskSettings, window: int, question_tokens: int) -> int:
    """Most prompt tokens: the context cap plus the question frame, within the window less the
    answer. `finetune` packs its training prompts with the same budget."""
    return min(window - settings.max_new_tokens, settings.context_tokens + question_tokens + 8)


def paper_passages(reader, paper_ids: list[int]) -> list[tuple[int, str]]:
    """(paper id, passage) for every passage of these papers: papers in the given order (best
    first), each abstract in reading order so the model reads it as written. `ask` and
    `finetune` both build their contexts from this."""
    grouped = reader.passage_ids_of(paper_ids)
    texts = reader.passages(pid for group in grouped.values() for pid in group)
    return [(paper_id, texts[pid][1]) for paper_id in paper_ids for pid in grouped.get(paper_id, [])]


def _source(hit: Hit) -> Source:
    return Source(rank=hit.rank, paper_id=hit.paper.id, doi=hit.paper.doi, title=hit.paper.title,
                  year=hit.paper.year, score=round(hit.score, 4), text=hit.text)


def default_adapter(index_dir: Path) -> Path | None:
    """The adapter stored with the index (where `finetune` puts it by default), if there is one."""
    candidate = Path(index_dir) / ADAPTER_DIRNAME
    return candidate if (candidate / "adapter_config.json").exists() else None


@contextmanager
def open_answerer(index_dir: Path, model: str, adapter: str | None, use_adapter: bool,
                  quantize: str | None, settings: AskSettings, need_retrieval: bool):
    """An Answerer with its models loaded once, for one question or a whole batch."""
    from hea_rag.generator import load_generator
    from hea_rag.retrieve import open_retriever

    chosen = (adapter or default_adapter(index_dir)) if use_adapter else None
    generator = load_generator(model, chosen, quantize)
    if not need_retrieval:
        yield Answerer(generator, None, settings)
        return
    with open_retriever(index_dir) as retriever:
        yield Answerer(generator, retriever, settings)
