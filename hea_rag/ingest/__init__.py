"""Input readers: every supported format in, the same Paper / Skipped / Failed records out.

`read_path` is the one entry point: a file, a directory (walked), or `-` for standard input.
A file that cannot be read at all becomes one Failed record, so the other files still get read.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import InputError
from .bibtex_reader import read_bibtex
from .common import decode, read_text
from .csv_reader import looks_like_csv, read_csv
from .json_reader import read_json, read_jsonl
from .pdf_reader import read_pdf
from .records import Failed, Paper, Record, Skipped
from .ris_reader import read_ris
from .text_reader import read_text_file

__all__ = ["Failed", "Paper", "Record", "Skipped", "READERS", "STDIN_NAME", "read_path", "sniff_format"]

STDIN_NAME = "<stdin>"

READERS: dict[str, Callable[..., Iterator[Record]]] = {
    ".csv": read_csv,
    ".tsv": read_csv,
    ".json": read_json,
    ".jsonl": read_jsonl,
    ".bib": read_bibtex,
    ".ris": read_ris,
    ".txt": read_text_file,
    ".md": read_text_file,
    ".pdf": read_pdf,
}
# Formats whose reader can also read a paper's body (`index --full-text`).
FULL_TEXT_FORMATS = frozenset({".pdf"})


def read_path(path: str, full_text: bool = False) -> Iterator[Record]:
    """Records from a file, a directory (recursively, sorted, hidden files skipped) or `-` (stdin).
    With `full_text`, papers of FULL_TEXT_FORMATS carry their body too.

    Raises InputError at once for a path that does not exist; every other problem is a record.
    """
    path = os.fspath(path)
    if path == "-":
        return _guarded(_read_stdin(), STDIN_NAME)
    if not os.path.exists(path):
        raise InputError(path, "no such file or directory")
    if os.path.isdir(path):
        return _read_dir(path, full_text)
    return _read_file(path, full_text)


def sniff_format(text: str) -> str:
    """The extension whose reader fits `text`: JSON, JSON Lines, BibTeX, RIS, CSV, else plain text."""
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("["):
        return ".json"
    if head.startswith("{"):
        try:
            json.loads(head)
        except (ValueError, RecursionError):
            return ".jsonl"  # several objects, one per line (or a broken one: reported per line)
        return ".json"
    if head.startswith("@"):
        return ".bib"
    if head.startswith("TY  -"):
        return ".ris"
    return ".csv" if looks_like_csv(head) else ".txt"


def _guarded(records: Iterator[Record], name: str) -> Iterator[Record]:
    """`records`, with a reader's InputError turned into a final Failed record."""
    try:
        yield from records
    except InputError as e:
        yield Failed(e.where, e.reason)


def _read_file(path: str, full_text: bool = False) -> Iterator[Record]:
    ext = os.path.splitext(path)[1].lower()
    reader = READERS.get(ext)
    if reader is None:
        yield Skipped(path, f"unsupported file type {ext or '(no extension)'}")
        return
    records = reader(path, path, full_text=True) if full_text and ext in FULL_TEXT_FORMATS else reader(path, path)
    yield from _guarded(records, path)


def _read_stdin() -> Iterator[Record]:
    stream = sys.stdin
    if stream is None:
        raise InputError(STDIN_NAME, "no standard input")
    buffer = getattr(stream, "buffer", None)
    try:  # bytes when we can get them, so that bad UTF-8 is reported like it is for files
        text = decode(buffer.read(), STDIN_NAME) if buffer is not None else read_text(stream, STDIN_NAME)
    except OSError as e:
        raise InputError(STDIN_NAME, e.strerror or str(e)) from None
    reader = READERS[sniff_format(text)]
    yield from reader(io.StringIO(text, newline=""), STDIN_NAME)


def _read_dir(root: str, full_text: bool = False) -> Iterator[Record]:
    errors: list[OSError] = []
    found = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for filename in filenames:
            if not filename.startswith(".") and os.path.splitext(filename)[1].lower() in READERS:
                found.append(os.path.join(dirpath, filename))
    for error in errors:
        yield Failed(error.filename or root, error.strerror or str(error))
    for path in sorted(found, key=lambda p: Path(p).relative_to(root).parts):
        yield from _read_file(path, full_text)
