"""Value statements: a number with its unit, the property it measures, the alloy and the condition.

A value takes the property phrase right after it ("1311 MPa yield strength") or else the nearest
one before it in its sentence, and only when the unit fits the property (a percentage is no
density). Lists ("988 MPa, 1173 MPa, and 3.99%") are paired item by item with a list of the same
length before them: of properties, of temperatures, or of alloys; a list that pairs with nothing
is left out, since its values could not be told apart. List items printed without their own unit
("1730, 1088 and 312 MPa") are left out too: an answer is always a value with its unit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from hea_rag.synth import patterns
from hea_rag.synth.reading import (Fact, Mention, PaperText, Span, alloy_before, conditions_in,
                                   nearest, properties_in)

_LIST_GAP = re.compile(r"^\s*,?\s*(?:and\s+)?$")
_PROPERTY_LIST_GAP = re.compile(
    r"^[\s,]*(?:and\s+)?(?:(?:a|an|the|high|good|low|excellent|its)\s+)*$")
_SKIP_AFTER = re.compile(rf"\s*(?:{patterns.COMPARATIVE}\s+than|of\b|improvement|increase|decrease"
                         r"|reduction|enhancement)", re.IGNORECASE)
_SKIP_BEFORE = re.compile(r"\b(?:by|to|from|of about|between)\s*$|[x×]\s*$")
_UNITLESS = re.compile(r"\b(?:of|is|was|were|=)\s*$")
_ALONE_AFTER = re.compile(r"\s*(?:[,;]|\.(?!\d)|\)|$|\s(?:and|with|while|in|at)\b)")
_HARDNESS_FIRST = re.compile(r"(?<![\w.])HV(?:\d+(?:\.\d+)?)?\s+\d+(?:\.\d+)?(?!\w|\.\d)")


@dataclass(frozen=True)
class Value:
    start: int  # the bound or approximation sign, when one is printed, is part of the answer
    end: int
    unit: str | None  # its class; None when printed without a unit


def value_facts(paper: PaperText) -> Iterator[Fact]:
    for sentence in paper.sentences:
        props = properties_in(paper, sentence)
        conditions = conditions_in(paper, sentence)
        # a comparison ("26 % lower than") or a change ("by 67 %") lists with no measured value
        values = [v for v in values_in(paper.text, sentence) if _answerable(paper.text, v)
                  or v.unit in (None, "time", "ratio")]
        for group in _lists(paper.text, values):
            if len(group) == 1:
                yield from _single(paper, sentence, group[0], props, conditions)
            else:
                yield from _paired(paper, sentence, group, props, conditions)


def values_in(text: str, span: Span) -> list[Value]:
    """Numbers of the span with the unit printed after them ("HV0.2 410" too)."""
    found = []
    for m in patterns.VALUE.finditer(text, span.start, span.end):
        unit = patterns.UNIT.match(text, m.end(), span.end)
        if unit:
            found.append(Value(m.start(), unit.end(), patterns.UNIT_NAMES[int(unit.lastgroup[1:])]))
        else:  # unitless: a coefficient stated on its own ("friction coefficient of 0.63")
            alone = (_UNITLESS.search(text[max(0, m.start() - 8):m.start()])
                     and _ALONE_AFTER.match(text, m.start("gap")))
            found.append(Value(m.start(), m.start("gap"), "none" if alone else None))
    for m in _HARDNESS_FIRST.finditer(text, span.start, span.end):
        found = [v for v in found if not m.start() <= v.start < m.end()]
        found.append(Value(m.start(), m.end(), "hardness"))
    return sorted(found, key=lambda v: v.start)


def _lists(text: str, values: list[Value]) -> list[list[Value]]:
    """Values joined only by commas and "and" form one list."""
    groups: list[list[Value]] = []
    for value in values:
        if groups and _LIST_GAP.match(text[groups[-1][-1].end:value.start]):
            groups[-1].append(value)
        else:
            groups.append([value])
    return groups


def _answerable(text: str, value: Value) -> bool:
    """A measured value: with a unit, not a condition, not a change ("by 67 %") nor a
    comparison ("26 % lower than"), nor a share of something ("20 % of a Laves phase")."""
    if value.unit in (None, "time", "ratio"):
        return False
    before = text[max(0, value.start - 12):value.start]
    return not (_SKIP_AFTER.match(text, value.end) or _SKIP_BEFORE.search(before))


def _fits(mention: Mention | None, value: Value) -> bool:
    """The unit fits the property; a bare "strain" or "stress" says too little to ask about."""
    return (mention is not None and value.unit in patterns.head_units(mention.head)
            and mention.text.lower() not in ("strain", "strains", "stress", "stresses"))


def _property_of(text: str, value: Value, props: list[Mention],
                 values: list[Value]) -> Mention | None:
    """The property right after the value, else the nearest before it, with no other value
    between them."""
    after = next((p for p in props if 0 <= p.start - value.end <= 2), None)
    if _fits(after, value):
        return after
    before = [p for p in props if p.end <= value.start and value.start - p.end <= 150]
    if not before or any(before[-1].end <= v.start < value.start and v.unit not in
                         (None, "none", "temperature", "time") for v in values):
        return None
    return before[-1] if _fits(before[-1], value) else None


def _single(paper: PaperText, sentence: Span, value: Value, props, conditions) -> list[Fact]:
    text = paper.text
    if not _answerable(text, value):
        return []
    prop = _property_of(text, value, props, values_in(text, sentence))
    return _facts(paper, sentence, value, prop, conditions) if prop else []


def _paired(paper: PaperText, sentence: Span, group: list[Value], props,
            conditions) -> Iterator[Fact]:
    """Each item of a list with the matching item of a property, temperature or alloy list."""
    text, n, first = paper.text, len(group), group[0].start
    prop_list = _property_list(text, [p for p in props if p.end <= first], n)
    temps = _temperature_list(text, sentence, first, n)
    alloys = [a for a in paper.alloys_in(sentence) if a.end <= first][-n:]
    shared = prop_list is None and _property_of(text, group[-1], props, group)
    for i, value in enumerate(group):
        if not _answerable(text, value):
            continue
        if prop_list is not None and _fits(prop_list[i], value):
            yield from _facts(paper, sentence, value, prop_list[i], conditions)
        elif not _fits(shared or None, value):
            continue
        elif temps:
            yield Fact("value", value.start, value.end, alloy_before(paper, sentence, first),
                       _singular(shared.text), value.unit, f"at {temps[i]}")
        elif len({a.key for a in alloys}) == n:
            yield from _facts(paper, sentence, value, shared, conditions, alloys[i])


def _facts(paper, sentence, value: Value, prop: Mention, conditions, alloy=None) -> list[Fact]:
    """The value's fact, and when its condition holds a temperature, the fact that asks for that
    temperature given the value ("At what temperature does X reach a YS of 1454 MPa?")."""
    condition = nearest(conditions, value.start, value.end, opening=sentence.start)
    alloy = alloy or alloy_before(paper, sentence, prop.start)
    name, said = _singular(prop.text), condition.text if condition else None
    facts = [Fact("value", value.start, value.end, alloy, name, value.unit, said)]
    temperature = condition and patterns.TEMPERATURE.search(
        paper.text, condition.start, condition.end)
    if temperature and paper.text[value.start].isdigit():  # a bound ("exceeding 11%") is no given
        facts.append(Fact("value", *temperature.span(), alloy, name, "temperature", said,
                          form="temperature", given=paper.text[value.start:value.end]))
    return facts


def _property_list(text: str, before: list[Mention], n: int) -> list[Mention] | None:
    """The last `n` properties before a list of values, when they form a list themselves."""
    if len(before) < n:
        return None
    chosen = before[-n:]
    joined = all(_PROPERTY_LIST_GAP.match(text[a.end:b.start]) for a, b in zip(chosen, chosen[1:]))
    return chosen if joined else None


def _temperature_list(text: str, sentence: Span, position: int, n: int) -> list[str] | None:
    """`n` temperatures listed before `position` ("room temperature, 1200, 1600, and 1800 °C"),
    each written out with the unit of the last."""
    window = text[sentence.start:position]
    m = re.search(r"((?:room temperature|RT|\d+(?:\.\d+)?)(?:\s*,\s*(?:and\s+)?|\s+and\s+))+"
                  r"(\d+(?:\.\d+)?)\s?(°C|℃|K)\b", window)
    if not m:
        return None
    items = re.findall(r"room temperature|RT|\d+(?:\.\d+)?", m.group())
    unit = m.group(3)
    if len(items) != n:
        return None
    return [item if not item[0].isdigit() else f"{item} {unit}" for item in items]


def _singular(phrase: str) -> str:
    """The property as a question names it: singular, lowercase unless a name or an acronym."""
    words = phrase.split()
    last = words[-1]
    if last.endswith("ies"):
        last = last[:-3] + "y"
    elif last.endswith("sses"):
        last = last[:-2]
    elif last == "moduli":
        last = "modulus"
    elif last.endswith("s") and not last.endswith(("ss", "us", "ness", "sis")):
        last = last[:-1]
    first = words[0] if len(words) > 1 else last
    if first[:1].isupper() and first[1:2].islower() and first.lower() not in (
            "young's", "young’s", "vickers", "peierls", "curie", "néel", "neel"):
        first = first.lower()
    words = [first] + words[1:-1] + [last] if len(words) > 1 else [first]
    return " ".join(words)
