"""Chemistry-aware tokens for lexical search.

Plain word tokenizers shred alloy names: `MoNbVTa0.5Cr` becomes `monbvta0`, `5cr`, and a query that
writes the same alloy as `CrMoNbTaV` shares nothing with it. Here a formula yields its whole name,
its element parts (`mo`, `nb`, `ta0.5`...), and two order-free keys (`sys_` the sorted elements,
`cmp_` the sorted composition), so it matches as a whole, by its parts, and in any element order.
Numbers keep their decimals and stay joined to a following unit (`1500°c`, `2783mpa`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
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

STOPWORDS = frozenset(
    "a an and are as at be by can could do does for from has have how in into is it its of on or "
    "the their this that to was were what when which with you your me tell provide"
    # words of question templates ("Could you provide the ... measurement for ...") that say
    # nothing about which paper answers
    " value measurement measured measure exhibit conditions used".split()
)

# Characters a token may hold besides letters and digits; the FTS5 table declares the same set.
TOKEN_SYMBOLS = ".%°()-/_+·"

_RAW_TOKEN = re.compile(r"[^\s,;:!?\"'\[\]{}<>=]+")
_NUMBER_UNIT = re.compile(r"^([+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?)(.*)$")
_FORMULA_PART = re.compile(r"([A-Z][a-z]?)(\d+(?:\.\d+)?)?|(\()|(\))(\d+(?:\.\d+)?)?")
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—−"), "-")


def normalize(text: str) -> str:
    """NFKC (µ -> μ, full-width digits), one kind of dash, `º`/`˚` as the degree sign."""
    text = text.replace("º", "°").replace("˚", "°")  # before NFKC, which turns º into o
    text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    return text.replace("° C", "°C")


def tokenize(text: str) -> list[str]:
    """Lexical tokens of `text` (documents and queries alike), stopwords dropped."""
    raw = [_strip_edges(t) for t in _RAW_TOKEN.findall(normalize(text))]
    raw = [t for t in raw if t]
    tokens: list[str] = []
    for i, token in enumerate(raw):
        following = raw[i + 1] if i + 1 < len(raw) else ""
        tokens.extend(_expansions(token, following))
    return [t for t in tokens if t and t not in STOPWORDS]


@lru_cache(maxsize=1 << 16)
def _expansions(token: str, following: str) -> tuple[str, ...]:
    # words repeat across a corpus: caching halves the lexical share of indexing time
    return tuple(_expand(token, following))


def _expand(token: str, following: str) -> Iterator[str]:
    formula = parse_formula(token)
    if formula is not None:
        yield from formula_tokens(token, formula)
        return
    if "-" in token.strip("-") and not token[0].isdigit():
        for part in token.split("-"):
            yield from _expand(part, "") if part else ()
        yield _clean(token.replace("-", "").lower())
        return
    yield from _word_tokens(token, following)


def _word_tokens(token: str, following: str) -> Iterator[str]:
    lowered = _clean(token.lower()).strip("()")
    number = _NUMBER_UNIT.match(lowered)
    if not number:
        if lowered:
            yield lowered
        return
    value, attached_unit = number.groups()
    unit = attached_unit or (following.lower() if following.lower() in UNITS else "")
    yield value
    if attached_unit:
        yield attached_unit
    if unit:
        yield value + unit


def formula_tokens(token: str, amounts: dict[str, float | None]) -> Iterator[str]:
    """Whole name, element parts with and without their amounts, and the two order-free keys."""
    yield _clean(token.lower())
    for element, amount in amounts.items():
        yield element.lower()
        if amount is not None:
            yield f"{element.lower()}{_number(amount)}"
    ordered = sorted(amounts)
    yield "sys_" + "".join(e.lower() for e in ordered)
    yield "cmp_" + "".join(f"{e.lower()}{_number(amounts[e] or 1)}" for e in ordered)


def parse_formula(token: str) -> dict[str, float | None] | None:
    """Element amounts of an alloy or compound name, or None when `token` is not one.

    A formula has at least two elements and a lowercase letter or digit, so acronyms such as
    BCC or SPS stay words. Group multipliers apply: `(Ti1.5V)3ZrNb` gives Ti 4.5, V 3.
    """
    if not re.fullmatch(r"[A-Za-z0-9.()]+", token) or not re.search(r"[a-z0-9]", token):
        return None
    stack: list[dict[str, float | None]] = [{}]
    position = 0
    for match in _FORMULA_PART.finditer(token):
        if match.start() != position:
            return None
        position = match.end()
        element, amount, opening, closing, multiplier = match.groups()
        if element:
            if element not in ELEMENTS:
                return None
            _add(stack[-1], element, float(amount) if amount else None)
        elif opening:
            stack.append({})
        elif closing:
            if len(stack) == 1:
                return None
            group = stack.pop()
            factor = float(multiplier) if multiplier else 1.0
            for el, value in group.items():
                scaled = None if value is None and factor == 1.0 else (value or 1.0) * factor
                _add(stack[-1], el, scaled)
    if position != len(token) or len(stack) != 1 or len(stack[0]) < 2:
        return None
    return stack[0]


def _add(amounts: dict[str, float | None], element: str, amount: float | None) -> None:
    if element in amounts:
        amounts[element] = (amounts[element] or 1.0) + (amount or 1.0)
    else:
        amounts[element] = amount


def _number(value: float) -> str:
    return f"{value:g}"


def _strip_edges(token: str) -> str:
    """Drop sentence punctuation and unbalanced brackets at the ends of a raw token."""
    token = token.rstrip(".")
    while token.startswith("(") and token.count("(") > token.count(")"):
        token = token[1:]
    while token.endswith(")") and token.count(")") > token.count("("):
        token = token[:-1]
    return token.rstrip(".")


def _clean(token: str) -> str:
    return "".join(c for c in token if c.isalnum() or c in TOKEN_SYMBOLS)
