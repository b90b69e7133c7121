"""Answers across papers (`ask --papers N`, `ask --papers all --filter WORDS`): the single-paper
pipeline of answer.py run once per paper, each answer or refusal kept.

The small model answers best from one paper at a time, so each paper gets the trained prompt over
its own abstract and the same gates as a single answer: the relevance gate (`low_score`, over the
question's best papers, as calibrated), then per paper `no_match` before generating and `model`
and `unsupported` after (Answerer.prepare / Answerer.conclude). `--papers 1` is today's single
answer. Prompts that pass the first gates are generated in batches of `batch_size`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from hea_rag.agreement import summary_line
from hea_rag.answer import GATE_HITS, NOT_ANSWERABLE, Answer, Answerer, Source, source_of
from hea_rag.errors import HeaRagError
from hea_rag.evidence import alloys_in
from hea_rag.lexical import parse_formula, tokenize
from hea_rag.retrieve import Hit

ALL = "all"
# papers whose best passage is picked together while `--papers all` walks the filter's papers
HIT_CHUNK = 16
# prompts per pass through the model on CUDA (not measured here); on the CPU one at a time:
# batches measured slower there (scripts/bench_papers.py, N=5: 4.05 s against 3.87 s a question),
# as reading the prompt dominates and a batch pays for its padding and its longest answer
CUDA_BATCH = 8
CPU_BATCH = 1


@dataclass(frozen=True)
class PapersSettings:
    papers: int | str = 1  # how many of the best papers, or ALL papers the filter matches
    filter: str | None = None  # words every paper must match (`--papers all`)
    batch_size: int | None = None  # prompts per pass through the model; None: by the device


@dataclass
class PaperAnswer:
    """One paper's answer (or refusal) to the question, with the alloy its evidence names."""

    rank: int
    source: Source
    alloy: str
    answer: Answer

    @property
    def answerable(self) -> bool:
        return self.answer.answerable

    def as_dict(self) -> dict[str, Any]:
        found = self.answer
        return {"rank": self.rank, "alloy": self.alloy, "answer": found.answer,
                "answerable": found.answerable, "reason": found.reason,
                "model_output": found.model_output,
                "evidence": asdict(found.evidence) if found.evidence else None,
                "source": asdict(self.source)}


@dataclass
class PapersAnswer:
    """Every paper's answer to one question; `reason` is `low_score` when none was asked."""

    question: str
    papers: int | str
    filter: str | None = None
    answers: list[PaperAnswer] = field(default_factory=list)
    summary: str | None = None
    reason: str | None = None
    model: str = ""
    adapter: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def answered(self) -> list[PaperAnswer]:
        return [row for row in self.answers if row.answerable]

    def as_dict(self) -> dict[str, Any]:
        return {"question": self.question, "papers": self.papers, "filter": self.filter,
                "summary": self.summary, "answerable": bool(self.answered), "reason": self.reason,
                "answer": NOT_ANSWERABLE if self.reason else None,
                "answers": [row.as_dict() for row in self.answers], "model": self.model,
                "adapter": self.adapter, "timings": self.timings}


Progress = Callable[[int, int], None]  # (papers done, papers in all)


class PaperAnswerer:
    """Asks each of a question's papers separately, with one loaded Answerer."""

    def __init__(self, answerer: Answerer, settings: PapersSettings = PapersSettings()):
        self.answerer = answerer
        self.settings = settings
        self.batch_size = settings.batch_size or default_batch_size(answerer.generator)

    def ask(self, question: str, on_row: Callable[[PaperAnswer], None] | None = None,
            on_progress: Progress | None = None) -> PapersAnswer:
        """Every paper's answer, each passed to `on_row` as soon as it is ready (rank order)."""
        started = time.perf_counter()
        result = PapersAnswer(question, self.settings.papers, self.settings.filter,
                              model=self.answerer.generator.name,
                              adapter=self.answerer.generator.adapter)
        best = self._search(question)
        searched = time.perf_counter()
        if self.answerer.off_topic(best[:GATE_HITS]):
            result.reason = "low_score"
        else:
            hits, total = self._candidates(question, best)
            for row in self._rows(question, hits, best):
                result.answers.append(row)
                if on_row:
                    on_row(row)
                if on_progress:
                    on_progress(len(result.answers), total)
        result.summary = summary_line([row.answer.answer for row in result.answered])
        result.timings = {"retrieve": round(searched - started, 4),
                          "answer": round(time.perf_counter() - searched, 4)}
        return result

    def _search(self, question: str) -> list[Hit]:
        papers = self.settings.papers
        k = GATE_HITS if papers == ALL else max(int(papers), GATE_HITS)
        return self.answerer.retriever.search(question, k=k)

    def _candidates(self, question: str, best: list[Hit]) -> tuple[Iterable[Hit], int]:
        """The papers to ask, best first, and how many there are."""
        if self.settings.papers != ALL:
            chosen = best[: int(self.settings.papers)]
            return chosen, len(chosen)
        scored = filter_papers(self.answerer.retriever.reader, self.settings.filter or "")
        return hits_of(self.answerer.retriever, question, scored), len(scored)

    def _rows(self, question: str, hits: Iterable[Hit], best: list[Hit]) -> Iterator[PaperAnswer]:
        """Each paper's answer in order; generation waits until `batch_size` prompts are ready."""
        if self.settings.papers == 1:  # today's single answer: the best of the gate's papers
            yield self._single(question, best)
            return
        waiting: list[tuple[PaperAnswer, Any]] = []
        for hit in hits:
            waiting.append(self._prepare(question, hit))
            if sum(prepared is not None for _, prepared in waiting) >= self.batch_size:
                yield from self._finish(waiting)
                waiting = []
        yield from self._finish(waiting)

    def _single(self, question: str, best: list[Hit]) -> PaperAnswer:
        answer = self.answerer.ask(question, hits=best)
        source = answer.sources[0] if answer.sources else source_of(best[0], best[0].text)
        return PaperAnswer(source.rank, source, self._alloy(answer, source.paper_id), answer)

    def _prepare(self, question: str, hit: Hit):
        """The paper's answer so far (refused by `no_match`, or waiting for the model) and its
        prompt with what the model reads, or None."""
        answer = Answer(question=question, answer="", answerable=True,
                        model=self.answerer.generator.name, adapter=self.answerer.generator.adapter)
        prepared = self.answerer.prepare(answer, None, [hit])
        row = PaperAnswer(hit.rank, source_of(hit, answer.sources[0].text if answer.sources
                                              else hit.text), "", answer)
        return row, prepared

    def _finish(self, waiting: list[tuple[PaperAnswer, Any]]) -> Iterator[PaperAnswer]:
        asked = [(row, prepared) for row, prepared in waiting if prepared is not None]
        outputs = self._generate([prompt for _, (prompt, _) in asked])
        for (row, (_, read)), output in zip(asked, outputs):
            self.answerer.conclude(row.answer, output, read)
        for row, _ in waiting:
            row.alloy = self._alloy(row.answer, row.source.paper_id)
            yield row

    def _generate(self, prompts: list[str]) -> list[str]:
        generator, tokens = self.answerer.generator, self.answerer.settings.max_new_tokens
        if self.batch_size <= 1:
            return [generator.generate(prompt, tokens) for prompt in prompts]
        return [output for start in range(0, len(prompts), self.batch_size)
                for output in generator.generate_batch(prompts[start:start + self.batch_size],
                                                       tokens)]

    def _alloy(self, answer: Answer, paper_id: int) -> str:
        """The alloy the answer's evidence names (else the paper's abstract), preferring the
        one the question asks about, then a multi-component one; "" when none is named."""
        if not answer.answerable:
            return ""
        asked = alloys_in(answer.question)
        abstract = self.answerer.retriever.reader.papers([paper_id])[paper_id].abstract or ""
        for text in (answer.evidence.text, abstract):
            named = alloys_in(text)
            if named:
                return _cut_suffix(pick_alloy(named, asked))
        return ""


def pick_alloy(named: dict[str, str], asked: dict[str, str]) -> str:
    """Of the alloys a text names (element key -> spelling): one the question asks about, else
    the first of three or more elements (NbC and TiN are compounds beside an HEA), else the
    first."""
    for key, name in named.items():
        if key in asked:
            return name
    names = [_cut_suffix(name) for name in named.values()]
    return next((name for name in names if _elements(name) >= 3), names[0])


def _elements(name: str) -> int:
    formula = parse_formula(name)
    return len(formula.moles) if formula is not None else 0


def _cut_suffix(name: str) -> str:
    """`NbMoTaW-based` -> `NbMoTaW`: a word joined to the formula is not part of its name."""
    return re.sub(r"-[a-z]+$", "", name)


def default_batch_size(generator) -> int:
    device = getattr(generator.model, "device", None)
    return CUDA_BATCH if getattr(device, "type", "cpu") == "cuda" else CPU_BATCH


def filter_papers(reader, words: str) -> list[tuple[int, float]]:
    """(paper id, BM25 summed over the words) of every paper the lexical index matches for each
    word of `words`, best first. A formula matches by its elements (`NbMoTaW` = `MoNbTaW`),
    another word by any of its tokens (`1200°C` by `1200`)."""
    limit = max(reader.manifest.counts.get("papers", 0), 1)
    found: dict[int, float] | None = None
    for word in words.split():
        tokens = tokenize(word)
        alloy = [t for t in tokens if t.startswith("sys_")]
        if not tokens:
            continue  # a function word
        scores = dict(reader.lexical_search(alloy[:1] or tokens, limit))
        found = scores if found is None else {
            paper: score + scores[paper] for paper, score in found.items() if paper in scores}
    if found is None:
        raise HeaRagError(f"--filter {words!r}: no word the index can search for")
    return sorted(found.items(), key=lambda item: -item[1])


def hits_of(retriever, question: str, scored: list[tuple[int, float]]) -> Iterator[Hit]:
    """The papers as search hits, in this order (rank = position), each showing its passage
    most relevant to the question; built a chunk at a time as they are asked."""
    for start in range(0, len(scored), HIT_CHUNK):
        chunk = scored[start:start + HIT_CHUNK]
        ids = [paper for paper, _ in chunk]
        reading = retriever.reader.passage_ids_of(ids)
        relevance = retriever.passage_relevance(question, reading)
        chosen = {paper: max(group, key=relevance.__getitem__) for paper, group in reading.items()}
        texts = retriever.reader.passages(chosen.values())
        papers = retriever.reader.papers(ids)
        for rank, (paper, score) in enumerate(chunk, start=start + 1):
            if paper in chosen:
                passage = chosen[paper]
                yield Hit(rank=rank, score=score, paper=papers[paper], passage_id=passage,
                          text=texts[passage][1], dense=None, lexical=score)


def answer_each(answerer: PaperAnswerer, questions: Iterable[str], writer, batch: bool,
                on_progress: Progress | None = None) -> None:
    """Every question's papers through `writer` (start once; then per question a row as each
    paper is done, then done), so each question's rows follow it. In a batch a failing
    question is reported and the batch goes on."""
    writer.start()
    for question in questions:
        try:
            result = answerer.ask(question, lambda row, asked=question: writer.row(asked, row),
                                  on_progress)
        except HeaRagError as error:
            if not batch:
                raise
            writer.error(question, str(error))
            continue
        writer.done(result)
