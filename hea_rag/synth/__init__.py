"""`hea-rag synth`: question-answer pairs made from the indexed abstracts themselves, for
`hea-rag finetune`, so an adapter learns the questions people ask about any paper indexed, not only
the templates of the upstream data.

    hea-rag synth -o synth.jsonl --papers exclude:scripts/data/natural_heldout.jsonl
    hea-rag finetune synth.jsonl --model smollm2-135m

Each paper's statements (values, phases, causes, comparisons, elements: `values.py`,
`statements.py`) become questions in several phrasings (`phrasing.py`). Every answer is a span of
the abstract as indexed, kept with its offsets; a question that contains its answer, that `ask`'s
question gate would refuse for its own paper, or that the paper answers two ways, is dropped.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass

from hea_rag.evidence import match_question
from hea_rag.synth.phrasing import questions
from hea_rag.synth.reading import Fact, read_paper
from hea_rag.synth.statements import statement_facts
from hea_rag.synth.values import value_facts

KINDS = ("value", "phase", "mechanism", "comparison", "element")
DEFAULT_PER_PAPER = 12
PHRASINGS_PER_FACT = 6


@dataclass(frozen=True)
class Pair:
    question: str
    answer: str
    kind: str
    start: int
    end: int


def synthesize(abstract: str, per_paper: int = DEFAULT_PER_PAPER, seed: int = 0) -> list[Pair]:
    """Up to `per_paper` pairs from one abstract: the facts taken in turn across kinds, one
    phrasing of each before a second of any, so a small budget still covers the whole paper."""
    paper = read_paper(abstract)
    rng = random.Random(f"{seed}:{abstract_sha1(abstract)}")
    facts = [*value_facts(paper), *statement_facts(paper)]
    facts = _interleaved(_unambiguous_facts(list(dict.fromkeys(facts)), abstract))
    asked = [[Pair(q, answer, f.kind, f.start, f.end)
              for q in questions(f, paper, rng, PHRASINGS_PER_FACT) if fair(q, answer, abstract)]
             for f, answer in ((f, abstract[f.start:f.end]) for f in facts)]
    asked = _unambiguous(asked)
    chosen: list[Pair] = []
    for turn in range(max(map(len, asked), default=0)):
        chosen += [pairs[turn] for pairs in asked if turn < len(pairs)]
    for pair in chosen:
        assert abstract[pair.start:pair.end] == pair.answer, pair  # verbatim, always
    return chosen[:per_paper]


def _unambiguous_facts(facts: list[Fact], text: str) -> list[Fact]:
    """Without facts that another fact of the paper would answer differently: the same alloy,
    property and condition with two values, or one of them with no condition at all."""
    answers: dict[tuple, set[str]] = {}
    for fact in facts:
        for key in (_key(fact), _key(fact, condition=False)):
            answers.setdefault(key, set()).add(text[fact.start:fact.end])
    return [f for f in facts if len(answers[_key(f)]) == 1
            and (f.condition or len(answers[_key(f, condition=False)]) == 1)]


def _key(fact: Fact, condition: bool = True) -> tuple:
    alloy = fact.alloy.key if fact.alloy else None
    return (fact.kind, fact.form, alloy, (fact.prop or "").lower(), fact.subject,
            fact.comparative, fact.given, fact.condition if condition else "*")


def _interleaved(facts: list[Fact]) -> list[Fact]:
    """Facts in reading order within each kind, the kinds taking turns."""
    by_kind = [[f for f in facts if f.kind == kind] for kind in KINDS]
    ordered = []
    for turn in range(max(map(len, by_kind), default=0)):
        ordered += [facts[turn] for facts in by_kind if turn < len(facts)]
    return ordered


def fair(question: str, answer: str, abstract: str) -> bool:
    """The question does not give its answer away, and `ask` would let it through for its paper."""
    return not contains_answer(question, answer) and match_question(question, abstract).ok


def contains_answer(question: str, answer: str) -> bool:
    """Whether the answer appears in the question as whole words, ignoring case and spacing
    (`Ti` inside the formula `TaNbTiZr` names an alloy, not the answer)."""
    squeeze = lambda text: " ".join(text.lower().split())  # noqa: E731
    pattern = rf"(?<![\w.]){re.escape(squeeze(answer))}(?![\w])"
    return re.search(pattern, squeeze(question)) is not None


def _unambiguous(asked: list[list[Pair]]) -> list[list[Pair]]:
    """Without the questions this paper answers with two different spans."""
    answers: dict[str, set[str]] = {}
    for pairs in asked:
        for pair in pairs:
            answers.setdefault(pair.question, set()).add(pair.answer)
    seen: set[str] = set()
    kept = []
    for pairs in asked:
        fresh = [p for p in pairs if len(answers[p.question]) == 1 and p.question not in seen]
        seen.update(p.question for p in fresh)
        kept.append(fresh)
    return [pairs for pairs in kept if pairs]


def abstract_sha1(text: str) -> str:
    """dev_qa's paper key: sha1 of the abstract with whitespace runs collapsed, stripped."""
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()


def split_of(key: str, heldout_fraction: float) -> str | None:
    """A fixed draw per paper: "heldout" for `heldout_fraction` of the papers, else "train";
    None when nothing is held out (finetune then makes its own split)."""
    if heldout_fraction <= 0:
        return None
    draw = int(hashlib.sha1(f"synth-split:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "heldout" if draw < heldout_fraction else "train"


def count_kinds(records) -> Counter:
    return Counter(record["kind"] for record in records)
