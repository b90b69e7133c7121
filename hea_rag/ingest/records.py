"""The records every reader yields: a Paper, or a note that a row was skipped or failed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# Longest abstract a record may hold, in characters as read. Real abstracts stay under ~5,000;
# anything past this is a whole book or a runaway file that would cost minutes and gigabytes.
MAX_ABSTRACT_CHARS = 100_000


def normalize_text(text: str) -> str:
    """Whitespace runs (non-breaking spaces included) collapsed to one space, ends stripped."""
    return " ".join(text.split())


def raw_sha1(text: str) -> str:
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()


def text_key(abstract: str) -> str:
    """Dedup key for an abstract: sha1 of its case-folded, whitespace-normalized text."""
    return hashlib.sha1(normalize_text(abstract).casefold().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Section:
    """A piece of a paper's body (read with `index --full-text`): its text on one page."""

    page: int  # 1-based
    heading: str
    text: str


@dataclass(frozen=True)
class Paper:
    """One paper as read from any input format. `abstract` is already cleaned."""

    abstract: str
    doi: str | None = None
    title: str | None = None
    authors: str | None = None
    year: int | None = None
    source: str | None = None
    origin: str = ""  # where it was read, e.g. "papers.csv row 12"
    raw_sha1: str | None = field(default=None, compare=False)  # sha1 of the abstract as read, whitespace-normalized: QA files
    # that point at abstracts by hash (like the dev QA set) hash the text before any cleaning
    body: tuple[Section, ...] = field(default=(), compare=False, repr=False)  # full text, if read

    @property
    def text_key(self) -> str:
        return text_key(self.abstract)

    @property
    def id(self) -> str:
        """A stable identity: the DOI when known, else a hash of the abstract."""
        return f"doi:{self.doi}" if self.doi else f"sha1:{self.text_key[:16]}"


@dataclass(frozen=True)
class Skipped:
    """A row that holds nothing to index (an empty abstract, a file with no text column...)."""

    where: str
    reason: str


@dataclass(frozen=True)
class Failed:
    """A row or file that could not be parsed."""

    where: str
    reason: str


Record = Paper | Skipped | Failed
