"""Title, abstract, DOI, year and authors of a paper, from the lines of its first pages.

Layout, not metadata: the title is the largest print above the abstract (PDF /Title fields hold
junk such as `5` or a file path more often than titles); the abstract starts after an `Abstract`
heading (`A B S T R A C T` too), else at a structured abstract's first label (`Objectives.`), else
it is the first long paragraph; it runs while the print size stays the same and ends at keywords,
an introduction heading or a copyright line.
"""

from __future__ import annotations

import re
from collections import Counter

from .doi import normalize_doi
from .pdf_layout import Line
from .pdf_text import clean_pdf_text

_ABSTRACT_HEADING = re.compile(
    r"^(?:abstract|a\s+b\s+s\s+t\s+r\s+a\s+c\s+t|summary)\b\s*[:.—–-]?\s*(.*)$", re.I)
_STRUCTURED_START = re.compile(r"^(?:objectives?|background|purpose|aims?|context)\s*[.:]\s+\S", re.I)
_ABSTRACT_END = re.compile(
    r"^(?:key\s*words?|index terms|subjects\b|abbreviations|citation:|received\b|©|copyright\b|"
    r"this is an open access|a\s*r\s*t\s*i\s*c\s*l\s*e\s+i\s*n\s*f\s*o|highlights\b|"
    r"(?:\d+\.?\s*|i\.\s*)?introduction\b|\d+\.?\s+[A-Z][a-z]+\s*$)", re.I)
# Article-type labels printed as large as the title on some covers.
_LABELS = frozenset("""research article|article|original article|review article|review|research paper|
    full length article|letter|communication|short communication|open access|research|
    original research|regular article|technical note|editorial|original paper|preprint""".replace(
    "\n", "").split("|"))
_NOT_TITLE = re.compile(r"doi|https?://|@|journal homepage|contents lists|volume \d", re.I)
_AUTHOR_STOP = re.compile(r"@|universit|department|institute|college|school of|laborator|"
                          r"received|correspondence|abstract", re.I)
_MARKERS = re.compile(r"[\d∗†‡§¶☯*#,]+$")
_DOI = re.compile(r"10\.\d{4,9}/[^\s\"<>]+")
_GLYPH_JUNK = re.compile(r"(?:/H\d{5})+")
_DOI_LABEL = re.compile(r"(?:doi\s*[:.]?\s*|doi\.org/)$", re.I)
_REFERENCES = re.compile(r"^(?:\d+\.?\s*)?(?:references|bibliography|literature cited)\s*$", re.I)
_YEAR = r"(19[5-9]\d|20\d\d)"
_YEAR_CUES = (re.compile(rf"(?:©|copyright|published).{{0,24}}?(?<!\d){_YEAR}(?!\d)", re.I),
              re.compile(rf"\({_YEAR}\)"), re.compile(rf"(?<!\d){_YEAR}(?!\d)"))
_MIN_PARAGRAPH_WORDS = 40  # an unlabelled abstract is the first paragraph at least this long


def abstract_span(lines: list[Line]) -> tuple[int, int, str] | None:
    """(index of the first line, index past the last, text before the first line's own text
    to drop) of the abstract in `lines`, or None when there is none."""
    start = _labelled_start(lines)
    if start is None:
        return None
    first, cut = start
    end = first + 1
    while end < len(lines) and _continues_abstract(lines[first], lines[end]):
        end += 1
    return first, end, cut


def _labelled_start(lines: list[Line]) -> tuple[int, str] | None:
    for index, line in enumerate(lines):
        match = _ABSTRACT_HEADING.match(line.text)
        if match and match.group(1).strip():
            return index, line.text[: match.start(1)]
        if match and index + 1 < len(lines):
            return index + 1, ""
    for index, line in enumerate(lines):
        if _STRUCTURED_START.match(line.text):
            return index, ""
    return _first_paragraph(lines)


def _first_paragraph(lines: list[Line]) -> tuple[int, str] | None:
    """The first run of same-size lines with enough words, skipping affiliations and notices."""
    index = 0
    while index < len(lines):
        end = index + 1
        while end < len(lines) and _same_size(lines[index], lines[end]) and lines[end].page == lines[index].page:
            end += 1
        text = " ".join(line.text for line in lines[index:end])
        if len(text.split()) >= _MIN_PARAGRAPH_WORDS and not _AUTHOR_STOP.search(lines[index].text):
            return index, ""
        index = end
    return None


def _same_size(a: Line, b: Line, tolerance: float = 0.08) -> bool:
    return abs(a.size - b.size) <= tolerance * max(a.size, b.size, 1e-6)


def _continues_abstract(first: Line, line: Line) -> bool:
    return (line.page == first.page and _same_size(first, line, 0.1)
            and not _ABSTRACT_END.match(line.text))


def abstract_text(lines: list[Line], span: tuple[int, int, str], vocabulary) -> str:
    first, end, cut = span
    texts = [line.text for line in lines[first:end]]
    texts[0] = texts[0][len(cut):]
    return clean_pdf_text(texts, vocabulary)


def title_span(lines: list[Line], before: int) -> tuple[int, int] | None:
    """(first, past last) index of the title: the largest print among the lines before the
    abstract on its page, article-type labels and link lines left out."""
    page = lines[before].page if before < len(lines) else 1
    candidates = [i for i in range(min(before, len(lines))) if lines[i].page == page
                  and _could_be_title(lines[i].text)]
    if not candidates:
        return None
    largest = max(lines[i].size for i in candidates)
    first = next(i for i in candidates if lines[i].size >= 0.97 * largest)
    end = first + 1
    while end in candidates and lines[end].size >= 0.97 * largest:
        end += 1
    return first, end


def _could_be_title(text: str) -> bool:
    words = text.split()
    return (len(re.findall(r"[A-Za-z]", text)) >= 3 and text.strip().lower() not in _LABELS
            and not _NOT_TITLE.search(text) and len(words) <= 40)


def plausible_metadata_title(title: str | None) -> str | None:
    """A PDF /Title field when it looks like a title (words, no path or file name)."""
    title = (title or "").strip()
    if len(title.split()) < 3 or re.search(r"[/\\]|\.(?:pdf|docx?|tex|dvi)\b|^microsoft|untitled",
                                           title, re.I):
        return None
    return title


def authors(lines: list[Line], after_title: int, before: int) -> str | None:
    """The author lines right after the title, as `Name; Name`, footnote marks dropped."""
    found: list[str] = []
    for line in lines[after_title:before][:4]:
        if _AUTHOR_STOP.search(line.text) or (found and not _same_size(lines[after_title], line)):
            break
        found.append(line.text)
    names = re.split(r",|\band\b|;", " ".join(found))
    cleaned = [_MARKERS.sub("", name.strip(" ,")).strip(" ,") for name in names]
    people = [n for n in cleaned if len(n.split()) >= 2 and not re.search(r"\d", n)]
    return "; ".join(people) or None


def find_doi(lines: list[Line]) -> str | None:
    """The paper's own DOI: labelled ones (`doi:`, `DOI `, `doi.org/`) first, then the most
    printed; those after a References heading belong to cited works and are ignored."""
    scores: Counter[str] = Counter()
    order: dict[str, int] = {}
    for index, line in enumerate(lines):
        if _REFERENCES.match(line.text):
            break
        following = lines[index + 1].text if index + 1 < len(lines) else ""
        for match in _DOI.finditer(line.text):
            doi = _doi_at(line.text, match, following)
            if doi:
                labelled = bool(_DOI_LABEL.search(line.text[: match.start()]))
                scores[doi] += 10 if labelled else 1
                order.setdefault(doi, len(order))
    if not scores:
        return None
    return max(scores, key=lambda d: (scores[d], -order[d]))


def _doi_at(text: str, match: re.Match, following: str) -> str | None:
    raw = _GLYPH_JUNK.split(match.group())[0]
    if match.end() == len(text) and raw[-1:] in "./-_" and following:
        raw += following.split()[0]  # `.../journal.` then `pone.0197919` on the next line
    raw = raw.rstrip(".,;:")
    while raw[-1:] in ")]" and raw.count(raw[-1]) > raw.count("(" if raw[-1] == ")" else "["):
        raw = raw[:-1].rstrip(".,;:")
    return normalize_doi(raw)


def find_year(text: str) -> int | None:
    """The publication year: after ©/Copyright/Published, else in brackets, else the first."""
    for cue in _YEAR_CUES:
        match = cue.search(text)
        if match:
            return int(match.group(1))
    return None


def references_start(lines: list[Line]) -> int:
    """Index of the References heading, or len(lines)."""
    return next((i for i, line in enumerate(lines) if _REFERENCES.match(line.text)), len(lines))
