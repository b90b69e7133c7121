"""Turn QA pairs into training prompts that look like what `ask` sends the model.

Context modes:
- `given`: the pair's own context field (the upstream file's is NER pseudo-JSON, not prose);
- `abstract`: the indexed abstract holding the answer (and the alloy the question names), packed
  as `ask` packs its best paper: at `ask`'s default `-k 1` this is what `ask` sends whenever
  retrieval finds the right paper, so no separate "retrieved" mode is needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hea_rag.answer import pack_papers
from hea_rag.evaluate import normalize_answer
from hea_rag.lexical import tokenize
from hea_rag.prompt import fit_prompt
from hea_rag.qa_data import QAPair

ContextMode = Literal["given", "abstract"]
SEARCH_DEPTH = 10  # hits examined when grounding a pair that names no paper


@dataclass(frozen=True)
class Example:
    prompt: str
    answer: str
    group: str  # the paper (or context) it comes from: the unit of the train/eval split
    split: str | None


class Grounder:
    def __init__(self, mode: ContextMode, count_tokens, budget_for: Callable[[str], int],
                 retriever=None):
        """`budget_for(question)` gives the most prompt tokens, as `ask` computes it."""
        if mode != "given" and retriever is None:
            raise ValueError(f"context mode {mode!r} needs an index")
        self.mode, self.count_tokens, self.budget_for = mode, count_tokens, budget_for
        self.retriever = retriever

    def ground(self, pair: QAPair) -> Example | None:
        """The training example for `pair`, or None when it cannot be grounded."""
        if self.mode == "given":
            if not pair.context:
                return None
            prompt, _ = fit_prompt(pair.question, [(0, pair.context)], self.count_tokens,
                                   self.budget_for(pair.question))
            return Example(prompt, pair.answer, f"context:{_digest(pair.context)}", pair.split)
        paper = self.gold_paper(pair)
        if paper is None:
            return None
        prompt, _ = pack_papers(self.retriever, pair.question, [paper], self.count_tokens,
                                self.budget_for(pair.question))
        if not _contains(prompt, pair.answer):
            return None  # the answer did not fit in the window: nothing to learn from
        return Example(prompt, pair.answer, f"paper:{paper}", pair.split)

    def gold_paper(self, pair: QAPair) -> int | None:
        """The indexed paper whose abstract holds the answer: named by the pair, else searched."""
        reader = self.retriever.reader
        named = reader.find_paper(pair.doi, pair.abstract_sha1)
        if named is not None:
            return named if self._holds(named, pair) else None
        for hit in self.retriever.search(pair.question, k=SEARCH_DEPTH, mode="lexical"):
            if self._holds(hit.paper.id, pair):
                return hit.paper.id
        return None

    def _holds(self, paper_id: int, pair: QAPair) -> bool:
        abstract = self.retriever.reader.papers([paper_id])[paper_id].abstract
        if not _contains(abstract, pair.answer):
            return False
        alloys = {t for t in tokenize(pair.question) if t.startswith("sys_")}
        return not alloys or bool(alloys & set(tokenize(abstract)))


def _contains(text: str, answer: str) -> bool:
    """Whether `text` states `answer`, ignoring case, commas and spacing ("15.92 %" = "15.92%")."""
    compact = lambda value: "".join(normalize_answer(value).split())  # noqa: E731
    return compact(answer) in compact(text)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
