"""JSON (a list of paper objects, or an object holding one) and JSON Lines (one object a line).

Papers are numbered from 1: `papers.json item 3`, `papers.jsonl line 3` (physical lines).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from ..errors import InputError
from .common import Source, match_fields, make_record, read_text
from .records import Failed, Paper, Skipped

_WRAPPER_KEYS = ("papers", "records", "data", "items")


def _record(obj: object, where: str) -> Paper | Skipped | Failed:
    if not isinstance(obj, dict):
        return Failed(where, f"expected a JSON object, got {type(obj).__name__}")
    keys = match_fields(obj)
    try:
        return make_record(where, {field: obj[key] for field, key in keys.items()})
    except RecursionError:  # absurdly nested values
        return Failed(where, "value nested too deeply")


def _loads(text: str) -> object:
    """json.loads, with every way it fails on bad input as ValueError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _error_text(e: ValueError) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"invalid JSON: {e.msg} (line {e.lineno} column {e.colno})"
    return f"invalid JSON: {e}"  # e.g. an integer over Python's 4300-digit limit


def _paper_list(data: object, name: str) -> list:
    """The list of paper objects inside a parsed .json document."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        by_lower = {k.casefold(): v for k, v in data.items()}
        for key in _WRAPPER_KEYS:
            if isinstance(by_lower.get(key), list):
                return by_lower[key]
        if "abstract" in match_fields(data):
            return [data]  # a single paper
    expected = "a list of papers, or an object with a 'papers', 'records' or 'data' list"
    raise InputError(name, f"expected {expected}, got {type(data).__name__}")


def read_json(source: Source, name: str) -> Iterator[Paper | Skipped | Failed]:
    """Papers from a .json document; a file that is really JSON Lines is read as such."""
    text = read_text(source, name)
    if not text.strip():
        yield Skipped(name, "empty file")
        return
    try:
        data = _loads(text)
    except ValueError as e:
        if isinstance(e, json.JSONDecodeError) and e.msg == "Extra data" and e.lineno > 1:
            yield from _read_lines(text, name)  # several documents, one per line
            return
        raise InputError(name, _error_text(e)) from None
    for n, obj in enumerate(_paper_list(data, name), start=1):
        yield _record(obj, f"{name} item {n}")


def _read_lines(text: str, name: str) -> Iterator[Paper | Skipped | Failed]:
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and other "line breaks".
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{name} line {n}"
        try:
            obj = _loads(line)
        except ValueError as e:
            yield Failed(where, _error_text(e))
            continue
        yield _record(obj, where)


def read_jsonl(source: Source, name: str) -> Iterator[Paper | Skipped | Failed]:
    """Papers from JSON Lines; a bad line is a Failed record and reading goes on."""
    yield from _read_lines(read_text(source, name), name)
