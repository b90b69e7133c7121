"""Abstract cleanup: one spelling per character, no markup, no publisher boilerplate.

The copyright line Scopus appends to every abstract is the same across papers of a publisher; left
in, it becomes retrievable "content" and matches questions about Elsevier rather than alloys.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache

from .records import normalize_text

# Abstract fields that hold no abstract, compared after case-folding and trimming brackets/dots.
_PLACEHOLDERS = frozenset(
    {
        "",
        "no abstract available",
        "no abstract",
        "abstract not available",
        "abstract unavailable",
        "not available",
        "abstract",
        "n/a",
        "na",
        "none",
        "null",
        "nan",
        "-",
    }
)

# Characters worth a look: non-ASCII, and ASCII control characters other than whitespace.
_SUSPECT = re.compile(r"[^\x00-\x7f]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Inline markup from JATS/HTML exports (Crossref abstracts, `Al<sub>0.5</sub>`): dropped outright.
_INLINE_TAG = re.compile(
    r"</?(?:jats:)?(?:sub|sup|inf|i|b|em|strong|italic|bold|sc|span)(?:\s[^<>]*)?>", re.I
)
# Block markup: becomes a space so that paragraphs do not run together.
_BLOCK_TAG = re.compile(r"</?(?:jats:)?(?:p|br|sec|title|abstract)(?:\s[^<>]*)?/?>", re.I)
_SCOPUS_NOTES = re.compile(r"\[Figure not available: see fulltext\.?\]", re.I)
# Start of a copyright notice: `©`, `Copyright ©`, `Copyright 2024`. Not `(c) 2024`: in an
# abstract that is more likely "(a) 1000 °C, (b) ..., (c) 1200 °C" than a notice.
_NOTICE_START = r"(?:copyright\s*)?©|copyright(?=\s+\d{4})"
_NOTICE = re.compile(rf"(?<!\S)(?:{_NOTICE_START})", re.I)
# Scopus joins a paper's several abstracts with "; ": where one ends and more text (not another
# notice) follows, a notice before it is not trailing. A lookahead, to see overlapping ones too.
_JOINED_ABSTRACT = re.compile(rf"(?=[.!?]\s*;\s+(?!{_NOTICE_START})\S)", re.I)


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """NFKC for one character, except where NFKC would lose chemistry or crystallography."""
    category = unicodedata.category(ch)
    if category == "Cc":
        return " "
    if category == "Cf":  # zero-width spaces, soft hyphens, BOMs: invisible, but split tokens
        return ""
    if category == "Cs":  # a lone surrogate (JSON "\\ud800") cannot be encoded as UTF-8 later
        return "\ufffd"
    # NFKC flattens 10⁻³ into 10-3 and ½ into 1⁄2; keep them as written.
    if unicodedata.decomposition(ch).startswith(("<super>", "<sub>", "<fraction>")):
        return ch
    folded = unicodedata.normalize("NFKC", ch)
    # Spacing accents (the ¯ and ‾ of Miller indices such as <11¯0>) would gain a space.
    if len(folded) > 1 and folded[0] == " ":
        return ch
    return folded  # µ -> μ, Å (angstrom sign) -> Å, ℃ -> °C, full-width ，（ -> , (


def clean_text(text: str) -> str:
    """Unicode folding and whitespace collapse for any short field (titles, authors)."""
    text = _SUSPECT.sub(lambda m: _fold_char(m.group()), text)
    return normalize_text(unicodedata.normalize("NFC", text))


def strip_markup(text: str) -> str:
    """Drop JATS/HTML tags; entities are unescaped only where there was markup to begin with."""
    if not (_INLINE_TAG.search(text) or _BLOCK_TAG.search(text)):
        return text
    text = html.unescape(text)
    return _BLOCK_TAG.sub(" ", _INLINE_TAG.sub("", text))


def strip_copyright(text: str) -> str:
    """`text` without its trailing copyright notices: cut at the first notice that only notices
    follow (no further abstract), so "... © 2024 Elsevier B.V. All rights reserved." loses its tail.
    """
    joined = [m.start() for m in _JOINED_ABSTRACT.finditer(text)]
    last_joined = joined[-1] if joined else -1
    trailing = [m.start() for m in _NOTICE.finditer(text) if m.start() > last_joined]
    return text[: trailing[0]].rstrip() if trailing else text


def is_placeholder(text: str) -> bool:
    return text.strip(" []().").casefold() in _PLACEHOLDERS


def clean_abstract(text: str | None) -> str:
    """A cleaned abstract, or "" when there is none (empty, `[No abstract available]`...)."""
    if not text:
        return ""
    text = clean_text(strip_markup(text))
    text = normalize_text(strip_copyright(_SCOPUS_NOTES.sub(" ", text)))
    return "" if is_placeholder(text) else text
