"""The ask pipeline: retrieve -> decide whether the corpus can answer -> pack -> generate."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hea_rag.chunking import split_sentences
from hea_rag.prompt import TokenCounter, fit_prompt
from hea_rag.retrieve import Hit, Retriever

# Below this cosine between the question and the closest passage of the best GATE_HITS papers,
# the question is taken as off-corpus. Chosen by scripts/calibrate_abstention.py between the
# dev QA questions and the project's own off-corpus questions (tests/data/off_corpus_questions.txt).
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


Stage = Callable[[str], None]  # told what the pipeline is doing, for a status line


class Answerer:
    """Answers questions with one loaded generator and, unless a context is given, one retriever."""

    def __init__(self, generator, retriever: Retriever | None,
                 settings: AskSettings = AskSettings(), on_stage: Stage | None = None):
        self.generator = generator
        self.retriever = retriever
        self.settings = settings
        self.on_stage = on_stage or (lambda stage: None)

    def ask(self, question: str, context: str | None = None,
            on_text: Callable[[str], None] | None = None, hits: list[Hit] | None = None) -> Answer:
        """Answer one question. `hits`, when given, are search results to use (best first)
        instead of searching again; the first `top_k` go into the prompt, the first `GATE_HITS` (or
        `top_k`, if more) decide whether to abstain."""
        started = time.perf_counter()
        if context is not None:
            hits = []
        elif hits is None:
            self.on_stage("retrieving passages")
            hits = self._retrieve(question)
        gate_hits = hits[: self._search_k]
        hits = hits[: self.settings.top_k]
        retrieved = time.perf_counter()
        answer = Answer(question=question, answer="", answerable=True, model=self.generator.name,
                        adapter=self.generator.adapter)
        if context is None and gate_score(gate_hits) < self.settings.min_score:
            answer.answerable, answer.answer = False, NOT_ANSWERABLE
        else:
            self.on_stage("generating the answer")
            prompt, answer.sources = self.prompt_for(question, context, hits)
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

    def prompt_for(self, question: str, context: str | None, hits: list[Hit]):
        """The prompt for `question` over `context` or the hit papers, and the sources it
        cites: each hit paper with a passage in the prompt, showing its most relevant one."""
        count = self.generator.count_tokens
        budget = prompt_budget(self.settings, self.generator.window, count(question))
        if context is not None:
            passages = [(0, sentence) for sentence in split_sentences(context)]
            return fit_prompt(question, passages, count, budget)[0], []
        papers = [hit.paper.id for hit in hits]
        prompt, used = pack_papers(self.retriever, question, papers, count, budget)
        shown = {}
        for paper_id, text in used:
            shown.setdefault(paper_id, text)
        return prompt, [_source(hit, shown[hit.paper.id]) for hit in hits if hit.paper.id in shown]


def prompt_budget(settings: AskSettings, window: int, question_tokens: int) -> int:
    """Most prompt tokens: the context cap plus the question frame, within the window less the
    answer. `finetune` packs its training prompts with the same budget."""
    return min(window - settings.max_new_tokens, settings.context_tokens + question_tokens + 8)


def gate_score(hits: list[Hit]) -> float:
    """What abstention compares with --min-score: the cosine of the closest passage of any of
    these papers (scripts/calibrate_abstention.py calibrates exactly this)."""
    return max((hit.best_dense or 0.0 for hit in hits), default=0.0)


def pack_papers(retriever: Retriever, question: str, paper_ids: list[int],
                count_tokens: TokenCounter, budget: int) -> tuple[str, list[tuple[int, str]]]:
    """The prompt over these papers (best first) and the (paper id, passage) pairs it holds,
    most relevant first. `ask` and `finetune` both build their contexts with this.

    Passages are packed by relevance to the question (best paper first, then each paper's
    passages by their own BM25 and cosine), so a long abstract loses its least relevant
    passages, never the matched one; each abstract is still printed in reading order.
    """
    reading = retriever.reader.passage_ids_of(paper_ids)  # paper id -> passage ids, in order
    relevance = retriever.passage_relevance(question, reading)
    texts = retriever.reader.passages(relevance.keys())
    passage = {pid: (paper, texts[pid][1]) for paper, group in reading.items() for pid in group}
    groups = [reading.get(paper, []) for paper in paper_ids]
    in_reading_order = [passage[pid] for group in groups for pid in group]
    by_relevance = [passage[pid] for group in groups  # stable: ties keep reading order
                    for pid in sorted(group, key=relevance.__getitem__, reverse=True)]
    prompt, used = fit_prompt(question, by_relevance, count_tokens, budget, in_reading_order)
    chosen = set(used)
    return prompt, [p for p in by_relevance if p in chosen]


def _source(hit: Hit, text: str) -> Source:
    return Source(rank=hit.rank, paper_id=hit.paper.id, doi=hit.paper.doi, title=hit.paper.title,
                  year=hit.paper.year, score=round(hit.score, 4), text=text)


def default_adapter(index_dir: Path) -> Path | None:
    """The adapter stored with the index (where `finetune` puts it by default), if there is one."""
    candidate = Path(index_dir) / ADAPTER_DIRNAME
    return candidate if (candidate / "adapter_config.json").exists() else None


@contextmanager
def open_answerer(index_dir: Path, model: str, adapter: str | None, use_adapter: bool,
                  quantize: str | None, settings: AskSettings, need_retrieval: bool,
                  on_stage: Stage | None = None):
    """An Answerer with its models loaded once, for one question or a whole batch.
    `on_stage` hears each slow step (loading, retrieving, generating) as it starts."""
    from hea_rag.generator import load_generator
    from hea_rag.retrieve import open_retriever

    on_stage = on_stage or (lambda stage: None)
    chosen = (adapter or default_adapter(index_dir)) if use_adapter else None
    on_stage(f"loading {model}" + (f" with adapter {chosen}" if chosen else ""))
    generator = load_generator(model, chosen, quantize)
    if not need_retrieval:
        yield Answerer(generator, None, settings, on_stage)
        return
    on_stage(f"loading the index {index_dir} and its embedder")
    with open_retriever(index_dir) as retriever:
        yield Answerer(generator, retriever, settings, on_stage)
