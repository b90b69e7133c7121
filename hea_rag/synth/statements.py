"""Statements other than values: phases, causes, comparisons and the elements a phase is rich in.

Each is found by its wording ("consists of", "attributed to", "higher than that of", "Zr-rich")
and answered by a span of the sentence: the phases, the cause, the amount or the reference, the
element. Spans stop at the end of their clause and stay short; longer ones are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hea_rag.lexical import ELEMENTS, parse_formula
from hea_rag.synth import patterns
from hea_rag.synth.reading import (Fact, PaperText, Span, alloy_before, conditions_in, nearest,
                                   properties_in)

MAX_ANSWER_WORDS = 25
_OPENER = re.compile(r"^(?:(?:However|Moreover|Furthermore|Additionally|In addition|Notably|Thus|"
                     r"Therefore|And|Meanwhile|Also)\s*,?\s*)?$", re.IGNORECASE)
_VAGUE = re.compile(r"^(?:this|these|those|that|it|its|their|such|them|which|we|our|here|in contrast|"
                    r"while|whereas|although|though|but|and|was|were|is|are|has|have|had|can|be)\b",
                    re.IGNORECASE)
# "dual-phase" alone says how many phases, not which
_COUNT_ONLY = re.compile(r"^(?:single|dual|two|multi)[- ]?phases?(?: (?:structure|matrix))?$",
                         re.IGNORECASE)
# a clause has a verb: "the strength of the alloy" explains nothing on its own
_VERB = re.compile(r"\b(?:is|are|was|were|has|have|had|can|could|will|may|might|does|do|did|"
                   r"\w+ed|(?:show|exhibit|display|become|remain|occur|appear|lead|increase|"
                   r"decrease|improve|reduce|possess|achieve|reach|retain)s?)\b", re.IGNORECASE)
# without "is"/"was" before them, only these start a cause that runs to the end of the clause
_FINITE_CAUSE = re.compile(r"(?:due|owing)\s+to|resulted|originated|arises|stem", re.IGNORECASE)
_ENGLISH = frozenset({"In", "As", "At", "Be", "No", "He", "I"})


def statement_facts(paper: PaperText) -> Iterator[Fact]:
    for sentence in paper.sentences:
        yield from _phases(paper, sentence)
        yield from _causes(paper, sentence)
        yield from _comparisons(paper, sentence)
        yield from _elements(paper, sentence)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    """[start, end) without edge spaces and punctuation, with balanced brackets and at most
    MAX_ANSWER_WORDS words; None when nothing fit is left."""
    while start < end and text[start] in " ,;:":
        start += 1
    while end > start and text[end - 1] in " ,;:.":
        end -= 1
    span = text[start:end]
    if span.count("(") > span.count(")") and text[end:end + 1] == ")":
        end += 1
        span = text[start:end]
    if not span or span.count("(") != span.count(")") or len(span.split()) > MAX_ANSWER_WORDS:
        return None
    return start, end


def _condition(paper: PaperText, sentence: Span, start: int, end: int) -> str | None:
    found = nearest(conditions_in(paper, sentence), start, end, opening=sentence.start)
    return found.text if found else None


# --- phases -----------------------------------------------------------------------------------


def _phases(paper: PaperText, sentence: Span) -> Iterator[Fact]:
    """The first phase statement of the sentence: phases next to a verb that reports them."""
    text = paper.text
    for chunk in _phase_chunks(text, sentence):
        before = list(patterns.PHASE_TRIGGER.finditer(text, max(sentence.start, chunk.start - 80),
                                                      chunk.start))
        after = patterns.PHASE_TRIGGER.search(text, chunk.end, min(sentence.end, chunk.end + 40))
        trigger = before[-1] if before else after
        compared = re.search(r"\bthan\s+(?:\w+\s+){0,3}$", text[sentence.start:chunk.start])
        if trigger is None or compared:
            continue
        form = "precipitation" if patterns.PRECIPITATION.match(trigger.group()) else "structure"
        yield Fact("phase", chunk.start, chunk.end, alloy_before(paper, sentence, chunk.start),
                   condition=_condition(paper, sentence, chunk.start, chunk.end), form=form)
        return


def _phase_chunks(text: str, sentence: Span) -> Iterator[Span]:
    """Runs of phase names joined by "and", "/", "solid solution"..., with a trailing "phase"."""
    groups: list[list[int]] = []
    for m in patterns.PHASE.finditer(text, sentence.start, sentence.end):
        gap = text[groups[-1][1]:m.start()] if groups else None
        if gap is not None and len(gap) < 40 and patterns.PHASE_GAP.match(gap):
            groups[-1][1] = m.end()
        else:
            groups.append([m.start(), m.end()])
    for start, end in groups:
        tail = patterns.PHASE_TAIL.match(text, end, sentence.end)
        span = _trimmed(text, start, tail.end() if tail else end)
        if span and not _COUNT_ONLY.match(text[span[0]:span[1]]):
            yield Span(*span)


# --- causes -----------------------------------------------------------------------------------


def _causes(paper: PaperText, sentence: Span) -> Iterator[Fact]:
    text = paper.text
    for m in patterns.CAUSE.finditer(text, sentence.start, sentence.end):
        lead = text[sentence.start:m.start()]
        if m.group("copula") is None and (_OPENER.match(lead) or lead.rstrip().endswith(",")):
            found = _cause_first(text, m.end(), sentence.end)  # "Due to X, the alloy showed ..."
        elif m.group("copula") or _FINITE_CAUSE.match(m.group("trigger")):
            span = _trimmed(text, m.end(), _clause_end(text, m.end(), sentence.end))
            found = (span, *_subject(lead, bool(m.group("copula"))))
        else:  # "the strengthening caused by N improved ...": where the cause ends is unclear
            continue
        span, subject, form = found
        if span and subject and not _VAGUE.match(text[span[0]:span[1]]) and 2 <= len(
                text[span[0]:span[1]].split()):
            yield Fact("mechanism", *span, alloy_before(paper, sentence, m.start()),
                       subject=subject, form=form)


def _cause_first(text: str, start: int, limit: int) -> tuple:
    """The cause up to the comma that closes it, and the clause it explains after that comma."""
    comma = text.find(", ", start, limit)
    span = _trimmed(text, start, comma) if comma > 0 else None
    return (span, _clause(text, comma + 2, limit), "clause") if span else (None, None, "")


def _clause_end(text: str, start: int, limit: int) -> int:
    found = patterns.CLAUSE_END.search(text, start, limit)
    return found.start() if found else limit


def _clause(text: str, start: int, limit: int) -> str | None:
    clause = _lowered(text[start:_clause_end(text, start, limit)].strip(" ,.;"))
    fit = (3 <= len(clause.split()) <= MAX_ANSWER_WORDS and not _VAGUE.match(clause)
           and _VERB.search(clause))
    return clause if fit else None


def _subject(lead: str, copula: bool) -> tuple[str | None, str]:
    """What the cause explains: the noun phrase before "is attributed to" (form "np"), or the
    clause before "due to" or ", which can be attributed to" (form "clause")."""
    which = re.search(r",\s+which\s+(?:\w+\s+)?$", lead)
    if which:
        lead, copula = lead[:which.start()], False
    cut = max(lead.rfind(" that "), lead.rfind("; "), lead.rfind(": "), lead.rfind(", "))
    lead = lead[cut + 1:] if cut >= 0 else lead
    lead = re.sub(r"^\s*(?:that|However|Moreover|Furthermore|Thus|Therefore|And)\s*,?\s*", "", lead)
    lead = re.sub(r"^(?:This|These|The)\b", "the", lead.strip(" ,"))
    if copula:
        lead = re.sub(r"\s+(?:can|could|may|might|should)(?:\s+\w+ly)?$", "", lead)
    lead = _lowered(lead)
    words = lead.split()
    shortest = 2 if copula else 4  # a clause has a subject and a verb at least
    if not shortest <= len(words) <= MAX_ANSWER_WORDS or _VAGUE.match(lead) or " we " in lead:
        return None, ""
    if not copula and not _VERB.search(lead):
        return None, ""
    return lead, "np" if copula else "clause"


def _lowered(phrase: str) -> str:
    """A sentence's opening word inside a question: "Beyond" -> "beyond"; "RHEAs", "Ti",
    "NbTaTiV-based" stay."""
    first = phrase.split(" ", 1)[0].strip(",")
    name = first in ELEMENTS or any(c.isupper() or c.isdigit() for c in first[1:])
    return phrase if name else phrase[:1].lower() + phrase[1:]


# --- comparisons ------------------------------------------------------------------------------


def _comparisons(paper: PaperText, sentence: Span) -> Iterator[Fact]:
    text = paper.text
    props = properties_in(paper, sentence)
    amounts = []
    for m in patterns.AMOUNT_COMPARISON.finditer(text, sentence.start, sentence.end):
        ref = _reference(text, m.start("ref"), m.end("ref"), article=True)
        span = _trimmed(text, *m.span("amount"))
        alloy = alloy_before(paper, sentence, m.start())
        plain_times = m.group("comp") or re.search(r"times|fold", m.group("amount"))
        if ref and span and plain_times and not _same(alloy, text[ref[0]:ref[1]]):
            amounts.append(m.span())
            prop = nearest([p for p in props if p.end <= m.start()], m.start(), m.end(), reach=200)
            yield Fact("comparison", *span, alloy, prop=prop.text if prop else None,
                       subject=text[ref[0]:ref[1]],
                       form="amount", comparative=m.group("comp"))
    for m in patterns.REFERENCE_COMPARISON.finditer(text, sentence.start, sentence.end):
        ref = _reference(text, m.start("ref"), m.end("ref"))
        if not ref or any(a <= m.start() < b for a, b in amounts):
            continue
        what = m.group("what").strip()
        prop = what if patterns.PROPERTY.fullmatch(what) else None
        alloy = alloy_before(paper, sentence, m.start())
        if not _same(alloy, text[ref[0]:ref[1]]):
            yield Fact("comparison", *ref, alloy, prop=prop, form="reference",
                       comparative=m.group("comp").lower())
    for m in patterns.COMPARED_WITH.finditer(text, sentence.start, sentence.end):
        ref = _reference(text, m.start("ref"), m.end("ref"))
        alloy = alloy_before(paper, sentence, ref[1]) if ref else None
        if ref and not _same(alloy, text[ref[0]:ref[1]]):
            yield Fact("comparison", *ref, alloy, form="compared")


def _same(alloy, reference: str) -> bool:
    """Whether the reference names the alloy itself ("uncoated Ti6Al4V" for Ti6Al4V)."""
    return alloy is not None and alloy.name in reference


def _reference(text: str, start: int, end: int, article: bool = False) -> tuple[int, int] | None:
    """What something is compared with: up to the end of its noun phrase, eight words at most;
    not a number ("higher than 1000 MPa" is a bound) nor a pronoun. A leading "the" is kept
    only with `article` (in a question it reads better; an answer does without it)."""
    stop = patterns.REF_END.search(text, start, end)
    span = _trimmed(text, start, stop.start() if stop else end)
    if span is None:
        return None
    ref = text[span[0]:span[1]]
    start = span[0] + (4 if ref.lower().startswith("the ") and not article else 0)
    ref = text[start:span[1]]
    named = (patterns.REFERENCE_NOUN.search(ref) and len(ref.split()) > 1) or any(
        _alloy_word(word) for word in ref.split())
    if not named or ref[0].isdigit() or _VAGUE.match(ref) or len(ref.split()) > 8 or re.match(
            r"(?:most|many|other|all|conventional|traditional|previous)\b", ref, re.IGNORECASE):
        return None
    return start, span[1]


# --- elements ---------------------------------------------------------------------------------


def _elements(paper: PaperText, sentence: Span) -> Iterator[Fact]:
    text = paper.text
    for m in patterns.ELEMENT_RICH.finditer(text, sentence.start, sentence.end):
        start, end = m.span("el")
        if text[start] == "(":
            start, end = start + 1, end - 1
        if _symbols(text[start:end]) and not re.search(r"\band\b|-rich", m.group("what")):
            yield Fact("element", start, end, alloy_before(paper, sentence, m.start()),
                       subject=m.group("what"), form="rich")
    for regex, form in ((patterns.ELEMENT_SEGREGATION, "segregation"),
                        (patterns.ELEMENT_ADDITION, "addition")):
        for m in regex.finditer(text, sentence.start, sentence.end):
            group = next(g for g in m.groupdict() if m.group(g))
            start, end = m.span(group)
            if _symbols(text[start:end]) and m.group(group) not in _ENGLISH:
                alloy = alloy_before(paper, sentence, m.start())
                yield Fact("element", start, end, alloy, form=form)


def _alloy_word(word: str) -> bool:
    return parse_formula(word.strip("(),")) is not None


def _symbols(text: str) -> bool:
    """Whether `text` is made of element symbols only (`Ti`, `TaNb`, `Nb, Ta`)."""
    parts = re.findall(r"[A-Z][a-z]?", text)
    rest = re.sub(r"[A-Z][a-z]?|[,\s]", "", text)
    return bool(parts) and not rest and all(p in ELEMENTS for p in parts)
