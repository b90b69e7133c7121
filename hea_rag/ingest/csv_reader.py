"""CSV and TSV tables: Scopus exports (`Link`, `Abstract`, `DOI`, ...) and hand-made ones.

Rows are numbered as a spreadsheet shows them: the header is row 1 and the first data row is row 2.
A record whose quoted abstract spans several lines is still one row, and blank rows still count.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from ..errors import InputError
from .common import Source, match_fields, make_record, read_text
from .records import Failed, Paper, Skipped

_DELIMITERS = ",\t;|"


def sniff_delimiter(text: str) -> str:
    """The delimiter the header line uses most (header names rarely hold one), else a comma."""
    first_line = text.lstrip("\r\n").partition("\n")[0]
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def looks_like_csv(text: str) -> bool:
    """Whether `text` starts with a delimited header that names an abstract column."""
    first_line = text.lstrip("\r\n").partition("\n")[0]
    delimiter = sniff_delimiter(first_line)
    if delimiter not in first_line:
        return False
    try:
        header = next(csv.reader([first_line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return False
    return "abstract" in match_fields(header)


def _rows(text: str, delimiter: str, name: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(row number, cells), or (row number, error) for a row the csv module rejects."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    n = 0
    while True:
        n += 1
        line_before = reader.line_num
        try:
            yield n, next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            if reader.line_num == line_before:  # no progress: going on would loop forever
                raise InputError(f"{name} row {n}", f"malformed CSV ({e})") from None
            yield n, e


def _columns_list(header: list[str]) -> str:
    names = [h.strip()[:40] or "(blank)" for h in header[:20]]
    return ", ".join(names) + (", ..." if len(header) > 20 else "")


def read_csv(source: Source, name: str, delimiter: str | None = None) -> Iterator[Paper | Skipped | Failed]:
    """Papers from a CSV/TSV table, named `{name} row {n}` with the header as row 1.

    `.tsv` means tabs; otherwise the delimiter is sniffed from the header line.
    """
    text = read_text(source, name)
    if delimiter is None:
        delimiter = "\t" if name.lower().endswith(".tsv") else sniff_delimiter(text)
    rows = _rows(text, delimiter, name)
    header = None
    for n, row in rows:
        if isinstance(row, csv.Error):
            raise InputError(f"{name} row {n}", f"malformed CSV header ({row})")
        if any(cell.strip() for cell in row):
            header = row
            break
    if header is None:
        yield Skipped(name, "empty file")
        return
    index = {field: header.index(key) for field, key in match_fields(header).items()}
    if "abstract" not in index:
        yield Skipped(name, f"no abstract column (columns: {_columns_list(header)})")
        return
    for n, row in rows:
        where = f"{name} row {n}"
        if isinstance(row, csv.Error):
            yield Failed(where, f"malformed CSV ({row})")
        elif len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
            yield Failed(where, f"{len(row)} fields but the header has {len(header)}")
        elif any(cell.strip() for cell in row):
            yield make_record(where, {f: row[i] if i < len(row) else "" for f, i in index.items()})
