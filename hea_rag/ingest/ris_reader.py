"""RIS files (Scopus, Zotero, EndNote exports), parsed with rispy one record at a time.

rispy parses a whole file or nothing: one odd record (a continuation line it cannot attach)
raises for all, and a last record without `ER  -` is silently dropped. Feeding it one record at
a time, terminated, keeps the good records and names the bad one. Records are named by their
`ID` tag when they have one, else by position: `refs.ris entry #3`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import rispy

from ..errors import InputError
from .common import Source, make_record, read_text
from .doi import doi_from_link
from .records import Failed, Paper, Skipped

_RECORD_START = re.compile(r"^TY  -", re.M)
_RECORD_END = re.compile(r"^ER  -", re.M)

# rispy's key names, best first, for each Paper field (AB/N2, TI/T1, PY/Y1, AU/A1, JO/T2...).
_KEYS = {
    "abstract": ("abstract", "notes_abstract"),
    "title": ("title", "primary_title"),
    "doi": ("doi",),
    "year": ("year", "publication_year", "date"),
    "authors": ("authors", "first_authors"),
    "source": ("journal_name", "secondary_title", "alternate_title3", "alternate_title1"),
}


def _first(entry: dict, keys: tuple[str, ...]) -> object:
    return next((entry[k] for k in keys if entry.get(k)), None)


def _link(entry: dict) -> str | None:
    """The first URL (UR) that carries a DOI, for records without a DO tag."""
    urls = entry.get("urls") or []
    urls = [urls] if isinstance(urls, str) else urls
    return next((u for u in urls if isinstance(u, str) and doi_from_link(u)), None)


def _record(entry: dict, name: str, position: int) -> Paper | Skipped:
    key = entry.get("id")
    where = f"{name} entry {key if isinstance(key, str) and key.strip() else f'#{position}'}"
    fields = {field: _first(entry, keys) for field, keys in _KEYS.items()}
    fields["link"] = _link(entry)
    return make_record(where, fields)


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of each record, each ending in an `ER  -` line."""
    starts = [m.start() for m in _RECORD_START.finditer(text)] + [len(text)]
    line = text.count("\n", 0, starts[0]) + 1
    for begin, end in zip(starts, starts[1:]):
        chunk = text[begin:end]
        yield line, chunk if _RECORD_END.search(chunk) else chunk + "\nER  - \n"
        line += chunk.count("\n")


def read_ris(source: Source, name: str) -> Iterator[Paper | Skipped | Failed]:
    """Papers from a .ris file; a record rispy cannot parse is a Failed record."""
    text = read_text(source, name).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        yield Skipped(name, "empty file")
        return
    if not _RECORD_START.search(text):
        raise InputError(name, "no RIS records (no line starts with 'TY  -')")
    position = 0
    for line, chunk in _chunks(text):
        try:
            entries = rispy.loads(chunk)
        except Exception as e:  # rispy raises bare KeyErrors and the like on odd layouts
            yield Failed(f"{name} entry #{position + 1} (line {line})", f"malformed RIS record ({e!r})")
            position += 1
            continue
        for entry in entries:
            position += 1
            yield _record(entry, name, position)
