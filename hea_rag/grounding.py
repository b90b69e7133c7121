"""Turn QA pairs into training prompts that look like what `ask` sends the model.

Context modes:
- `given`: the pair's own context field (the upstream file's is NER pseudo-JSON, not prose);
- `abstract`: the indexed abstract holding the answer (and the alloy the question names), packed
  as `ask` packs its best paper: at `ask`'s default `-k 1` this is what `ask` sends whenever
  retrieval finds the right paper, so no separate "retrieved" mode is needed.

Negatives (taught abstention, `abstract` mode): for a share of the pairs, the same question is
also asked of a similar paper that does not hold the answer, with prompt.REFUSAL as the target.
The paper is the best retrieved one that `ask`'s own question gate would let through (it names
the question's alloy, property and values), so the model learns to refuse exactly where the gate
cannot; failing that, the best retrieved paper without the answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from hea_rag.answer import pack_papers
from hea_rag.errors import InputError
from hea_rag.evaluate import normalize_answer
from hea_rag.lexical import tokenize
from hea_rag.evidence import match_question
from hea_rag.prompt import REFUSAL, fit_prompt
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
                 retriever=None, negative_rate: float = 0.0, seed: int = 0):
        """`budget_for(question)` gives the most prompt tokens, as `ask` computes it;
        `negative_rate` the share of pairs that also get a negative example."""
        if mode != "given" and retriever is None:
            raise ValueError(f"context mode {mode!r} needs an index")
        self.mode, self.count_tokens, self.budget_for = mode, count_tokens, budget_for
        self.retriever = retriever
        self.negative_rate, self.seed = negative_rate, seed

    def examples(self, pair: QAPair) -> list[Example]:
        """The pair's training example, and its negative when the pair is drawn for one."""
        positive = self.ground(pair)
        if positive is None:
            return []
        if self.mode == "given" or not self._draws_negative(pair):
            return [positive]
        negative = self.negative(pair, int(positive.group.split(":")[1]))
        return [positive] + ([negative] if negative else [])

    def _draws_negative(self, pair: QAPair) -> bool:
        """A fixed draw per pair (not per position in the file), so data order changes nothing."""
        key = f"{self.seed}:{pair.question}:{pair.answer}".encode("utf-8")
        return int(hashlib.sha1(key).hexdigest()[:8], 16) / 0xFFFFFFFF < self.negative_rate

    def negative(self, pair: QAPair, gold: int) -> Example | None:
        """The question over a similar retrieved paper that does not hold its answer."""
        hits = [hit for hit in self.retriever.search(pair.question, k=SEARCH_DEPTH)
                if hit.paper.id != gold]
        abstracts = self.retriever.reader.papers([hit.paper.id for hit in hits])
        without = [h.paper.id for h in hits
                   if not _contains(abstracts[h.paper.id].abstract or "", pair.answer)]
        passing = [p for p in without
                   if match_question(pair.question, abstracts[p].abstract or "").ok]
        chosen = (passing or without or [None])[0]
        if chosen is None:
            return None
        prompt = pack_papers(self.retriever, pair.question, [chosen], self.count_tokens,
                             self.budget_for(pair.question)).prompt
        return Example(prompt, REFUSAL, f"paper:{gold}", pair.split)

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
        prompt = pack_papers(self.retriever, pair.question, [paper], self.count_tokens,
                             self.budget_for(pair.question)).prompt
        if not _contains(prompt, pair.answer):
            return None  # the answer did not fit in the window: nothing to learn from
        return Example(prompt, pair.answer, f"paper:{paper}", pair.split)

    def gold_paper(self, pair: QAPair) -> int | None:
        """The indexed paper whose abstract holds the answer: the one the pair names (none if that
        paper is not indexed), else the first searched one that holds it."""
        reader = self.retriever.reader
        if pair.doi or pair.abstract_sha1:  # a pair that names its paper is grounded there only
            named = reader.find_paper(pair.doi, pair.abstract_sha1)
            return named if named is not None and self._holds(named, pair) else None
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


# Prepared examples: grounding needs the index and its embedder; training needs only the prompts.
# Written by `finetune --save-examples`, read back as a QA file, so the two can run on different
# machines (ground where the index is, train where the GPU is).
def write_examples(path: Path, examples: list[Example], model_name: str,
                   negative_rate: float) -> None:
    """One JSON object per example, atomically (a reader never sees half a file). Each row
    records the model it was cut for and the negative rate drawn, which training must match."""
    staging = path.with_name(f".{path.name}.partial")
    made_with = {"model": model_name, "negative_rate": negative_rate}
    with staging.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps({**asdict(example), **made_with}, ensure_ascii=False) + "\n")
    staging.replace(path)


def is_prepared(path: Path) -> bool:
    """Whether `path` holds prepared examples (a `prompt` per row) rather than QA pairs."""
    if path.suffix.lower() != ".jsonl":
        return False
    with path.open(encoding="utf-8") as lines:
        first = next((line for line in lines if line.strip()), "")
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and "prompt" in row and "question" not in row


def read_examples(path: Path, model_name: str, negative_rate: float) -> list[Example]:
    """The examples of a prepared file. They must have been cut for `model_name` (its tokenizer
    and context window set the prompt length) and drawn at `negative_rate`, so that the adapter
    card's rate is the one trained."""
    examples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                example = Example(str(row["prompt"]), str(row["answer"]), str(row["group"]),
                                  row.get("split"))
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise InputError(f"{path}, row {number}", "not a prepared example "
                                 f"({type(error).__name__}: {error})") from None
            if row.get("model") != model_name:
                raise InputError(f"{path}, row {number}", f"prepared for --model {row.get('model')}, "
                                 f"not {model_name}: prepare it again for this model")
            if row.get("negative_rate") != negative_rate:
                raise InputError(f"{path}, row {number}", f"prepared with --negatives "
                                 f"{row.get('negative_rate')}: pass the same to train it")
            examples.append(example)
    return examples
