"""Chemistry-aware tokens for lexical search.

Plain word tokenizers shred alloy names: `MoNbVTa0.5Cr` becomes `monbvta0`, `5cr`, and a query that
writes the same alloy as `CrMoNbTaV` shares nothing with it. Here a formula yields its whole name,
its element parts with the amount printed next to them (`mo`, `nb`, `ta`, `ta0.5`...), and two
order-free keys: `sys_` the sorted elements, `cmp_` the composition in atomic percent (one
decimal), elements sorted. So `Al0.5CoCrFeNi` meets `CoCrFeNiAl0.5`, `AlCoCrFeNi` meets
`Al20Co20Cr20Fe20Ni20`, and `(FeCoNi)86Al7Ti7` meets `Fe28.67Co28.67Ni28.67Al7Ti7`. A variable
amount (`AlxCoCrFeNi`, `Hf40-x`) gives the system key but no composition key. Hyphen-joined pieces
(`CoCrFeMnNi-xAl`, `CoCrFeNi-Al0.3`, `Nb-Mo-Ta-W`) read as one formula; a bracketed formula
(`(Al0.3CoCrFeNi)`) as the bare one.
Numbers keep their decimals and stay joined to a following unit (`1500°c`, `2783mpa`); a unit
after a number is not also a token of its own.
English function words are dropped, element symbols never (see `_opens_as_english`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

ELEMENTS = frozenset(
    """H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se
    Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy
    Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf
    Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og""".split()
)

UNITS = frozenset(
    "°c k mpa gpa pa kpa % hv gpa·m1/2 μm um nm mm cm m h min s ms wt% at% wt.% at.% j/m2 g/cm3 "
    "ev kj/mol j mj w/mk s/m hz ev/atom".split()
)

# Plain English function words. Words of the benchmark's question templates ("provide", "value",
# "measured"...) stay out: they would only be tuned to those templates.
STOPWORDS = frozenset(
    """a about after again all also am an and any are as at be been being both but by can could did
    do does doing each for from further had has have having he her here him his how i if in into is
    it its itself me more most my no nor not of on once only or other our out own same she should
    so some such than that the their them then there these they this those through to too until
    very was we were what when where which while who whom why will with would you your""".split()
)

# Characters a token may hold besides letters and digits; the FTS5 table declares the same set.
TOKEN_SYMBOLS = ".%°()-/_+·"

_RAW_TOKEN = re.compile(r"[^\s,;:!?\"'\[\]{}<>=]+")
_SENTENCE_END = frozenset(".!?\n")
_POSSESSIVE = re.compile(r"(?<=\w)['’]s\b")
_NUMBER_UNIT = re.compile(r"^([+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?)(.*)$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—−"), "-")

_NUMBER = r"\d+(?:\.\d+)?"
# an amount: a number, a number minus a variable (`Hf40-x`), or a variable (`Alx`)
_AMOUNT = rf"{_NUMBER}-[xyz]|{_NUMBER}|[xyz]"
_ELEMENT = "|".join(sorted(ELEMENTS, key=len, reverse=True))  # `Co` before `C`
_FORMULA_PART = re.compile(rf"({_ELEMENT})({_AMOUNT})?|(\()|(\))({_AMOUNT})?")
_FORMULA_CHARS = re.compile(r"[A-Za-z0-9.()-]+")
_VARIABLE_PIECE = re.compile(rf"([xyz])({_ELEMENT})")  # the `xAl` of `CoCrFeMnNi-xAl`


@dataclass(frozen=True)
class Formula:
    """Element parts as printed, in order (`("Ta", "0.5")`, `("Cr", "")`), and the moles of each
    element (NaN where an amount is a variable)."""

    parts: tuple[tuple[str, str], ...]
    moles: dict[str, float]


@dataclass(frozen=True)
class _Atom:
    element: str
    printed: str  # the amount written next to the element, "" when none
    moles: float | None  # None while nothing is written and no group multiplier applies


def normalize(text: str) -> str:
    """NFKC (µ -> μ, full-width digits), one kind of dash, `º`/`˚` as the degree sign, no `'s`
    (it would leave the token `s`, the unit of seconds, after every possessive)."""
    text = text.replace("º", "°").replace("˚", "°")  # before NFKC, which turns º into o
    text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    text = _CONTROL.sub(" ", text)  # control characters separate tokens, as spaces do
    return _POSSESSIVE.sub("", text.replace("° C", "°C"))


def tokenize(text: str) -> list[str]:
    """Lexical tokens of `text` (documents and queries alike), function words dropped."""
    raw = _raw_tokens(normalize(text))
    tokens: list[str] = []
    for i, (token, opens_sentence) in enumerate(raw):
        following = raw[i + 1][0] if i + 1 < len(raw) else ""
        if opens_sentence and _opens_as_english(token, following):
            continue  # "In this work"
        if i and _is_unit_of_number(token, raw[i - 1][0]):
            continue  # already joined to its number (`2783mpa`)
        tokens.extend(t for t in _expansions(token, following) if t)  # symbols may clean to ""
    return tokens


def _raw_tokens(text: str) -> list[tuple[str, bool]]:
    """Tokens with their edges cleaned, each with whether it opens a sentence."""
    raw: list[tuple[str, bool]] = []
    opens, end = True, 0
    for match in _RAW_TOKEN.finditer(text):
        opens = opens or not _SENTENCE_END.isdisjoint(text[end:match.start()])
        token, end = strip_edges(match.group()), match.end()
        if token:
            raw.append((token, opens))
            opens = False
        opens = opens or match.group().endswith(".")
    return raw


def _opens_as_english(token: str, following: str) -> bool:
    """Whether `token`, opening a sentence, is a function word rather than the element it spells.

    In, As, At, Be, No, He, I, Am are both. Opening a sentence before a lowercase word or a number they
    are English ("In this work", "As shown", "At 1500 °C": 344 of the 346 capitalised "In" of the
    Scopus abstracts open a sentence); written capitalised anywhere else, or alone, they are the
    element ("the In content", "Be", "In, Sn and Bi"). Lowercase, they are always English.
    """
    if token not in ELEMENTS or token.lower() not in STOPWORDS:
        return False
    return following[:1].islower() or following[:1].isdigit()


def _is_unit_of_number(token: str, previous: str) -> bool:
    """A unit written after a number. It is indexed with its value only: alone (`mpa`, `%`) it
    would match every abstract that quotes any value in that unit."""
    number = _NUMBER_UNIT.match(previous.lower())
    return token.lower() in UNITS and number is not None and not number.group(2)


@lru_cache(maxsize=1 << 16)
def _expansions(token: str, following: str) -> tuple[str, ...]:
    # words repeat across a corpus: caching halves the lexical share of indexing time
    return tuple(_expand(token, following))


def _expand(token: str, following: str) -> Iterator[str]:
    formula = parse_formula(token)
    if formula is not None:
        yield from formula_tokens(token, formula)
    elif "-" in token.strip("-") and not token[0].isdigit():
        yield from _hyphenated(token)
    else:
        yield from _word_tokens(token, following)


def _hyphenated(token: str) -> Iterator[str]:
    """A hyphen join of formula pieces is one formula; any other hyphenated word gives its parts
    (function words among them are English: `As-cast`, `In-situ`) and the joined form."""
    pieces = [p for p in token.split("-") if p]
    formula = _formula_join(pieces)
    if formula is not None:
        # the alloys joined keep their own names: `cocrfemnni` of `CoCrFeMnNi-xAl`
        alloys = [_clean(strip_edges(p).lower()) for p in pieces if parse_formula(p)]
        yield from dict.fromkeys(alloys + list(formula_tokens(token.replace("-", ""), formula)))
        return
    for part in pieces:
        if part.lower() not in STOPWORDS:
            yield from _expand(part, "")
    yield _clean(token.replace("-", "").lower())


def _word_tokens(token: str, following: str) -> Iterator[str]:
    lowered = _clean(token.lower()).strip("()")
    if lowered in STOPWORDS and token not in ELEMENTS:
        return
    number = _NUMBER_UNIT.match(lowered)
    if not number:
        if lowered:
            yield lowered
        return
    value, attached_unit = number.groups()
    unit = attached_unit or (following.lower() if following.lower() in UNITS else "")
    yield value
    if attached_unit and attached_unit not in UNITS and (
            attached_unit not in STOPWORDS or token[-len(attached_unit):] in ELEMENTS):
        yield attached_unit  # `al` of `6Al`, a suffix that is no unit (`in` only as `6In`)
    if unit:
        yield value + unit


def formula_tokens(token: str, formula: Formula) -> Iterator[str]:
    """Whole name, element parts with and without their printed amounts, and the order-free keys."""
    tokens = [_clean(token.lower())]
    for element, printed in formula.parts:
        tokens += [element.lower(), f"{element}{printed}".lower()]
    tokens.append("sys_" + "".join(e.lower() for e in sorted(formula.moles)))
    composition = _composition_key(formula.moles)
    yield from dict.fromkeys(tokens + ([composition] if composition else []))


def _composition_key(moles: dict[str, float]) -> str | None:
    """`cmp_` + each element's atomic percent, one decimal (as papers print at.%), elements
    sorted; None when an amount is a variable."""
    total = sum(moles.values())
    if math.isnan(total) or total <= 0:
        return None
    return "cmp_" + "".join(f"{e.lower()}{_percent(moles[e] / total)}" for e in sorted(moles))


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}".removesuffix(".0")


def parse_formula(token: str) -> Formula | None:
    """The formula an alloy or compound name spells, or None when `token` is not one.

    A formula has at least two elements and a lowercase letter or digit, so acronyms such as
    BCC or SPS stay words. Amounts may be variables (`AlxCoCrFeNi`, `Ti40Zr20Hf40-xCrx`).
    """
    formula = _parse(token)
    if formula is None or len(formula.moles) < 2 or not re.search(r"[a-z0-9]", token):
        return None
    return formula


def _parse(token: str) -> Formula | None:
    """A formula of one or more elements, brackets and amounts included, or None."""
    atoms = _atoms(token) if _FORMULA_CHARS.fullmatch(token) else None
    if not atoms:
        return None
    parts = tuple(dict.fromkeys((a.element, a.printed) for a in atoms))
    return Formula(parts, _sum_moles((a.element, _or_one(a.moles)) for a in atoms))


def _atoms(token: str) -> list[_Atom] | None:
    stack: list[list[_Atom]] = [[]]
    position = 0
    for match in _FORMULA_PART.finditer(token):
        if match.start() != position:
            return None
        position = match.end()
        element, amount, opening, closing, multiplier = match.groups()
        if element:
            stack[-1].append(_Atom(element, amount or "", _amount(amount)))
        elif opening:
            stack.append([])
        elif len(stack) == 1:
            return None
        else:
            group = stack.pop()
            stack[-1].extend(_multiplied(group, _amount(multiplier)))
    return stack[0] if position == len(token) and len(stack) == 1 else None


def _multiplied(group: list[_Atom], factor: float | None) -> list[_Atom]:
    """A group's multiplier. On members without amounts it is the group's total, split equally
    (`(FeCoNi)86` is 86/3 of each); on written amounts a factor (`(Ti1.5V)3` is Ti 4.5, V 3)."""
    if factor is None or not group:
        return group
    if all(atom.moles is None for atom in group):
        return [replace(atom, moles=factor / len(group)) for atom in group]
    return [replace(atom, moles=_or_one(atom.moles) * factor) for atom in group]


def _formula_join(pieces: list[str]) -> Formula | None:
    """`CoCrFeMnNi-xAl`, `CoCrFeNi-Al0.3`, `Nb-Mo-Ta-W` as one formula, or None. A join that prints
    no amount (`Nb-Mo-Ta-W`, `CoCrFeNi-Al`) names a system, not a composition: amounts unknown."""
    formulas = [_piece(piece) for piece in pieces]
    if len(formulas) < 2 or None in formulas:
        return None
    parts = tuple(dict.fromkeys(part for f in formulas for part in f.parts))
    moles = _sum_moles(pair for f in formulas for pair in f.moles.items())
    if len(moles) < 2:
        return None
    if all(printed == "" for _, printed in parts):
        moles = dict.fromkeys(moles, math.nan)
    return Formula(parts, moles)


def _piece(text: str) -> Formula | None:
    """A piece of a hyphen join: a formula, one element (`Al0.3`, `V`) or a variable one (`xAl`)."""
    variable = _VARIABLE_PIECE.fullmatch(text)
    if variable:
        return Formula(((variable[2], variable[1]),), {variable[2]: math.nan})
    formula = _parse(text)
    if formula is None or (len(formula.parts) > 1 and not re.search(r"[a-z0-9]", text)):
        return None  # an acronym such as BCC
    return formula


def _sum_moles(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    moles: dict[str, float] = {}
    for element, amount in pairs:
        moles[element] = moles.get(element, 0.0) + amount
    return moles


def _amount(text: str | None) -> float | None:
    """Moles written after an element or a group: None when none is written, NaN for a variable."""
    if not text:
        return None
    return float(text) if text[-1].isdigit() else math.nan


def _or_one(moles: float | None) -> float:
    return 1.0 if moles is None else moles


def strip_edges(token: str) -> str:
    """Drop sentence punctuation, unbalanced brackets and brackets around the whole token."""
    token = token.rstrip(".")
    while token.startswith("(") and token.count("(") > token.count(")"):
        token = token[1:]
    while token.endswith(")") and token.count(")") > token.count("("):
        token = token[:-1]
    while token.startswith("(") and _closing_bracket(token) == len(token) - 1:
        token = token[1:-1]  # `(Al0.3CoCrFeNi)` is the bare formula
    return token.rstrip(".")


def _closing_bracket(token: str) -> int:
    """Index of the bracket that closes the one at index 0, -1 when none does."""
    depth = 0
    for i, char in enumerate(token):
        depth += (char == "(") - (char == ")")
        if depth == 0:
            return i
    return -1


def _clean(token: str) -> str:
    return "".join(c for c in token if c.isalnum() or c in TOKEN_SYMBOLS)
