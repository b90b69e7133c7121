"""The regular expressions synthesis reads abstracts with: values and their units, the property
phrases that name what a value measures, conditions, phases, causes and comparisons.

Plain regexes on the abstract as indexed, so every match keeps its offsets and the answer can be a
verbatim span. Abstracts write the same unit many ways (`g·cm−3`, `g/cm3`, `g cm-3`); each unit
pattern belongs to a class, and a property phrase accepts only the classes it can be measured in,
which is what keeps "26 % lower" from becoming a density.
"""

from __future__ import annotations

import re

_SP = r"[ \u00a0\u2009\u202f\u200b]*"  # spaces as abstracts print them, zero-width included
_MINUS = r"[−\-–]"
_DOT = r"[·∙⋅•.\s]?"
NUMBER = (rf"\d+(?:\.\d+)?(?:{_SP}(?:±|\+/-){_SP}\d+(?:\.\d+)?)?"  # 496±15
          rf"(?:{_SP}[×x]{_SP}10{_SP}{_MINUS}?\d+)?")  # 8 × 10−7

# unit class -> patterns, longest spellings first inside each class
UNIT_CLASSES: dict[str, str] = {
    "toughness": rf"MPa{_SP}{_DOT}{_SP}(?:m{_SP}\^?(?:1/2|0\.5|½)|√{_SP}m)",
    # MPa g−1 cm3, MPa·g−1·cm3, MPa cm3/g, (MPa cm3)/g, MPa·cm3·g−1, kPa·m3·kg−1, kN·m·kg−1
    "specific": (rf"(?:\(?MPa{_SP}{_DOT}{_SP}(?:g{_MINUS}1{_SP}{_DOT}{_SP}cm3"
                 rf"|cm3{_SP}\)?{_SP}(?:/{_SP}g|{_DOT}{_SP}g{_MINUS}1))"
                 rf"|kPa{_DOT}m3{_DOT}kg{_MINUS}1|kN{_DOT}m{_DOT}kg{_MINUS}1)"),
    "wear": rf"mm3{_SP}(?:/{_SP}\(?N{_SP}{_DOT}{_SP}m\)?|N{_MINUS}1{_SP}{_DOT}?{_SP}m{_MINUS}1)",
    "density": rf"g{_SP}(?:/{_SP}cm{_SP}3|{_DOT}{_SP}cm{_SP}{_MINUS}{_SP}3|/cc)",
    "areal mass": rf"mg{_SP}(?:/{_SP}cm{_SP}2|{_DOT}{_SP}cm{_MINUS}2)",
    "current": rf"[μµunm]?A{_SP}(?:/{_SP}cm{_SP}2|{_DOT}{_SP}cm{_MINUS}2)",
    "energy": rf"(?:kJ{_SP}/{_SP}mol|eV(?:/atom)?|m?J{_SP}/{_SP}m{_SP}2|J/mm3|J/m\b|J\b)",
    "magnetization": rf"emu{_SP}/{_SP}g|A{_SP}m2{_SP}/{_SP}kg",
    "conductivity": rf"W{_SP}/{_SP}\(?m{_SP}{_DOT}?{_SP}K\)?|[μµ]Ω{_SP}{_DOT}?{_SP}cm",
    "pressure": r"[kMG]Pa\b",
    "hardness": r"HV(?:\d+(?:\.\d+)?)?\b",
    "temperature": r"(?:°|º|˚)\s?C\b|℃|K\b",
    "length": r"(?:[nμµ]m|mm|Å)(?![\w/])",
    "percent": r"(?:vol|wt|at)?\.?\s?%",
    "time": r"(?:h|min|s|hours?)\b",
    "ratio": r"times\b|-fold\b",
}
UNIT = re.compile("|".join(f"(?P<u{i}>{p})" for i, p in enumerate(UNIT_CLASSES.values())))
UNIT_NAMES = tuple(UNIT_CLASSES)

# a value: an optional bound or approximation, the number, the unit
QUALIFIER = (r"(?:(?:higher|greater|more|larger|lower|less) than|up to|over|above|exceeding"
             r"|>|≥|<|≤|~|∼|≈)")
VALUE = re.compile(
    rf"(?<![\w.\-−/])(?P<qual>{QUALIFIER}{_SP})?(?P<num>{NUMBER})(?:{_SP}{_MINUS}{_SP}{NUMBER})?"
    rf"(?P<gap>{_SP})")

# property phrases: up to three modifiers, then a head noun. Head -> the unit classes it accepts.
HEADS: dict[str, tuple[str, ...]] = {
    r"(?:micro|nano)?hardness": ("hardness", "pressure"),
    r"toughness": ("toughness", "energy"),
    r"strengths?|stress(?:es)?": ("pressure", "specific"),
    r"modul(?:us|i)": ("pressure",),
    r"elongations?|ductility|(?:super)?plasticity|strains?(?! rate)": ("percent",),
    r"(?:current )densit(?:y|ies)": ("current",),
    r"densit(?:y|ies)": ("density", "percent"),
    r"(?:grain|crystallite|particle|precipitate|pore|cell) sizes?|thickness|spacing|roughness":
        ("length",),
    r"lattice (?:parameter|constant)s?": ("length",),
    r"(?:friction coefficient|coefficient of friction|COF)": ("none",),
    r"wear rates?|wear loss": ("wear",),
    r"(?:mass|weight) gains?": ("areal mass",),
    r"(?:volume|area|mass) fractions?|porosity": ("percent",),
    r"(?:melting|Curie|N[ée]el|transition|solidus|liquidus) (?:point|temperature)s?":
        ("temperature",),
    r"(?:activation|stacking fault|impact|absorbed) energ(?:y|ies)|enthalp(?:y|ies)": ("energy",),
    r"(?:thermal|electrical) conductivit(?:y|ies)|resistivit(?:y|ies)": ("conductivity",),
    r"magneti[sz]ation": ("magnetization",),
    r"stress exponent|strain[- ]rate sensitivity": ("none",),
}
_MODIFIER = (r"(?:compressive|tensile|yield|ultimate|specific|fracture|maximum|peak|average|mean|"
             r"relative|surface|ideal|shear|Young['’]s|elastic|engineering|uniform|total|Vickers|"
             r"room[- ]temperature|high[- ]temperature|Peierls|effective|residual|critical|bulk|"
             r"saturation|corrosion|flow|true|nanoindentation)")
PROPERTY = re.compile(
    rf"\b(?P<phrase>(?:{_MODIFIER}[ -]){{0,3}}(?P<head>{'|'.join(HEADS)}))\b", re.IGNORECASE)
_HEAD_PATTERNS = [(re.compile(rf"(?:{head})$", re.IGNORECASE), units)
                  for head, units in HEADS.items()]


def head_units(head: str) -> tuple[str, ...]:
    """The unit classes the property head `head` is measured in."""
    return next((units for pattern, units in _HEAD_PATTERNS if pattern.match(head)), ())


# conditions: a temperature, a processing state, or a treatment with its temperature
_NUM = r"\d+(?:\.\d+)?"
_TEMPERATURE = (rf"(?:{_NUM}{_SP}(?:°|º|˚){_SP}C|{_NUM}{_SP}℃|{_NUM}{_SP}K\b"
                r"|room[- ]temperature|RT\b)")
_TREATMENT = (r"(?:anneal|ag|sinter|homogeniz|homogenis|heat[- ]treat|forg|roll|hot[- ]press|temper"
              r"|quench|oxidiz|oxidis|test|compress|deform|braz|cast|melt|irradiat|cryogenic)")
_DURATION = rf"(?:\s+for\s+{_NUM}\s*(?:h|min|hours?)\b)?"
CONDITION = re.compile(
    rf"\b(?:(?:after|upon|following|during)\s+(?:the\s+)?(?:[\w-]+\s+){{0,2}}?{_TREATMENT}\w*"
    rf"(?:\s+(?:heat\s+)?treatment)?\s+at\s+{_TEMPERATURE}{_DURATION}"
    rf"|{_TREATMENT}\w*\s+at\s+{_TEMPERATURE}{_DURATION}"
    rf"|(?:at|from)\s+{_TEMPERATURE}"
    r"|in\s+the\s+(?:as-[\w]+|cold-rolled|annealed|aged|homogeni[sz]ed|sintered)"
    r"\s+(?:state|condition)"
    r"|as-(?:cast|sintered|built|deposited|received|rolled|forged|printed|sprayed|annealed|aged))\b",
    re.IGNORECASE)
TEMPERATURE = re.compile(rf"(?<![\w.]){_TEMPERATURE}", re.IGNORECASE)
# "when the sintering temperature was 1500 °C": the treatment named by its temperature
TREATMENT_TEMPERATURE = re.compile(
    rf"\b(?P<verb>sinter|anneal|ag|homogeniz|braz|test)ing temperature (?:was|is|of) "
    rf"(?P<t>{_TEMPERATURE})", re.IGNORECASE)
PARTICIPLES = {"sinter": "sintered", "anneal": "annealed", "ag": "aged", "homogeniz": "homogenized",
               "braz": "brazed", "test": "tested"}

# phases and structures
PHASE = re.compile(
    r"(?<![\w-])(?:(?:single|dual|two|multi)[- ]?(?:(?:BCC|FCC|HCP|bcc|fcc)[- ])?phases?"
    r"|(?:BCC|FCC|HCP|bcc|fcc|hcp)(?:-?\d)?|B2|L1_?2|L2_?1|D0_?22|C14|C15|Laves"
    r"|(?:σ|sigma|μ)[- ]phases?"
    r"|body[- ]cent(?:er|re)d[- ]cubic|face[- ]cent(?:er|re)d[- ]cubic|hexagonal close[- ]packed"
    r"|amorphous)(?!\w)")
PHASE_GAP = re.compile(
    r"^\s*(?:(?:[,/+(]|\)|and|or|with|plus|a|an|the|minor|major|small amount of|solid[- ]solutions?|"
    r"matrix|phases?|structures?|-)\s*)*$", re.IGNORECASE)
PHASE_TAIL = re.compile(
    r"\)?(?:\s+(?:solid[- ]solution|matrix|phases?|structures?|\([A-Za-z0-9]+\)))+")
PHASE_TRIGGER = re.compile(
    r"\b(?:consist\w*|compos\w*|compris\w*|exhibit\w*|show\w*|shew|retain\w*|maintain\w*|possess\w*|"
    r"contain\w*|characteri[sz]ed|revealed|identified|confirmed|transform\w*|"
    r"(?:formed|form|forms|formation|precipitat\w*))\b", re.IGNORECASE)
PRECIPITATION = re.compile(r"\bprecipitat\w*", re.IGNORECASE)
# what a comparison may be made with: an alloy, a material, a state, a method; not "screw segments"
REFERENCE_NOUN = re.compile(
    r"\b(?:alloys?|steels?|superalloys?|HEAs?|RHEAs?|MEAs?|samples?|specimens?|counterparts?|"
    r"substrates?|"
    r"coatings?|metals?|composites?|ceramics?|state|condition|method|process|route|materials?)\b",
    re.IGNORECASE)

# causes: the trigger, then the cause up to the end of its clause
CAUSE = re.compile(
    r"\b(?P<copula>(?:was|were|is|are|be|been|being)\s+)?(?:(?:mainly|mostly|primarily|largely|"
    r"partly|chiefly|probably|likely)\s+)?"
    r"(?P<trigger>(?:attributed|ascribed|attributable|due|owing|related|ascribable)\s+to|caused\s+by|"
    r"resulted\s+from|originat(?:ed|es)\s+from|arises\s+from|stem(?:s|med)\s+from)\s+",
    re.IGNORECASE)
CLAUSE_END = re.compile(
    r"[.;]\s|[.;]$|,\s+(?:which|while|whereas|thereby|leading|resulting|with|respectively|but)\b"
    r"|\s+(?:which|while|whereas|thereby|but)\b|\)\.?$", re.IGNORECASE)

# comparisons
COMPARATIVE = (r"(?:higher|lower|greater|larger|smaller|less|more|better|worse|stronger|weaker|"
               r"harder|softer|lighter|heavier|finer|coarser)")
_AMOUNT = (rf"(?:{NUMBER}{_SP}(?:%|times\b)|\d+(?:\.\d+)?-fold"
           r"|(?:one|two|three|four|an?) orders? of magnitude|twice)")
AMOUNT_COMPARISON = re.compile(
    rf"(?P<amount>{_AMOUNT})\s+(?:(?P<comp>{COMPARATIVE})\s+than|(?=(?:that|those)\s+of))\s+"
    rf"(?:(?:that|those)\s+of\s+)?(?P<ref>[^,;.]+)", re.IGNORECASE)
REFERENCE_COMPARISON = re.compile(
    rf"\b(?P<comp>{COMPARATIVE})\s+(?P<what>(?:[\w'’-]+\s+){{0,3}}?)than\s+"
    r"(?:(?:that|those)\s+of\s+)?(?P<ref>[^,;.]+)",
    re.IGNORECASE)
COMPARED_WITH = re.compile(r"\b(?:compared|in comparison) (?:with|to) (?P<ref>[^,;.]+)",
                           re.IGNORECASE)
REF_END = re.compile(r"\s+(?:at|in|and|with|which|while|for|by|after|when|due|because|reported|"
                     r"studied|so far)\b|\s*\(|\s*\)", re.IGNORECASE)

# elements: what a phase is rich in, what segregates, what was added
ELEMENT_RICH = re.compile(
    r"(?<![\w-])(?P<el>\((?:[A-Z][a-z]?,\s*)+[A-Z][a-z]?\)|(?:[A-Z][a-z]?){1,3})-rich\s+"
    r"(?P<what>(?:[\w-]+\s+){0,3}?(?:phases?|matrix|regions?|particles?|precipitates?|"
    r"precipitation phases|layers?|clusters?|boundar(?:y|ies)|network phase|oxides?|zones?))\b")
ELEMENT_SEGREGATION = re.compile(
    r"(?<![\w-])(?:segregation of (?P<a>[A-Z][a-z]?)\b|(?P<b>[A-Z][a-z]?) segregation)")
ELEMENT_ADDITION = re.compile(
    r"(?<![\w-])(?:addition of (?:\w+ )?(?P<a>[A-Z][a-z]?)\b|(?P<b>[A-Z][a-z]?) additions?\b|"
    r"alloying (?:with )?(?P<c>[A-Z][a-z]?)\b|doping (?:with )?(?P<d>[A-Z][a-z]?)\b)")
