"""BibTeX files, parsed with bibtexparser v2; LaTeX markup in values is turned into plain text.

Papers are named by entry key (`refs.bib entry li2024`); a malformed block by its 1-based line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import bibtexparser
from bibtexparser.model import DuplicateBlockKeyBlock, DuplicateFieldKeyBlock, Entry, ParsingFailedBlock
from pylatexenc.latex2text import LatexNodes2Text

from ..errors import InputError
from .common import Source, match_fields, make_record, read_text
from .records import Failed, Paper, Skipped

# bibtexparser logs every malformed block to stderr; our Failed records already report them.
logging.getLogger("bibtexparser").addHandler(logging.NullHandler())

# keep_braced_groups=False drops protective braces ({CoCrFeNi} -> CoCrFeNi); math stays verbatim
# here and is rendered by _MATH_DECODER below, so that `$_{0.5}$` becomes `0.5`, not `_0.5`.
_DECODER = LatexNodes2Text(math_mode="verbatim", keep_braced_groups=False)
_MATH_DECODER = LatexNodes2Text(math_mode="text")
# Exports rarely escape these; to LaTeX a bare `%` starts a comment, eating the rest of the line.
_BARE_SPECIAL = re.compile(r"(?<!\\)([%&#])")
_MATH = re.compile(r"(?<!\\)\$([^$]{1,200}?)(?<!\\)\$")
_BRACE = re.compile(r"(?<!\\)[{}]")
_NAME_SPLIT = re.compile(r"[{}]|(?<!\s)\s+and\s+", re.I)  # the lookbehind keeps it linear
_BLOCK_KEY = re.compile(r"@\s*\w+\s*[{(]\s*([^,\s{}()]+)\s*,")


def _math(match: re.Match) -> str:
    text = _MATH_DECODER.latex_to_text(match.group(1))
    return text.replace("^∘", "°").replace("∘", "°").replace("_", "")


def delatex(value: str) -> str:
    """LaTeX-marked-up text as plain Unicode: accents, `\\%`, `$\\mu$m`, braces."""
    if value.startswith('"') and value.endswith('"') and len(value) > 1:
        value = value[1:-1]  # the quotes of a value bibtexparser left enclosed (duplicates)
    try:
        text = _DECODER.latex_to_text(_BARE_SPECIAL.sub(r"\\\1", value))
        return _MATH.sub(_math, text)
    except Exception:  # pylatexenc on arbitrary input: fall back to dropping the braces
        return _BRACE.sub("", value)


def split_names(value: str) -> list[str]:
    """BibTeX's `A and B` author list, not splitting inside braces (`{Smith and Sons}`)."""
    names, depth, start = [], 0, 0
    for match in _NAME_SPLIT.finditer(value):
        token = match.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth = max(depth - 1, 0)
        elif depth == 0:
            names.append(value[start : match.start()])
            start = match.end()
    names.append(value[start:])
    return [delatex(name) for name in names if name.strip()]


def _entry(entry: Entry, name: str) -> Paper | Skipped:
    where = f"{name} entry {entry.key}" if entry.key else f"{name} line {_line(entry)}"
    values = {field.key: str(field.value) for field in entry.fields}
    fields: dict[str, object] = {}
    for field, key in match_fields(values).items():
        fields[field] = split_names(values[key]) if field == "authors" else delatex(values[key])
    return make_record(where, fields)


def _line(block) -> int | str:
    return block.start_line + 1 if block.start_line is not None else "?"


def _failed(block: ParsingFailedBlock, name: str) -> Failed:
    match = _BLOCK_KEY.match(block.raw or "")
    where = f"{name} line {_line(block)}"
    if match:
        where = f"{name} entry {match.group(1)} (line {_line(block)})"
    error = block.error
    reason = getattr(error, "abort_reason", None) or str(error) or type(error).__name__
    return Failed(where, " ".join(reason.split()))


def read_bibtex(source: Source, name: str) -> Iterator[Paper | Skipped | Failed]:
    """Papers from a .bib file; a malformed entry is a Failed record and reading goes on."""
    text = read_text(source, name)
    if not text.strip():
        yield Skipped(name, "empty file")
        return
    try:
        library = bibtexparser.parse_string(text)
    except Exception as e:  # bibtexparser re-raises its internal state errors
        raise InputError(name, f"BibTeX parser error: {e or type(e).__name__}") from None
    if not library.entries and not library.failed_blocks:
        raise InputError(name, "no BibTeX entries found")
    for block in library.blocks:
        if isinstance(block, Entry):
            yield _entry(block, name)
        elif isinstance(block, (DuplicateBlockKeyBlock, DuplicateFieldKeyBlock)) and isinstance(
            block.ignore_error_block, Entry
        ):
            # Merged .bib files reuse keys for different papers; dedup happens downstream.
            yield _entry(block.ignore_error_block, name)
        elif isinstance(block, ParsingFailedBlock):
            yield _failed(block, name)
