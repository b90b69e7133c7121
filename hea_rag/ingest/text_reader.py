"""Plain text and Markdown: one file is one paper, named by the file itself.

The title is the first line when it is a Markdown heading (`# ...`), or when it is short, does not
end in a period, and a blank line follows it; the rest is the abstract.
"""

from __future__ import annotations

from collections.abc import Iterator

from .common import Source, make_record, read_text
from .records import Failed, Paper, Skipped

_MAX_TITLE = 200  # characters; a longer first line is prose, not a title


def _heading(line: str) -> str | None:
    """The text of a Markdown ATX heading (`## Title ##` -> `Title`), None if `line` is not one."""
    level = len(line) - len(line.lstrip("#"))
    if not 1 <= level <= 6 or not line[level : level + 1].isspace():
        return None
    return line[level:].strip().rstrip("#").strip()


def split_title(text: str) -> tuple[str | None, str]:
    """(title or None, body) of a text file's content."""
    lines = text.strip().split("\n")
    first = lines[0].strip()
    heading = _heading(first)
    if heading is not None:
        return heading or None, "\n".join(lines[1:])
    short = len(first) <= _MAX_TITLE and not first.endswith(".")  # titles rarely end in a period
    if len(lines) > 2 and not lines[1].strip() and short:
        return first, "\n".join(lines[2:])
    return None, text


def read_text_file(source: Source, name: str) -> Iterator[Paper | Skipped | Failed]:
    """The one paper of a .txt/.md file."""
    text = read_text(source, name).replace("\r\n", "\n").replace("\r", "\n")
    title, body = split_title(text) if text.strip() else (None, "")
    yield make_record(name, {"title": title, "abstract": body})
