"""Text clean-up for what comes out of a PDF: formulas rejoined, lines rejoined, symbols as typed.

Extraction breaks chemistry in ways no other input does: the subscripts of `Al<sub>0.3</sub>CoCrFeNi`
come out spaced (`Al 0.3 CoCrFeNi`) or on a line of their own, words are hyphenated at line ends,
and `°C` arrives as `◦C` (LaTeX's circle) or `˚C`. Everything here works on plain strings, so it
serves any extractor; `clean.clean_abstract` still does the general Unicode folding afterwards.
"""

from __future__ import annotations

import re

from hea_rag.lexical import ELEMENTS, parse_formula

# Degree look-alikes that typesetting puts before C/F/K: LaTeX's \circ, the ring above, the
# masculine ordinal. Spaces between them and the letter go too (`900 ◦ C` -> `900 °C`).
_DEGREE = re.compile(r"[◦˚º°∘]\s*([CFK])\b")
_MICRO = re.compile(r"[µμ]\s+(?=(?:m|g|l|L|s|A|V|W|mol)\b)")
_MINUS = str.maketrans({"\u2212": "-", "\u2012": "-", "\ufe63": "-", "\uff0d": "-"})
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
# A run of element symbols (`CoCrFeNi`, `Al`, `(FeCoNi)`) and amounts (`0.3`, `86`) split by
# single spaces: the candidates for a spaced-out formula.
_PIECE = r"\(?(?:[A-Z][a-z]?)+\)?|\d{1,3}(?:\.\d+)?"
_SPACED = re.compile(rf"(?<![\w.])(?:{_PIECE})(?: (?:{_PIECE}))+(?![\w.])")
_AMOUNT = re.compile(r"\d{1,3}(?:\.\d+)?")
_LONE_AMOUNT = re.compile(r"\d{1,3}(?:\.\d+)?")
_WORD_END = re.compile(r"([\w.()-]+)$")
_WORD_START = re.compile(r"^([\w()]+)")


def fix_symbols(text: str) -> str:
    """Ligatures spelled out, minus signs as `-`, `°C` and `μm` as typed."""
    text = text.translate(_LIGATURES).translate(_MINUS)
    return _MICRO.sub("μ", _DEGREE.sub(r"°\1", text))


def rejoin_formulas(text: str) -> str:
    """`Al 0.3 CoCrFeNi` -> `Al0.3CoCrFeNi`, `(FeCoNi) 86 Al 7 Ti 7` -> `(FeCoNi)86Al7Ti7`: spaced
    pieces are joined when an amount stands between element symbols and the whole is a formula
    of two or more elements; anything else (`In 2 Co`, `Fig 3`) is left as it was."""
    return _SPACED.sub(lambda m: _joined(m.group()), text)


def _joined(run: str) -> str:
    pieces = run.split(" ")
    if _AMOUNT.fullmatch(pieces[-1]) and not any(map(_AMOUNT.fullmatch, pieces[1:-1])):
        return run  # `CoCrFeNi 50 nm`: a lone trailing number is more likely a quantity
    words = [pieces[0]]
    for before, piece in zip(pieces, pieces[1:]):
        if (_AMOUNT.fullmatch(piece) and _is_element_run(before)) or (
                _AMOUNT.fullmatch(before) and len(words[-1]) > len(before)):
            words[-1] += piece
        else:
            words.append(piece)
    if any(_AMOUNT.search(word) and not _is_formula(word) for word in words if word != run):
        return run
    return " ".join(words)


def _is_element_run(text: str) -> bool:
    """`Al`, `CoCrFeNi`, `(FeCoNi)`, `Al0.3Co`: element symbols, brackets and amounts only."""
    symbols = re.findall(r"[A-Z][a-z]?", text)
    return bool(symbols) and all(s in ELEMENTS for s in symbols) and re.fullmatch(
        r"\(?(?:[A-Z][a-z]?|\d+(?:\.\d+)?|[()])+", text) is not None


def _is_formula(word: str) -> bool:
    formula = parse_formula(word)
    return formula is not None and len(formula.moles) >= 2 and not _AMOUNT.fullmatch(word)


def join_lines(lines: list[str], vocabulary: set[str] | frozenset[str] = frozenset()) -> str:
    """The lines of one paragraph as running text.

    A line-end hyphen is dropped (`proper-`/`ties`) unless the word is hyphenated elsewhere in
    the document (`vocabulary`: `high-entropy`), or it joins capitals, digits or a word already
    hyphenated (`N-domain-`/`selective`). A line holding only an amount between two pieces of a
    formula is a subscript set on its own line: it is glued to both neighbours.
    """
    text = ""
    for index, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        text = _append(text, line, following, vocabulary)
    return text


def _append(text: str, line: str, following: str, vocabulary) -> str:
    if not text:
        return line
    if _LONE_AMOUNT.fullmatch(line) and _formula_edge(text) and following[:1].isupper():
        return text + line + "\x00"  # glue to the next line too (removed there)
    if text.endswith("\x00"):
        return text[:-1] + line
    if text.endswith("-") and len(text) > 1 and not text[-2].isspace():
        return _dehyphenate(text, line, vocabulary)
    return f"{text} {line}"


def _formula_edge(text: str) -> bool:
    return _is_element_run(text.rsplit(" ", 1)[-1])


def _dehyphenate(text: str, line: str, vocabulary) -> str:
    before = _WORD_END.search(text[:-1])
    after = _WORD_START.search(line)
    if not before or not after:
        return text + line
    head, tail = before.group(1), after.group(1)
    keep = ("-" in head or not head[-1].islower() or not tail[0].islower()
            or f"{head}-{tail}".lower() in vocabulary)
    return (text if keep else text[:-1]) + line


def document_vocabulary(lines: list[str]) -> set[str]:
    """Hyphenated words printed within lines (lowercased): evidence that a hyphen at a line end
    belongs to the word."""
    return {w.lower().strip(".,;:()") for line in lines for w in line.split()[:-1] if "-" in w}


def clean_pdf_text(lines: list[str], vocabulary: set[str] | frozenset[str] = frozenset()) -> str:
    """One paragraph's lines as clean running text."""
    return rejoin_formulas(fix_symbols(join_lines(lines, vocabulary)))
