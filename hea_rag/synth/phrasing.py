"""Questions for a fact, in the many ways people ask them.

The alloy is named by its formula or, where the abstract allows no confusion, described ("the
refractory HEA", "the laser-clad coating"); the property by the words the paper used or a synonym
from the vocabulary's own families (yield strength / YS / yield stress: `hea_rag/properties.py`
reads them all as the same property, so `ask`'s question gate treats them alike); the condition as
written. Question shapes vary from full sentences to the terse ones typed into a search box.
"""

from __future__ import annotations

import random
import re
from itertools import product

from hea_rag.synth.reading import Fact, PaperText

# written phrase (searched in the property as the paper wrote it) -> other names for it
SYNONYMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"ultimate tensile strength", ("UTS", "tensile strength")),
    (r"ultimate compressive strength", ("UCS", "peak compressive stress")),
    (r"compressive yield strength", ("compressive yield stress", "yield strength in compression")),
    (r"yield strength", ("yield stress", "YS", "proof stress")),
    (r"yield stress", ("yield strength", "YS")),
    (r"compressive strength", ("strength in compression", "compression strength")),
    (r"tensile strength", ("strength in tension",)),
    (r"fracture strain", ("strain to fracture", "strain at fracture")),
    (r"fracture elongation", ("elongation to failure", "elongation at break")),
    (r"compressive plasticity", ("plastic strain in compression", "compressive ductility")),
    (r"elongation", ("tensile elongation", "ductility")),
    (r"plasticity", ("ductility",)),
    (r"microhardness", ("hardness", "Vickers microhardness")),
    (r"Young['’]s modulus", ("elastic modulus", "stiffness")),
    (r"elastic modulus", ("Young's modulus",)),
    (r"grain size", ("grain diameter", "mean grain size")),
    (r"friction coefficient", ("coefficient of friction", "COF")),
    (r"coefficient of friction", ("friction coefficient", "COF")),
    (r"specific wear rate", ("wear rate",)),
    (r"fracture toughness", ("KIC", "toughness")),
)

VALUE = (
    "What is the {p} of {a}{c}?",
    "What {p} does {a} reach{c}?",
    "{how} is the {p} of {a}{c}?",
    "Which {p} was measured for {a}{c}?",
    "{P} of {a}{c}?",
    "What value of {p} is reported for {a}{c}?",
    "{A}{c}: what is its {p}?",
    "Tell me the {p} of {a}{c}.",
)
TEMPERATURE = (
    "At what {t}temperature does {a} reach {an} {p} of {g}?",
    "At which {t}temperature was the {p} of {g} obtained for {a}?",
    "Which {t}temperature gives {a} {an} {p} of {g}?",
)
PHASE = {
    "structure": ("What crystal structure does {a} have{c}?", "Which phases make up {a}{c}?",
                  "What is the phase constitution of {a}{c}?", "{A}{c}: which phases are present?",
                  "What structure was found in {a}{c}?"),
    "precipitation": ("Which phase precipitates in {a}{c}?", "What forms in {a}{c}?",
                      "Which phase forms in {a}{c}?", "What precipitates in {a}{c}?"),
}
MECHANISM = {
    "np": ("What is {s} attributed to?", "What causes {s}?", "What is the origin of {s}?",
           "Which mechanism is responsible for {s}?", "What explains {s}?"),
    "clause": ("What explains why {s}?", "What is the reason that {s}?",
               "What is the cause given for the fact that {s}?"),
}
COMPARISON = {
    "amount": ("How much {comp} is the {p} of {a} than that of {r}?",
               "By how much does the {p} of {a} differ from that of {r}?",
               "How does the {p} of {a} compare with that of {r}?"),
    "amount-plain": ("How much {comp} than {r} is {a}?", "How does {a} compare with {r}?"),
    "reference": ("Compared with which material does {a} show {an_comp} {comp} {p}?",
                  "{A} has a {comp} {p} than which material?",
                  "Against which material is the {comp} {p} of {a} reported?"),
    "compared": ("What is {a} compared with?", "Which reference is {a} compared against?",
                 "{A} is compared with what?"),
}
ELEMENT = {
    "rich": ("Which element {be} the {w} rich in?", "What element enriches the {w} in {a}?",
             "The {w} of {a} {be} rich in which element?"),
    "segregation": ("Which element segregates in {a}?",
                    "What element was found to segregate in {a}?"),
    "addition": ("Which element was added to {a}?", "Which element was added to {a} in this study?",
                 "What was {a} alloyed with?"),
}
_TREATMENT_NOUNS = {"anneal": "annealing ", "ag": "aging ", "sinter": "sintering ",
                    "homogeni": "homogenization ", "braz": "brazing ", "test": "test "}


def questions(fact: Fact, paper: PaperText, rng: random.Random, limit: int = 8) -> list[str]:
    """Up to `limit` different questions for `fact`, drawn from every combination of shape,
    alloy name, property name and condition wording."""
    shapes = _shapes(fact)
    names = dict(a=alloy_names(fact, paper), p=property_names(fact.prop) if fact.prop else [""],
                 c=condition_wordings(fact.condition))
    combos = list(product(shapes, names["a"], names["p"], names["c"]))
    rng.shuffle(combos)
    found: dict[str, None] = {}
    for shape, alloy, prop, condition in combos:
        found.setdefault(_fill(shape, fact, alloy, prop, condition), None)
        if len(found) >= limit:
            break
    return list(found)


def _shapes(fact: Fact) -> tuple[str, ...]:
    if fact.kind == "value":
        return TEMPERATURE if fact.form == "temperature" else VALUE
    if fact.kind == "phase":
        return PHASE[fact.form]
    if fact.kind == "mechanism":
        return MECHANISM[fact.form]
    if fact.kind == "comparison":
        return _comparison_shapes(fact)
    return ELEMENT[fact.form]


def _comparison_shapes(fact: Fact) -> tuple[str, ...]:
    """An amount is asked with the property when one is named, and with the comparative when
    one is written ("2.3 times greater than" / "5 times that of"); a reference needs a property."""
    if fact.form == "amount":
        shapes = COMPARISON["amount" if fact.prop else "amount-plain"]
        return shapes if fact.comparative else shapes[1:]
    return COMPARISON["reference" if fact.form == "reference" and fact.prop else "compared"]


def _fill(shape: str, fact: Fact, alloy: str, prop: str, condition: str) -> str:
    subject = fact.subject or ""
    question = shape.format(
        a=alloy, A=_capital(alloy), p=prop, P=prop[:1].upper() + prop[1:], c=condition,
        s=subject, r=subject, w=subject, comp=fact.comparative or "", g=fact.given or "",
        how=_how(fact.unit), an=_article(prop), an_comp=_article(fact.comparative or ""),
        t=_treatment(fact.condition), be="are" if re.search(r"[^s]s$", subject) else "is")
    return re.sub(r"\s+", " ", question).strip()


def alloy_names(fact: Fact, paper: PaperText) -> list[str]:
    """The formula of the fact's alloy, and descriptions when it is the paper's main alloy."""
    names = [fact.alloy.name] if fact.alloy else []
    if paper.main is None or fact.alloy is None or fact.alloy.key == paper.main.key:
        names += paper.descriptions
    return names or ["the alloy studied"]


def property_names(phrase: str) -> list[str]:
    """The property as written, and the same with one synonym put in."""
    names = [phrase]
    for pattern, alternatives in SYNONYMS:
        found = re.search(pattern, phrase, re.IGNORECASE)
        if found:
            names += [phrase[:found.start()] + alt + phrase[found.end():] for alt in alternatives]
            break
    return list(dict.fromkeys(names))


def condition_wordings(condition: str | None) -> list[str]:
    """How a question appends the condition ("" when there is none)."""
    if not condition:
        return [""]
    text = condition[0].lower() + condition[1:] if condition[1:2].islower() else condition
    if text.lower().startswith("as-"):
        return [f" in the {text} state", f" ({text})"]
    return [f" {text}"]


def _how(unit: str | None) -> str:
    return "How large" if unit in ("length", "wear", "areal mass", "current") else "How high"


def _treatment(condition: str | None) -> str:
    """The treatment a temperature belongs to ("annealing "), or "" for a test temperature."""
    found = re.search(r"\b(anneal|ag|sinter|homogeni|braz|test)(?:ing|ed|ation|e)?\b",
                      condition or "", re.IGNORECASE)
    return _TREATMENT_NOUNS[found.group(1).lower()] if found else ""


def _article(word: str) -> str:
    """"an" before a lowercase vowel ("an ultimate strength"), else "a" ("a UTS", "a yield")."""
    return "an" if word and word[0] in "aeiou" else "a"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:] if text.startswith("the ") else text
