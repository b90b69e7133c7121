"""Properties a question can ask for, and the words a paper uses when it reports them.

Each entry: the name (as `ask` says it when a paper lacks it), a pattern that finds the property in
a question, and a pattern that finds a report of it in a paper. The paper side is broader on
purpose (`yield strength` is reported as `YS`, `σ0.2`, `yield stress`): a paper that never uses
any of these words cannot state the value. Measured in scripts/bench_abstention.py: how many
answerable questions this refuses, and how many unanswerable ones it catches.
Qualifiers (`compressive`, `tensile`, `specific`) are entries of their own, so `compressive yield
strength` needs both a compression test and a yield in the paper.
"""

from __future__ import annotations

import re
from functools import lru_cache

from hea_rag.lexical import normalize

# (name, question pattern, paper pattern); case-insensitive, searched in normalized text
VOCABULARY: tuple[tuple[str, str, str], ...] = (
    ("yield strength", r"\byield\b|\bYS\b|proof stress|σ_?(?:y|0\.2)\b",
     r"\byield|\bYS\b|proof stress|σ_?(?:y|0\.2)\b"),
    ("tensile strength", r"\btensile|\bUTS\b", r"\btensile|\bUTS\b|\btension"),
    ("compressive behaviour", r"\bcompressi(?:ve|on)", r"\bcompress"),
    ("ultimate strength", r"\bultimate\b|\bUTS\b|\bUCS\b|\bpeak (?:strength|stress)",
     r"\bultimate\b|\bUTS\b|\bUCS\b|\b(?:peak|maximum|max\.?) (?:strength|stress)"),
    ("fracture behaviour", r"\bfracture\b", r"\bfractur"),
    ("specific strength", r"\bspecific (?:yield |compressive |tensile )?strength",
     r"\bspecific\b"),
    ("shear strength", r"\bshear strength", r"\bshear"),
    ("strength", r"\bstrength|\bstress\b",
     r"\bstrength|\bstress|\bYS\b|\bUTS\b|\bUCS\b|\bstrong|σ_?(?:y|0\.2)\b"),
    ("ductility", r"\bductil|\bplasticity\b|\belongation|\bstrain\b(?! rate)|\bformab",
     r"\bductil|\bplastic|\belongation|\bstrain\b|\bformab|\bbrittle"),
    ("hardness", r"hardness|\bHV\b|\bvickers", r"hardness|\bHV\d*\b|\bvickers|\bindentation"),
    ("density", r"(?<!dislocation )(?<!loop )(?<!current )(?<!energy )(?<!packing )\bdensity"
                r"|\blighter\b|\bheavier\b|\bg/cm",
     r"(?<!dislocation )(?<!loop )(?<!current )(?<!energy )(?<!packing )\bdensit(?:y|ies)"
     r"|\bg/cm|\bg cm|\blight-?weight|\blighter\b|\blow-density"),
    ("dislocation density", r"\bdislocation (?:loop )?density", r"\bdislocation"),
    ("elastic modulus", r"\bmodulus|\byoung|\bstiffness", r"\bmodul|\byoung|\bstiff|\belastic"),
    ("toughness", r"\btoughness|\bK_?IC\b", r"\btough|\bK_?IC\b|\bcharpy|\bimpact"),
    ("impact energy", r"\bimpact\b|\bcharpy", r"\bimpact|\bcharpy"),
    ("friction coefficient", r"\bfriction|\bCOF\b", r"\bfriction|\bCOF\b"),
    ("wear", r"\bwear\b", r"\bwear"),
    ("corrosion", r"\bcorro|\bpitting|\bpassiv|\bpolari[sz]ation|\bi_?corr\b|\bE_?corr\b",
     r"\bcorro|\bpitting|\bpassiv|\bpolari[sz]|\bi_?corr\b|\bE_?corr\b"),
    ("oxidation", r"\boxidation|\boxide scale|\bmass gain|\bweight gain",
     r"\boxid|\bmass gain|\bweight gain"),
    ("creep", r"\bcreep", r"\bcreep"),
    ("fatigue", r"\bfatigue", r"\bfatigue"),
    ("irradiation", r"\birradiat|\bradiation|\bdpa\b|\bswelling",
     r"\birradiat|\bradiat|\bdpa\b|\bswelling"),
    ("thermal conductivity", r"\bthermal conductivit", r"\bthermal conduct|\bthermal diffusiv"),
    ("electrical resistivity", r"\bresistivit|\belectrical conductivit",
     r"\bresistiv|\belectrical conduct|\bconductivit"),
    ("thermal expansion", r"\bthermal expansion|\bCTE\b", r"\bexpansion|\bCTE\b"),
    ("melting point", r"\bmelting|\bsolidus|\bliquidus", r"\bmelt|\bsolidus|\bliquidus"),
    ("Néel temperature", r"\bn[ée]el\b", r"\bn[ée]el\b|\bantiferromagn"),
    ("Curie temperature", r"\bcurie\b", r"\bcurie\b|\bferromagnetic transition|\bT_?C\b"),
    ("magnetization", r"\bmagneti[sz]ation|\bemu/g", r"\bmagneti[sz]ation|\bemu\b|\bemu/g"),
    ("coercivity", r"\bcoerciv", r"\bcoerciv|\bH_?c\b"),
    ("magnetostriction", r"\bmagnetostrict", r"\bmagnetostrict"),
    ("magnetic permeability", r"\bpermeabilit", r"\bpermeab"),
    ("superconductivity", r"\bsuperconduct", r"\bsuperconduct"),
    ("hydrogen storage", r"\bhydrogen|\bhydride", r"\bhydrogen|\bhydride|\bH2\b"),
    ("stacking fault energy", r"\bstacking fault|\bSFE\b", r"\bstacking fault|\bSFE\b"),
    ("grain size", r"\bgrain size|\bgrain diameter", r"\bgrain"),
    ("crystallite size", r"\bcrystallite", r"\bcrystallite|\bgrain|\bcrystal size"),
    ("lattice parameter", r"\blattice (?:parameter|constant)|\bunit cell",
     r"\blattice|\bunit cell|\bcell parameter"),
    ("surface roughness", r"\broughness", r"\brough"),
    ("Peierls stress", r"\bpeierls", r"\bpeierls"),
    ("strain-rate sensitivity", r"\bstrain[- ]rate sensitiv", r"\bstrain[- ]rate"),
    ("valence electron concentration", r"\bvalence electron|\bVEC\b", r"\bvalence|\bVEC\b"),
    ("mixing enthalpy", r"\benthalpy", r"\benthalp|\bΔH"),
    ("band gap", r"\bband ?gap", r"\bband ?gap"),
    ("catalytic activity", r"\bcatalys|\bcatalytic|\boverpotential",
     r"\bcataly|\boverpotential"),
)


# the unit classes (hea_rag/synth/patterns.py UNIT_CLASSES) a property is reported in: an answer
# whose unit belongs to none of them states another property
_STRENGTH = frozenset({"pressure"})
UNIT_CLASSES_OF: dict[str, frozenset[str]] = {
    "yield strength": _STRENGTH, "tensile strength": _STRENGTH, "ultimate strength": _STRENGTH,
    "strength": _STRENGTH, "shear strength": _STRENGTH, "elastic modulus": _STRENGTH,
    "specific strength": frozenset({"specific"}),
    "hardness": frozenset({"hardness", "pressure"}),
    "density": frozenset({"density"}),
    "ductility": frozenset({"percent"}),
    "grain size": frozenset({"length"}), "crystallite size": frozenset({"length"}),
    "lattice parameter": frozenset({"length"}), "surface roughness": frozenset({"length"}),
    "wear": frozenset({"wear"}),
    "thermal conductivity": frozenset({"conductivity"}),
    "electrical resistivity": frozenset({"conductivity"}),
    "magnetization": frozenset({"magnetization"}),
    "toughness": frozenset({"toughness", "energy"}), "impact energy": frozenset({"energy"}),
    "melting point": frozenset({"temperature"}), "Néel temperature": frozenset({"temperature"}),
    "Curie temperature": frozenset({"temperature"}),
}


@lru_cache(maxsize=None)
def _compiled() -> tuple[tuple[str, re.Pattern, re.Pattern], ...]:
    return tuple((name, re.compile(asked, re.IGNORECASE), re.compile(reported, re.IGNORECASE))
                 for name, asked, reported in VOCABULARY)


def properties_in(question: str) -> list[str]:
    """Names of the vocabulary's properties that `question` asks about."""
    text = normalize(question)
    return [name for name, asked, _ in _compiled() if asked.search(text)]


def mentions(name: str, paper_text: str) -> bool:
    """Whether `paper_text` uses any word that reports the property `name`."""
    text = normalize(paper_text)
    return any(reported.search(text) for known, _, reported in _compiled() if known == name)
