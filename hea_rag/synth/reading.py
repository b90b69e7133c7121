"""One abstract read for synthesis: its sentences with offsets, the alloys it names (by the same
chemistry-aware tokens the index uses), its main alloy and the ways a question may describe that
alloy without naming it ("the refractory HEA", "the laser-clad coating")."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from hea_rag.chunking import split_sentences
from hea_rag.lexical import ELEMENTS, parse_formula, tokenize
from hea_rag.synth import patterns

_WORD = re.compile(r"[A-Za-z0-9.()\-–]+")
_SUFFIX = re.compile(r"[-–](?:based|type|like|containing|free|alloyed|matrix|rich)$")
# a formula followed by one of these names a phase or a particle, not the alloy studied
_NOT_ALLOY_NEXT = re.compile(r"\s*(?:phases?|particles?|precipitates?|layers?|scales?|whiskers?|"
                             r"oxides?|carbides?|compounds?|powders?|substrates?)\b", re.IGNORECASE)
_CONVENTIONAL = frozenset({"Ti6Al4V", "Ti6Al7Nb", "Ti5Al2.5Sn", "Ti6Al2Sn4Zr2Mo"})
_REFRACTORY = frozenset("Ti V Cr Zr Nb Mo Hf Ta W Re".split())
_PROCESSING = (  # how the abstract says it was made -> how a question may call the alloy
    (r"laser[- ]clad", "laser-clad"),
    (r"spark plasma sinter|\bSPS\b", "spark-plasma-sintered"),
    (r"laser powder bed fusion|\bL-?PBF\b|selective laser melting|\bSLM\b", "LPBF-printed"),
    (r"directed energy deposition|\bDED\b", "DED-built"),
    (r"electron beam melting|\bEBM", "EBM-built"),
    (r"magnetron sputter", "sputtered"),
    (r"plasma surface alloying", "plasma-alloyed"),
    (r"arc[- ]melt", "arc-melted"),
    (r"mechanical(?:ly)? alloy", "mechanically alloyed"),
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Alloy:
    name: str  # as written, e.g. `MoNbVTa0.5Cr`
    key: str  # the composition key (or the element-set key when amounts are variables)
    start: int
    end: int
    elements: tuple[str, ...]


@dataclass
class PaperText:
    text: str
    sentences: list[Span]
    alloys: list[Alloy]
    main: Alloy | None
    descriptions: list[str] = field(default_factory=list)  # of the main alloy, unambiguous

    def alloys_in(self, span: Span) -> list[Alloy]:
        return [a for a in self.alloys if span.start <= a.start and a.end <= span.end]


def read_paper(text: str) -> PaperText:
    alloys = alloy_mentions(text)
    main = _main_alloy(alloys)
    paper = PaperText(text, sentence_spans(text), alloys, main)
    paper.descriptions = descriptions(paper)
    return paper


def sentence_spans(text: str) -> list[Span]:
    """Sentences of `text` with their offsets, found in order (a sentence the splitter glued or
    reshaped is found word by word, whatever the spacing)."""
    spans, cursor = [], 0
    for sentence in split_sentences(text):
        pattern = r"\s*".join(re.escape(word) for word in sentence.split())
        found = re.compile(pattern).search(text, cursor) if pattern else None
        if found:
            spans.append(Span(found.start(), found.end()))
            cursor = found.end()
    return spans or [Span(0, len(text))]


def alloy_mentions(text: str) -> list[Alloy]:
    """Every alloy named in `text`: a formula of three elements or more that is no oxide or
    nitride and is not followed by "phase", "particles"..."""
    mentions = []
    for match in _WORD.finditer(text):
        name, offset = _strip(match.group())
        start = match.start() + offset
        alloy = _as_alloy(name, start)
        if alloy and not _NOT_ALLOY_NEXT.match(text, alloy.end):
            mentions.append(alloy)
    return mentions


def _strip(word: str) -> tuple[str, int]:
    """The word without sentence punctuation, unbalanced brackets and a `-based` suffix, and
    how many characters were cut from its start."""
    start, name = 0, word.rstrip(".-–")
    while name.startswith("(") and name.count("(") > name.count(")"):
        name, start = name[1:], start + 1
    while name.endswith(")") and name.count(")") > name.count("("):
        name = name[:-1].rstrip(".")
    if name.startswith("(") and name.endswith(")") and name.count("(") == 1:
        name, start = name[1:-1], start + 1  # `(Al0.3CoCrFeNi)`
    return _SUFFIX.sub("", name), start


@lru_cache(maxsize=1 << 14)
def _alloy_key(name: str) -> tuple[str, tuple[str, ...]] | None:
    """(identity key, elements) of an alloy name, or None when `name` names no alloy."""
    head = re.split(r"[-–]", name, maxsplit=1)[0]
    extended = head != name and parse_formula(head) is not None  # `NbMoTaW-1ZrO2`
    base = head if extended else name
    elements = tuple(dict.fromkeys(e for e in re.findall(r"[A-Z][a-z]?", base) if e in ELEMENTS))
    if len(elements) < 3 or {"O", "N"} & set(elements):
        return None
    tokens = tokenize(name)
    keys = [t for t in tokens if t.startswith("cmp_")] + [t for t in tokens if t.startswith("sys_")]
    if not keys:
        return None
    # the composite is not its base alloy: both may be studied side by side
    return (name.lower() if extended else keys[0]), elements


def _as_alloy(name: str, start: int) -> Alloy | None:
    found = _alloy_key(name) if len(name) > 3 else None
    if found is None:
        return None
    return Alloy(name, found[0], start, start + len(name), found[1])


def _main_alloy(alloys: list[Alloy]) -> Alloy | None:
    """The alloy named most often (the first of those on a tie), as first written. A conventional
    alloy is only a substrate or a reference beside the HEA studied."""
    studied = [a for a in alloys if a.name.replace("-", "") not in _CONVENTIONAL] or alloys
    if not studied:
        return None
    counts = Counter(a.key for a in studied)
    best = max(counts.values())
    return next(a for a in studied if counts[a.key] == best)


def descriptions(paper: PaperText) -> list[str]:
    """Ways to name the main alloy without its formula; none when the abstract studies several
    alloys (another alloy named more than once, or a variant of the same elements, would make any
    description ambiguous)."""
    main, text = paper.main, paper.text
    if main is None:
        return []
    others = Counter(a.key for a in paper.alloys if a.key != main.key)
    variants = any(set(a.elements) == set(main.elements) for a in paper.alloys if a.key != main.key)
    if variants or any(count > 1 for count in others.values()):
        return []
    noun = _noun(text, main)
    found = [f"the {label} {noun}" for pattern, label in _PROCESSING
             if re.search(pattern, text)][:1]
    refractory = (re.search(r"\brefractory\b", text, re.IGNORECASE)
                  or sum(e in _REFRACTORY for e in main.elements) >= 0.75 * len(main.elements))
    if refractory and noun == "alloy":
        found.append("the refractory HEA")
    rich = _rich_element(main.name)
    if rich:
        found.append(f"the {rich}-rich {'RHEA' if refractory and noun == 'alloy' else noun}")
    if "Al" in main.elements and rich != "Al":
        found.append(f"the Al-containing {noun}")
    if re.search(r"\blight-?weight\b", text, re.IGNORECASE):
        found.append(f"the lightweight {noun}")
    return found[:3]


def _noun(text: str, main: Alloy) -> str:
    after = text[main.end:main.end + 30].lower()
    for noun in ("coating", "film", "composite"):
        early = re.search(rf"\b{noun}s?\b", text[:400], re.IGNORECASE)  # the paper's subject
        if after.lstrip().startswith(noun) or early:
            return noun
    if re.search(r"\bmedium[- ]entropy\b", text, re.IGNORECASE):
        return "medium-entropy alloy"
    return "alloy"


def _rich_element(name: str) -> str | None:
    """The element that clearly dominates the composition (a quarter more than the next)."""
    formula = parse_formula(name)
    if formula is None or any(v != v for v in formula.moles.values()):
        return None
    ranked = sorted(formula.moles.items(), key=lambda item: -item[1])
    (first, most), (_, second) = ranked[0], ranked[1]
    return first if most >= 1.25 * second else None


# --- what every extractor needs: a statement, and the alloy, property and condition near a span


@dataclass(frozen=True)
class Fact:
    """One statement of the abstract and the span that answers a question about it."""

    kind: str  # value, phase, element, mechanism, comparison
    start: int
    end: int
    alloy: Alloy | None = None
    prop: str | None = None  # the property phrase as written
    unit: str | None = None  # unit class of a value
    condition: str | None = None  # as written, or rebuilt ("when sintered at 1500 °C")
    subject: str | None = None  # what a cause explains, what is rich in an element, a reference
    form: str = ""  # which question shapes fit (see phrasing.py)
    comparative: str | None = None
    given: str | None = None  # a value the question states (when a temperature is asked for)


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    text: str
    head: str = ""


def properties_in(paper: PaperText, span: Span) -> list[Mention]:
    return [Mention(m.start("phrase"), m.end("phrase"), m.group("phrase"), m.group("head"))
            for m in patterns.PROPERTY.finditer(paper.text, span.start, span.end)]


def conditions_in(paper: PaperText, span: Span) -> list[Mention]:
    """Conditions as written, and treatments named by their temperature ("the sintering
    temperature was 1500 °C" -> "when sintered at 1500 °C"); ranges ("from 25 °C") are none."""
    text = paper.text
    found = [Mention(m.start(), m.end(), m.group())
             for m in patterns.CONDITION.finditer(text, span.start, span.end)
             if not m.group().lower().startswith("from")]
    for m in patterns.TREATMENT_TEMPERATURE.finditer(text, span.start, span.end):
        verb = patterns.PARTICIPLES[m.group("verb").lower()]
        found.append(Mention(m.start(), m.end(), f"when {verb} at {m.group('t')}"))
    return found


def nearest(mentions: list, start: int, end: int, reach: int = 120,
            opening: int | None = None):
    """The mention closest to [start, end) that does not overlap it, within `reach` characters;
    failing that, one that opens the sentence (at `opening`): "When ..., X was 2 μm, ... ".
    """
    best, best_gap = None, reach + 1
    for mention in mentions:
        if mention.end <= start:
            gap = start - mention.end
        elif mention.start >= end:
            gap = mention.start - end
        else:
            continue
        if gap < best_gap:
            best, best_gap = mention, gap
    if best is None and opening is not None:
        best = next((m for m in mentions if 0 <= m.start - opening <= 12 and m.end <= start), None)
    return best


def alloy_before(paper: PaperText, sentence: Span, position: int) -> Alloy:
    """The alloy a statement at `position` is about: the nearest named before it in the sentence
    (not a reference after "than"), else the first after it, else the paper's main alloy."""
    text = paper.text
    named = [a for a in paper.alloys_in(sentence)
             if not re.search(r"\bthan\s+(?:that\s+of\s+|those\s+of\s+)?(?:the\s+)?$",
                              text[max(sentence.start, a.start - 25):a.start])]
    before = [a for a in named if a.end <= position]
    after = [a for a in named if a.start >= position]
    return (before[-1] if before else after[0] if after else None) or paper.main
