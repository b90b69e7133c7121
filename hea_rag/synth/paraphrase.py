"""`synth --paraphraser MODEL`: the templated questions rewritten by a causal LM, so training sees
phrasings no template has. A language model drifts (answers the question, drops the alloy, swaps
the property or what is asked), so a paraphrase is kept only when it still asks the same thing:
a question; the same alloys, properties and condition values as the original
(evidence.question_terms); the same kind of question (what/which, why, how does...); the words
that say what is asked ("at what *sintering temperature*"); no answer given away; and a pass
through `ask`'s question gate for its paper.

The prompt is a few-shot completion rather than a chat instruction: asked in chat, SmolLM2-135M
mostly answered the questions instead of rewriting them (scripts/bench_synth.py --paraphrase
measures the share kept).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hea_rag.evidence import question_terms

FEW_SHOT = (
    "Rewrite each question in other words, keeping alloy names, numbers and units.\n"
    "Question: What is the Vickers hardness of the AlCoCrFeNi coating?\n"
    "Rewrite: How hard is the AlCoCrFeNi coating on the Vickers scale?\n"
    "Question: Which phase forms in CoCrFeNiMn after annealing at 900 °C?\n"
    "Rewrite: After annealing at 900 °C, what phase appears in CoCrFeNiMn?\n"
    "Question: What causes the high strength of the TiZrNbHf alloy?\n"
    "Rewrite: Why is the TiZrNbHf alloy so strong?\n"
    "Question: {question}\nRewrite:")
MAX_NEW_TOKENS = 48
# words that frame a question without saying what it asks for
_FRAMING = frozenset("""a an the of for at in on to by with from and or is are was were be been
does do did can could what which how why when where who tell me give value values reported given
obtained measured found shown""".split())
_MANNER_VERBS = frozenset("does do did is are was were can could".split())


@dataclass
class ParaphraseCount:
    tried: int = 0
    kept: int = 0


class Paraphraser:
    """Rewrites questions with `generate(prompt) -> text` and keeps the faithful rewrites."""

    def __init__(self, generate: Callable[[str], str]):
        self.generate = generate
        self.count = ParaphraseCount()

    def rewrite(self, question: str, fair: Callable[[str], bool]) -> str | None:
        """A faithful paraphrase of `question`, or None. `fair(q)`: q gives no answer away and
        passes the question gate for the pair's paper."""
        self.count.tried += 1
        candidate = first_question(self.generate(FEW_SHOT.format(question=question)))
        if candidate is None or not keeps_meaning(question, candidate) or not fair(candidate):
            return None
        self.count.kept += 1
        return candidate


def first_question(output: str) -> str | None:
    """The model's first line, when it is a question (quotes and a label removed)."""
    line = (output.strip().splitlines() or [""])[0]
    line = re.sub(r"^\s*(rewrite|question)\s*:\s*", "", line, flags=re.I).strip().strip("\"'“”")
    return line if line.endswith("?") and len(line.split()) >= 4 else None


def keeps_meaning(original: str, paraphrase: str) -> bool:
    """Same alloys, properties and condition values; not the original with its spacing changed."""
    if " ".join(original.lower().split()) == " ".join(paraphrase.lower().split()):
        return False
    before, after = question_terms(original), question_terms(paraphrase)
    return (set(before.alloys) <= set(after.alloys)
            and set(before.properties) <= set(after.properties)
            and set(before.numbers) <= set(after.numbers)
            and question_kind(original) == question_kind(paraphrase)
            and all(_has_word(paraphrase, word) for word in asked_words(original)))


def question_kind(question: str) -> str:
    """why, how-verb ("how does X compare") or what (what/which/how much/a bare noun phrase)."""
    words = re.findall(r"[a-z]+", question.lower())
    for at, word in enumerate(words):
        if word == "why":
            return "why"
        if word == "how":
            following = words[at + 1] if at + 1 < len(words) else ""
            return "how-verb" if following in _MANNER_VERBS else "what"
        if word in ("what", "which"):
            return "what"
    return "what"


def asked_words(question: str) -> list[str]:
    """Content words among the first four, alloys aside: what the question asks for ("at what
    sintering temperature" -> sintering, temperature)."""
    head = [w for w in question.split()[:4] if not question_terms(w).alloys]
    words = [re.sub(r"[^A-Za-z]", "", w).lower() for w in head]
    return [w for w in words if w and w not in _FRAMING]


def _has_word(text: str, word: str) -> bool:
    """`word` in `text`, by its first six letters (compression ~ compressive; alloyed is no
    alloy)."""
    stem = word[:6]
    return any(w.startswith(stem) for w in re.findall(r"[a-z]+", text.lower()))


def load_paraphraser(model_name: str) -> Paraphraser:
    """A Paraphraser over `model_name`: a preset such as smollm2-135m, a hub id or a folder."""
    from hea_rag.generator import load_generator

    generator = load_generator(model_name)
    return Paraphraser(
        lambda prompt: generator.generate(prompt, MAX_NEW_TOKENS, answer_rules=False))
