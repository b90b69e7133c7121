"""The one-line summary above a table of answers from several papers, computed from the answers
(never generated): values with units become a range per unit ("3 papers: 1.2–1.5 GPa"), phases
and words their distinct values ("2 papers give different phases: BCC, BCC+Laves")."""

from __future__ import annotations

import re
from decimal import Decimal

from hea_rag.evaluate import normalize_answer
from hea_rag.evidence import normalize_evidence
from hea_rag.synth.patterns import PHASE, UNIT, UNIT_NAMES

_NUMBER = r"\d+(?:\.\d+)?"
# a value and its unit; `600–800 °C` is one value with two ends
_QUANTITY = re.compile(rf"(?<![\w.])(?P<low>{_NUMBER})(?:\s*[-–~]\s*(?P<high>{_NUMBER}))?"
                       rf"(?:\s*(?:±|\+/-)\s*{_NUMBER})?\s*")  # the spread of `1390 ± 20 MPa`
_PRESSURE = {"kPa": Decimal("0.001"), "MPa": Decimal(1), "GPa": Decimal(1000)}
# what may stand between phase names in an answer ("BCC and Laves phases", "FCC + B2")
_PHASE_FILLER = re.compile(
    r"^(?:[\s,;/+()&-]|and|or|with|plus|a|an|the|minor|major|solid|solutions?|phases?|"
    r"structures?|matrix|dual|single|two)*$", re.IGNORECASE)
# phases named by a letter alone ("σ, Laves-C14 and μ"), besides synthesis's phase names
_ANY_PHASE = re.compile(
    rf"Laves[- ]C1[45]|(?<!\w)(?:[σμηδ]|γ['′″]*)(?![\w′″'])|{PHASE.pattern}")
MOST_SHOWN = 5  # distinct values named in the line; more are counted


def summary_line(answers: list[str]) -> str | None:
    """The summary of these answers (one per paper that answered), or None for fewer than two."""
    if len(answers) < 2:
        return None
    count = f"{len(answers)} papers"
    quantities = [first_quantity(answer) for answer in answers]
    if all(quantities):
        return f"{count}: {_ranges(quantities)}"
    phases = [phases_of(answer) for answer in answers]
    if all(phases):
        return _distinct(count, phases, "phases")
    return _distinct(count, answers, "answers")


def first_quantity(answer: str) -> tuple[list[Decimal], str] | None:
    """The first number of `answer` with its unit (`""` when it has none), both ends of a
    range; None when the answer holds no number."""
    text = normalize_evidence(answer)
    for match in _QUANTITY.finditer(text):
        numbers = [Decimal(match["low"])] + ([Decimal(match["high"])] if match["high"] else [])
        unit = UNIT.match(text, match.end())
        return numbers, (unit.group().strip() if unit else "")
    return None


def unit_class(unit: str) -> str:
    """The class of a unit spelling (`pressure` for MPa), the spelling itself if unknown."""
    match = UNIT.fullmatch(unit)
    return UNIT_NAMES[int(match.lastgroup[1:])] if match else unit


def _ranges(quantities: list[tuple[list[Decimal], str]]) -> str:
    """`low–high unit` per unit class, in the order the classes first appear; pressures in the
    unit the first answer used."""
    groups: dict[str, tuple[str, list[Decimal]]] = {}
    for numbers, unit in quantities:
        kind = unit_class(unit)
        shown, values = groups.setdefault(kind, (unit, []))
        values.extend(_convert(n, unit, shown) for n in numbers)
    return "; ".join(_span(values, unit) for unit, values in groups.values())


def _convert(value: Decimal, unit: str, target: str) -> Decimal:
    if unit in _PRESSURE and target in _PRESSURE:
        return value * _PRESSURE[unit] / _PRESSURE[target]
    return value


def _span(values: list[Decimal], unit: str) -> str:
    low, high = min(values), max(values)
    text = _plain(low) if low == high else f"{_plain(low)}–{_plain(high)}"
    return f"{text} {unit}".strip()


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"


def phases_of(answer: str) -> str | None:
    """`BCC+Laves` for an answer made only of phase names ("a BCC matrix with Laves phase"),
    else None."""
    text = normalize_evidence(answer)
    names = [m.group() for m in _ANY_PHASE.finditer(text)]
    if not names or not _PHASE_FILLER.match(_ANY_PHASE.sub(" ", text)):
        return None
    return "+".join(dict.fromkeys(_phase_name(name) for name in names))


def _phase_name(name: str) -> str:
    """`single BCC phase` -> `BCC`, `bcc` -> `BCC`, `sigma phase` -> `sigma`."""
    bare = re.sub(r"[- ]?phases?$", "", name, flags=re.IGNORECASE)
    if bare.lower() in ("single", "dual", "two", "multi"):
        return name  # `dual-phase` says how many, not which
    bare = re.sub(r"^(?:single|dual|two|multi)[- ]?(?=\w)", "", bare, flags=re.IGNORECASE) or bare
    return bare.upper() if bare.lower() in ("bcc", "fcc", "hcp") else bare


def _distinct(count: str, values: list[str], kind: str) -> str:
    """The values that differ once case, commas and spaces are set aside, each as first written."""
    distinct = list({normalize_answer(value): value.strip() for value in reversed(values)}
                    .values())[::-1]
    if len(distinct) == 1:
        return f"{count} agree: {distinct[0]}"
    shown = ("; " if kind == "answers" else ", ").join(distinct[:MOST_SHOWN])  # answers hold commas
    more = f" and {len(distinct) - MOST_SHOWN} more" if len(distinct) > MOST_SHOWN else ""
    return f"{count} give {len(distinct)} different {kind}: {shown}{more}"
