"""Trust gates: does a paper speak of what the question asks (checked before generating), and does
the text the model read hold what it answered (checked after).

An in-domain question always finds a paper with a high cosine, so relevance alone cannot tell
"the papers report this" from "the papers report something near this". Two checks can:

- question -> evidence: every alloy the question names (by its order-free element key, so
  `CoCrFeNiAl0.3` meets `Al0.3CoCrFeNi`), every property it names (`properties.py`: a vocabulary
  of property names and the words a paper uses for them) and every number it pins down
  (`at 1500 °C`) must appear in the paper;
- answer -> evidence: every number of the answer, and its key words, must appear in one sentence
  (or two adjacent ones) of the text the model read. That sentence is the answer's evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from hea_rag.chunking import split_sentences
from hea_rag.lexical import STOPWORDS, UNITS, normalize, parse_formula, strip_edges, tokenize
from hea_rag.properties import properties_in

# the 0.3 of Al0.3 counts as a number too: an answer "x = 0.3" is supported by "Al0.3CoCrFeNi"
_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?![\d])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_WORD = re.compile(r"[^\W\d_][\w.\-]*")
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2009\u202f\u2002\u2003\u200a"), " ")
# a number in the question is a condition it pins down unless it belongs to a formula (`Al0.3`)
# or a symbol (`σ0.2`, `HV0.5`): any letter, not only a Latin one, before it
_FORMULA_NUMBER = re.compile(r"(?:[^\W\d]|\))\d")
_ASKS_CONDITION = re.compile(r"\btemperature|\bhow long\b|\bduration\b|\bwhen\b", re.IGNORECASE)
_CONDITION = re.compile(r"°C|\d\s*K\b|room[- ]temperature|\d\s*(?:h|min|s)\b|hours?\b",
                        re.IGNORECASE)
_EXPONENT = re.compile(r"\de[+-]?$", re.IGNORECASE)
# answers this long are explanations: their key words need only mostly appear
SHORT_ANSWER_WORDS = 12
LONG_ANSWER_WORD_SHARE = 0.7


def normalize_evidence(text: str) -> str:
    """Spellings that differ only in typography read alike: unicode minus and dashes, `∼`/`~`,
    thin and no-break spaces, `15.92 %` = `15.92%`, thousands commas (`1,200` = `1200`)."""
    text = normalize(text.translate(_SPACES)).replace("∼", "~").replace("〜", "~")
    text = re.sub(r"(?<=\d)\s+(?=%)", "", text)
    return _THOUSANDS.sub("", text)


def numbers_in(text: str) -> set[Decimal]:
    """The numbers written in `text`, as signed values (`0.50` = `0.5`, `−20` != `20`)."""
    text = normalize_evidence(text)
    return {value for match in _NUMBER.finditer(text) if (value := _value(text, match)) is not None}


def _value(text: str, match: re.Match) -> Decimal | None:
    """The number of `match`, negative when a minus sign stands right before it and nothing
    joins it to a word or number before that (`-196 °C`, `(−20`; not `600-800`, `Hf40-x`)."""
    try:
        value = Decimal(match.group()).normalize()
    except InvalidOperation:
        return None
    start = match.start()
    signed = start > 0 and text[start - 1] == "-" and (
        start == 1 or not (text[start - 2].isalnum() or text[start - 2] in ".)]%°"))
    return -value if signed else value


@dataclass(frozen=True)
class QuestionTerms:
    """What a question pins down: alloys (element key -> as written), properties, numbers."""

    alloys: dict[str, str]
    properties: tuple[str, ...]
    numbers: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.alloys or self.properties or self.numbers)


def question_terms(question: str) -> QuestionTerms:
    return QuestionTerms(alloys_in(question), tuple(properties_in(question)),
                         tuple(_condition_numbers(question)))


def alloys_in(text: str) -> dict[str, str]:
    """The alloys `text` names: element key (`sys_...`) -> the first spelling, in order."""
    alloys: dict[str, str] = {}
    for word in normalize_evidence(text).split():
        keys = [t for t in tokenize(word) if t.startswith("sys_")]
        if keys and len(keys[0]) > len("sys_") + 2:  # two elements at least: `Al` alone is no alloy
            alloys.setdefault(keys[0], _alloy_name(word))
    return alloys


def _alloy_name(word: str) -> str:
    """`word` without the punctuation around it; a group keeps its brackets (`(FeCoNi)86Al7Ti7`)."""
    return strip_edges(word.strip(".,;:?!'\"[]"))


def _condition_numbers(question: str) -> list[str]:
    """Numbers of the question outside formulas (`Al0.3`) and exponents (`4.11e+22`: the
    mantissa stays, since papers print the power as `× 10^22` or in superscript)."""
    text = normalize_evidence(question)
    return [f"{_value(text, m):f}" for m in _NUMBER.finditer(text)
            if not _FORMULA_NUMBER.match(text[max(0, m.start() - 1): m.start() + 1])
            and not _EXPONENT.search(text[: m.start()])]


@dataclass(frozen=True)
class QuestionMatch:
    ok: bool
    missing: tuple[str, ...] = ()  # what the paper never mentions, in words

    def describe(self) -> str:
        return ", ".join(self.missing)


def match_question(question: str, paper_text: str,
                   terms: QuestionTerms | None = None) -> QuestionMatch:
    """Whether `paper_text` mentions every alloy, property and number `question` pins down."""
    terms = terms or question_terms(question)
    if terms.empty:
        return QuestionMatch(True)
    tokens = set(tokenize(paper_text))
    missing = [f"the alloy {name}" for key, name in terms.alloys.items() if key not in tokens]
    missing += [f"the {name}" for name in properties_missing(terms.properties, paper_text)]
    values = numbers_in(paper_text)
    missing += [f"the value {n}" for n in terms.numbers if Decimal(n).normalize() not in values]
    return QuestionMatch(not missing, tuple(missing))


def properties_missing(names: tuple[str, ...], paper_text: str) -> list[str]:
    from hea_rag.properties import mentions

    return [name for name in names if not mentions(name, paper_text)]


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Support:
    """Whether an answer is held by the text, and the span that holds it."""

    supported: bool
    span: Span | None = None
    missing: tuple[str, ...] = ()


def find_support(answer: str, source: str, question: str = "") -> Support:
    """The sentence (or two adjacent sentences) of `source` holding every number of `answer` and
    its key words (all of them for a short answer, most for a long one), with its offsets.
    Words the answer repeats from `question` ("The measurement temperature ... was 600 °C")
    claim nothing and need no support; its numbers always do. The span must also name every
    property the question asks for: a value printed beside another property (the specific
    yield strength, asked the compressive strength) answers another question."""
    numbers = numbers_in(answer)
    asked = normalize_evidence(question).lower()
    tokens = set(tokenize(question))
    every_word = _key_words(answer)
    words = [w for w in every_word if not (asked and _word_held(w, asked, tokens))]
    if not numbers and not words:  # an answer picked from the question ("BCC or FCC?" "BCC")
        words = every_word
    if not numbers and not words:
        return Support(False, missing=("an answer",))
    spans = _sentence_spans(source)
    windows = [(s, [s]) for s in spans] + [
        (Span(a.start, b.end, source[a.start:b.end]), [a, b]) for a, b in zip(spans, spans[1:])]
    best, best_missing = None, None
    asked_properties = () if _asks_condition(question, answer) else tuple(properties_in(question))
    wrong_unit = unit_mismatch(answer, asked_properties)
    if wrong_unit:
        return Support(False, missing=(wrong_unit,))
    for window, sentences in windows:
        missing = _missing_from(window.text, numbers, words)
        lacking = properties_missing(asked_properties, _stating(sentences, numbers))
        if best_missing is None or len(missing) + len(lacking) < len(best_missing):
            best, best_missing = window, missing + [f"the {name}" for name in lacking]
        if not lacking and not _fails(missing, numbers, words):
            return Support(True, window)
    return Support(False, best, tuple(f"{m:f}" if isinstance(m, Decimal) else m
                                      for m in best_missing or ()))


def unit_mismatch(answer: str, asked: tuple[str, ...]) -> str | None:
    """Why the answer's unit cannot measure what was asked (`295 kPa·m3·kg−1` is a specific
    strength, not a yield strength), or None when it can or nothing is known."""
    from hea_rag.properties import UNIT_CLASSES_OF
    from hea_rag.synth.patterns import UNIT, UNIT_NAMES

    found = {UNIT_NAMES[int(m.lastgroup[1:])] for m in UNIT.finditer(answer)}
    expected = [UNIT_CLASSES_OF[name] for name in asked if name in UNIT_CLASSES_OF]
    if "specific strength" in asked:  # its qualifier decides: MPa would be the plain strength
        expected = [UNIT_CLASSES_OF["specific strength"]]
    accepted = set().union(*expected) if expected else set()
    if not found or not accepted or found & accepted:
        return None
    return f"a value in {', '.join(sorted(found))} units for {', '.join(asked)}"


def _asks_condition(question: str, answer: str) -> bool:
    """A question that gives a property's value and asks when it was measured ("At what
    temperature is the strength of 2550 MPa measured?"): its answer is a condition, which
    abstracts often print sentences away from the property."""
    return bool(_ASKS_CONDITION.search(question) and _CONDITION.search(normalize_evidence(answer)))


def _stating(sentences: list[Span], numbers: set[Decimal]) -> str:
    """The text of the sentences that print the answer's numbers (all of them, if it has none):
    where the property asked for must be named."""
    holding = [s.text for s in sentences if numbers & numbers_in(s.text)]
    return " ".join(holding or [s.text for s in sentences])


def _fails(missing: list, numbers: set, words: list[str]) -> bool:
    if any(isinstance(m, Decimal) for m in missing):
        return True  # a number the text does not hold is never printed
    lost = len(missing)
    if len(words) <= SHORT_ANSWER_WORDS:
        return lost > 0
    return lost > (1 - LONG_ANSWER_WORD_SHARE) * len(words)


def _missing_from(text: str, numbers: set[Decimal], words: list[str]) -> list:
    held = numbers_in(text)
    lowered = normalize_evidence(text).lower()
    tokens = set(tokenize(text))
    missing: list = sorted(numbers - held)
    missing += [w for w in words if not _word_held(w, lowered, tokens)]
    return missing


def _key_words(answer: str) -> list[str]:
    words = []
    for word in _WORD.findall(normalize_evidence(answer)):
        word = word.strip(".-")
        lower = word.lower()
        if len(lower) < 2 or lower in STOPWORDS or lower in UNITS:
            continue
        words.append(word)
    return words


def _word_held(word: str, lowered_text: str, text_tokens: set[str]) -> bool:
    """A formula is held by any spelling with the same composition (or element set, when it has
    no composition); a word by itself or a form sharing its first six letters (precipitate(s))."""
    formula = parse_formula(word) if len(word) > 2 else None
    if formula is not None and len(formula.moles) > 1:
        keys = [t for t in tokenize(word) if t.startswith(("cmp_", "sys_"))]
        return any(key in text_tokens for key in keys if key.startswith("cmp_")) or (
            not any(k.startswith("cmp_") for k in keys) and any(k in text_tokens for k in keys))
    lower = word.lower()
    stem = lower[:6] if len(lower) > 6 else lower
    return re.search(rf"(?<![^\W\d_]){re.escape(stem)}", lowered_text) is not None


def _sentence_spans(source: str) -> list[Span]:
    """The sentences of `source` with their offsets in it (found in order, so repeats map right)."""
    spans, cursor = [], 0
    for sentence in split_sentences(source):
        start = source.find(sentence, cursor)
        if start == -1:
            start = _loose_find(source, sentence, cursor)
        if start == -1:
            continue
        end = start + len(sentence) if source.startswith(sentence, start) else _loose_end(
            source, sentence, start)
        spans.append(Span(start, end, source[start:end]))
        cursor = end
    return spans or [Span(0, len(source), source)]


def _loose_pattern(sentence: str) -> re.Pattern:
    return re.compile(r"\s+".join(re.escape(word) for word in sentence.split()))


def _loose_find(source: str, sentence: str, cursor: int) -> int:
    match = _loose_pattern(sentence).search(source, cursor)
    return match.start() if match else -1


def _loose_end(source: str, sentence: str, start: int) -> int:
    match = _loose_pattern(sentence).match(source, start)
    return match.end() if match else start + len(sentence)
