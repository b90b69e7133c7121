"""What the readers share: reading bytes as text, matching column names, building a Paper."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import IO

from ..errors import InputError
from .clean import clean_abstract, clean_text
from .doi import doi_from_link, normalize_doi
from .records import MAX_ABSTRACT_CHARS, Paper, Skipped, raw_sha1

Source = str | os.PathLike | IO[str] | IO[bytes]

# Accepted names per field, best first; compared after `_simplify` (case, spaces, punctuation).
ALIASES: dict[str, tuple[str, ...]] = {
    "abstract": ("abstract", "abstracts", "abstract note", "summary", "ab", "n2", "text", "content"),
    "title": ("title", "article title", "document title", "ti", "t1", "name"),
    "doi": ("doi", "do", "di"),  # DI: Web of Science
    "year": ("year", "publication year", "py", "y1", "date", "publication date", "issued"),
    "authors": ("authors", "author", "author full names", "au", "a1", "creators"),
    "source": (
        "source title", "source", "journal", "journal name", "publication title",
        "container title", "journaltitle", "venue", "booktitle", "so", "jo", "t2",
    ),
    "link": ("link", "url", "ur"),
}

_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")


def read_text(source: Source, name: str) -> str:
    """The whole of `source` (a path or an open stream) as text; InputError if it is not text."""
    try:
        if hasattr(source, "read"):
            data = source.read()
        else:
            with open(source, "rb") as f:
                data = f.read()
    except OSError as e:
        raise InputError(name, e.strerror or str(e)) from None
    except UnicodeDecodeError as e:  # a text stream decoding as it reads
        raise InputError(name, f"not {e.encoding.upper()} text ({e.reason})") from None
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    return decode(data, name)


def decode(data: bytes, name: str) -> str:
    """UTF-8 (BOM or not), or UTF-16 when a BOM says so (Excel's "Unicode text" exports)."""
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"{name} line {line}", f"not {encoding.upper()} text ({e.reason})") from None


def _simplify(key: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", key.casefold()).split())


def match_fields(keys: Iterable[str]) -> dict[str, str]:
    """Map each known field to the first of `keys` that names it (case and punctuation ignored)."""
    by_simple: dict[str, str] = {}
    for key in keys:
        if isinstance(key, str):
            by_simple.setdefault(_simplify(key), key)
    found = {}
    for field, aliases in ALIASES.items():
        for alias in aliases:
            if alias in by_simple:
                found[field] = by_simple[alias]
                break
    return found


def as_text(value: object, sep: str = " ") -> str:
    """A JSON-ish value as text: lists joined with `sep`, CSL names as "Family, Given"."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, Mapping):
        name = as_text(value.get("family")) + ", " + as_text(value.get("given"))
        return name.strip(", ") or as_text(value.get("name") or value.get("literal"))
    if isinstance(value, (list, tuple)):
        return sep.join(t for t in (as_text(v, sep).strip() for v in value) if t)
    return ""


def parse_year(value: object) -> int | None:
    match = _YEAR.search(as_text(value))
    return int(match.group(1)) if match else None


def _optional(value: object, sep: str = " ") -> str | None:
    return clean_text(as_text(value, sep)) or None


def make_record(where: str, fields: Mapping[str, object]) -> Paper | Skipped:
    """A Paper from raw field values (keys as in ALIASES), or Skipped when the abstract is empty
    or too long to be one (checked before any cleaning, which would cost time on a runaway)."""
    raw = as_text(fields.get("abstract"))
    if len(raw) > MAX_ABSTRACT_CHARS:
        return Skipped(where, f"abstract of {len(raw):,} characters is longer than the "
                              f"{MAX_ABSTRACT_CHARS:,} an abstract may have")
    abstract = clean_abstract(raw)
    if not abstract:
        return Skipped(where, "empty abstract")
    doi = normalize_doi(as_text(fields.get("doi"))) or doi_from_link(as_text(fields.get("link")))
    return Paper(
        abstract=abstract,
        doi=doi,
        title=_optional(fields.get("title")),
        authors=_optional(fields.get("authors"), "; "),
        year=parse_year(fields.get("year")),
        source=_optional(fields.get("source")),
        origin=where,
        raw_sha1=raw_sha1(raw),
    )
