"""The ask pipeline: retrieve -> decide whether the corpus can answer -> pack -> generate ->
check the answer against the passage it came from.

Four gates, each with its `reason` (see README, "When hea-rag refuses"):
`low_score` no passage is close to the question (off-topic); `no_match` the closest papers never
mention the alloy, property or value the question pins down (evidence.match_question);
`model` the adapter answered with its trained refusal (prompt.REFUSAL); `unsupported` the answer's
numbers or key words are not in the text the model read (evidence.find_support).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hea_rag.chunking import split_sentences
from hea_rag.evidence import find_support, match_question, question_terms
from hea_rag.prompt import TokenCounter, fit_prompt, is_refusal
from hea_rag.retrieve import Hit, Retriever

# Below this cosine between the question and the closest passage of the best GATE_HITS papers,
# the question is taken as off-corpus. Chosen by scripts/calibrate_abstention.py between the
# dev QA questions and the project's own off-corpus questions (tests/data/off_corpus_questions.txt).
DEFAULT_MIN_SCORE = 0.30
ADAPTER_DIRNAME = "adapter"
NOT_ANSWERABLE = "The indexed abstracts do not seem to answer this question."
# what each refusal reason prints (`{detail}`: what the closest paper never mentions)
REFUSALS = {
    "low_score": NOT_ANSWERABLE,
    "no_match": "The indexed papers do not report this: the closest papers never mention {detail}.",
    "model": "The indexed papers do not report this: the model found no answer in the closest "
             "paper.",
    "unsupported": "The model's answer was not found in the paper, so it is not given.",
}
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
    file: str | None = None  # the PDF the paper was read from


@dataclass
class Evidence:
    """Where the answer stands: `start`/`end` are character offsets of `text` in the paper's
    abstract as indexed (in the given context, with --context); -1 if it could not be placed."""

    paper_id: int | None
    doi: str | None
    start: int
    end: int
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
    reason: str | None = None  # why it was refused: a key of REFUSALS
    model_output: str | None = None  # what the model generated, printed or not
    evidence: Evidence | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def refuse(self, reason: str, detail: str = "") -> None:
        self.answerable, self.reason = False, reason
        self.answer = REFUSALS[reason].format(detail=detail or "what the question asks")


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
        instead of searching again. The first `GATE_HITS` (or `top_k`, if more) decide whether to
        abstain; the best `top_k` of them that match the question go into the prompt."""
        started = time.perf_counter()
        if context is not None:
            hits = []
        elif hits is None:
            self.on_stage("retrieving passages")
            hits = self._retrieve(question)
        gate_hits = hits[: self._search_k]
        retrieved = time.perf_counter()
        answer = Answer(question=question, answer="", answerable=True, model=self.generator.name,
                        adapter=self.generator.adapter)
        if context is None and self.off_topic(gate_hits):
            answer.refuse("low_score")
        else:
            self._answer_from_evidence(answer, context, gate_hits, on_text)
        answer.timings = {"retrieve": round(retrieved - started, 4),
                          "generate": round(time.perf_counter() - retrieved, 4)}
        return answer

    def _answer_from_evidence(self, answer: Answer, context: str | None, gate_hits: list[Hit],
                              on_text) -> None:
        """Generate from the best papers that mention what the question pins down (or from
        `context`), then keep the answer only if the text the model read holds it."""
        prepared = self.prepare(answer, context, gate_hits)
        if prepared is None:
            return
        self.on_stage("generating the answer")
        prompt, read = prepared
        output = self.generator.generate(prompt, self.settings.max_new_tokens, on_text)
        self.conclude(answer, output, read)

    def prepare(self, answer: Answer, context: str | None, gate_hits: list[Hit]):
        """The gate before generating (`no_match`), then the prompt over the best `top_k` of the
        papers that pass it (or over `context`) and what the model reads of each paper; None
        when the gate refused `answer`. `answers.py` calls it with one paper at a time."""
        terms = question_terms(answer.question)
        if context is not None:
            match = match_question(answer.question, context, terms)
            if not match.ok:
                return answer.refuse("no_match", match.describe())
            hits = []
        else:
            hits, match = self._matching(gate_hits, terms, answer.question)
            if not hits:
                return answer.refuse("no_match", match.describe() if match else "")
        prompt, answer.sources, read = self.prompt_for(answer.question, context, hits)
        return prompt, read

    def conclude(self, answer: Answer, output: str, read: dict[int | None, str]) -> None:
        """The gates after generating: the model's trained refusal (`model`), then the answer
        must stand in the text the model read (`unsupported`); else `output` is the answer."""
        answer.model_output = output
        if is_refusal(output):
            return answer.refuse("model")
        answer.evidence = self._evidence(output, read, answer.question)
        if answer.evidence is None:
            return answer.refuse("unsupported")
        answer.answer = output

    def off_topic(self, gate_hits: list[Hit]) -> bool:
        """The relevance gate (`low_score`): no passage of these papers is close to the question."""
        return gate_score(gate_hits) < self.settings.min_score

    def _matching(self, gate_hits: list[Hit], terms, question: str):
        """The best `top_k` of the gate's papers that mention every alloy, property and value
        the question names, and the best paper's match (it says what is missing)."""
        abstracts = self.retriever.reader.papers([hit.paper.id for hit in gate_hits])
        matches = [match_question(question, abstracts[h.paper.id].abstract or "", terms)
                   for h in gate_hits]
        chosen = [hit for hit, match in zip(gate_hits, matches) if match.ok]
        return chosen[: self.settings.top_k], (matches[0] if matches else None)

    def _evidence(self, output: str, read: dict[int | None, str],
                  question: str) -> Evidence | None:
        """The span of a text the model read that holds `output`, in its paper's abstract."""
        for paper_id, text in read.items():
            support = find_support(output, text, question)
            if not support.supported:
                continue
            if paper_id is None:
                span = support.span
                return Evidence(None, None, span.start, span.end, span.text)
            return self._paper_evidence(paper_id, support.span.text)
        return None

    def _paper_evidence(self, paper_id: int, sentence: str) -> Evidence:
        paper = self.retriever.reader.papers([paper_id])[paper_id]
        start, end = locate(paper.abstract or "", sentence)
        if start < 0:  # passages are sentences of the abstract: this would be a bug upstream
            return Evidence(paper_id, paper.doi, -1, -1, sentence)
        return Evidence(paper_id, paper.doi, start, end, paper.abstract[start:end])

    def _retrieve(self, question: str) -> list[Hit]:
        if self.retriever is None:
            raise ValueError("asking without --context needs an index")
        return self.retriever.search(question, k=self._search_k)

    @property
    def _search_k(self) -> int:
        return max(self.settings.top_k, GATE_HITS)

    def prompt_for(self, question: str, context: str | None, hits: list[Hit]):
        """The prompt for `question` over `context` or the hit papers; the sources it cites
        (each hit paper with a passage in the prompt, showing its most relevant one); and what
        the model reads of each paper (paper id, or None for `context` -> text)."""
        count = self.generator.count_tokens
        budget = prompt_budget(self.settings, self.generator.window, count(question))
        if context is not None:
            passages = [(0, sentence) for sentence in split_sentences(context)]
            prompt, used = fit_prompt(question, passages, count, budget)
            return prompt, [], {None: context} if used else {}
        papers = [hit.paper.id for hit in hits]
        packed = pack_papers(self.retriever, question, papers, count, budget)
        shown = {}
        for paper_id, text in packed.by_relevance:
            shown.setdefault(paper_id, text)
        read: dict[int | None, str] = {}
        for paper_id, text in packed.in_reading_order:
            read[paper_id] = f"{read[paper_id]} {text}" if paper_id in read else text
        sources = [source_of(hit, shown[hit.paper.id]) for hit in hits if hit.paper.id in shown]
        return packed.prompt, sources, read


def prompt_budget(settings: AskSettings, window: int, question_tokens: int) -> int:
    """Most prompt tokens: the context cap plus the question frame, within the window less the
    answer. `finetune` packs its training prompts with the same budget."""
    return min(window - settings.max_new_tokens, settings.context_tokens + question_tokens + 8)


def gate_score(hits: list[Hit]) -> float:
    """What abstention compares with --min-score: the cosine of the closest passage of any of
    these papers (scripts/calibrate_abstention.py calibrates exactly this)."""
    return max((hit.best_dense or 0.0 for hit in hits), default=0.0)


@dataclass(frozen=True)
class Packed:
    prompt: str
    by_relevance: list[tuple[int, str]]  # (paper id, passage) pairs in the prompt, best first
    in_reading_order: list[tuple[int, str]]  # the same pairs as the prompt prints them


def pack_papers(retriever: Retriever, question: str, paper_ids: list[int],
                count_tokens: TokenCounter, budget: int) -> Packed:
    """The prompt over these papers (best first) and the passages it holds.
    `ask` and `finetune` both build their contexts with this.

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
    return Packed(prompt, [p for p in by_relevance if p in chosen],
                  [p for p in in_reading_order if p in chosen])


def locate(text: str, sentence: str) -> tuple[int, int]:
    """(start, end) of `sentence` in `text`, whitespace runs matching any whitespace; (-1, -1)
    when it is not there."""
    import re

    pattern = r"\s+".join(re.escape(word) for word in sentence.split())
    match = re.search(pattern, text) if pattern else None
    return (match.start(), match.end()) if match else (-1, -1)


def source_of(hit: Hit, text: str) -> Source:
    return Source(rank=hit.rank, paper_id=hit.paper.id, doi=hit.paper.doi, title=hit.paper.title,
                  year=hit.paper.year, score=round(hit.score, 4), text=text, file=hit.paper.file)


def default_adapter(index_dir: Path, model: str | None = None) -> Path | None:
    """The adapter `ask` uses when none is named: the one stored with the index (where
    `finetune` puts it by default), else the one shipped in the package for `model`."""
    for candidate in (Path(index_dir) / ADAPTER_DIRNAME, shipped_adapter(model)):
        if candidate is not None and (candidate / "adapter_config.json").exists():
            return candidate
    return None


def shipped_adapter(model: str | None) -> Path | None:
    """The adapter trained for an embedded model and shipped with hea-rag
    (scripts/build_default_adapter.sh), if `model` is one."""
    from hea_rag.generator import PRESETS

    if model not in PRESETS:
        return None
    return Path(__file__).resolve().parent / "adapters" / model


@contextmanager
def open_answerer(index_dir: Path, model: str, adapter: str | None, use_adapter: bool,
                  quantize: str | None, settings: AskSettings, need_retrieval: bool,
                  on_stage: Stage | None = None):
    """An Answerer with its models loaded once, for one question or a whole batch.
    `on_stage` hears each slow step (loading, retrieving, generating) as it starts."""
    from hea_rag.generator import load_generator
    from hea_rag.retrieve import open_retriever

    on_stage = on_stage or (lambda stage: None)
    chosen = (adapter or default_adapter(index_dir, model)) if use_adapter else None
    on_stage(f"loading {model}" + (f" with adapter {chosen}" if chosen else ""))
    generator = load_generator(model, chosen, quantize)
    if not need_retrieval:
        yield Answerer(generator, None, settings, on_stage)
        return
    on_stage(f"loading the index {index_dir} and its embedder")
    with open_retriever(index_dir) as retriever:
        yield Answerer(generator, retriever, settings, on_stage)
