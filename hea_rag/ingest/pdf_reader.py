"""PDF papers: one file is one paper, read with pdfium (pypdfium2: Apache-2.0/BSD, fast, keeps
ligatures and line-end hyphens apart from the text; see scripts/bench_pdf.py for the choice).

Only the first pages are read for the title, abstract, DOI, year and authors; with
`full_text=True` the body is read too, as sections cut per page, up to the references. A file
that cannot give text says why, in words a person can act on (OCR it, give the password...).
"""

from __future__ import annotations

import os
import re
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

from ..errors import InputError
from .clean import clean_text
from .common import Source, make_record
from .pdf_fields import (
    abstract_span,
    abstract_text,
    authors,
    find_doi,
    find_year,
    plausible_metadata_title,
    references_start,
    title_span,
)
from .pdf_layout import Line, page_lines
from .pdf_text import clean_pdf_text, document_vocabulary
from .records import Failed, Paper, Section, Skipped

HEAD_PAGES = 2  # the title, abstract and DOI stand on page 1, or on page 2 after a cover sheet
_MIN_TEXT_CHARS = 20  # fewer letters than this on the first pages: a scan without a text layer
_NUMBERED_HEADING = re.compile(r"^\d+(?:\.\d+)*\.?\s+[A-Z][A-Za-z ,&/-]{2,60}$")
_NAMED_HEADING = re.compile(r"^(?:introduction|background|methods?|materials and methods|experimental|"
                            r"results|discussion|results and discussion|conclusions?|"
                            r"acknowledge?ments?|funding|appendix)$", re.I)


def read_pdf(source: Source, name: str, full_text: bool = False) -> Iterator[Paper | Skipped | Failed]:
    """The one paper of a PDF file (`source` is its path)."""
    document = open_pdf(os.fspath(source), name)
    try:
        head = [line for n in range(min(HEAD_PAGES, len(document)))
                for line in page_lines(document[n], n + 1)]
        if sum(ch.isalpha() for line in head for ch in line.text) < _MIN_TEXT_CHARS:
            raise InputError(name, "no text layer (a scanned image?): OCR it first, "
                                   "e.g. `ocrmypdf in.pdf out.pdf`")
        record = make_record(name, paper_fields(head, document.get_metadata_dict()))
        if full_text and isinstance(record, Paper):
            record = replace(record, body=read_body(document, head))
    finally:
        document.close()
    yield record


def open_pdf(path: str, name: str):
    """The pypdfium2 document, or InputError saying why not: not a PDF, encrypted, damaged."""
    import pypdfium2 as pdfium

    _check_header(path, name)
    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as error:
        raise InputError(name, _why_unreadable(str(error))) from None
    if len(document) == 0:
        document.close()
        raise InputError(name, "damaged PDF: no pages")
    return document


def _check_header(path: str, name: str) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
    except OSError as error:
        raise InputError(name, error.strerror or str(error)) from None
    if b"%PDF-" in head:
        return
    if re.search(rb"<!doctype html|<html|<head|<body", head, re.I):
        raise InputError(name, "not a PDF but an HTML page saved as .pdf: download the PDF itself")
    raise InputError(name, "not a PDF (no %PDF header)")


def _why_unreadable(message: str) -> str:
    if "password" in message.lower():
        return "encrypted PDF: it needs a password; save an unencrypted copy first"
    if "security" in message.lower():
        return "encrypted PDF with an unsupported security handler"
    return f"damaged or truncated PDF ({message.rstrip('.')})"


def paper_fields(lines: list[Line], metadata: dict) -> dict[str, object]:
    """The raw fields of make_record from the lines of the first pages."""
    span = abstract_span(lines)
    fields: dict[str, object] = {"doi": find_doi(lines), "abstract": ""}
    fields["year"] = find_year("\n".join(line.text for line in lines if line.page == 1))
    if span is not None:
        fields["abstract"] = abstract_text(lines, span, document_vocabulary([x.text for x in lines]))
    title = title_span(lines, span[0] if span else len(lines))
    if title is not None:
        fields["title"] = clean_pdf_text([line.text for line in lines[title[0]:title[1]]])
        fields["authors"] = authors(lines, title[1], span[0] if span else len(lines))
    else:
        fields["title"] = plausible_metadata_title(metadata.get("Title"))
    return fields


def read_body(document, head: list[Line]) -> tuple[Section, ...]:
    """The body after the abstract, up to the references, as sections cut per page; running
    headers and footers (lines printed on many pages) are left out."""
    span = abstract_span(head)
    lines = list(head[span[1]:] if span else head)
    for number in range(HEAD_PAGES, len(document)):
        lines += page_lines(document[number], number + 1)
    lines = _without_running_lines(lines[: references_start(lines)])
    vocabulary = document_vocabulary([line.text for line in lines])
    return tuple(_sections(lines, vocabulary))


def _without_running_lines(lines: list[Line]) -> list[Line]:
    """`lines` less running headers and footers: a line (digits aside) printed among the first
    or last three lines of two or more pages."""
    by_page: dict[int, list[Line]] = {}
    for line in lines:
        by_page.setdefault(line.page, []).append(line)
    edges = Counter(shape for page in by_page.values()
                    for shape in {_shape(line.text) for line in page[:3] + page[-3:]})
    return [line for line in lines if edges[_shape(line.text)] < 2]


def _shape(text: str) -> str:
    return re.sub(r"\d+", "#", text.strip().lower())


def _sections(lines: list[Line], vocabulary) -> Iterator[Section]:
    """Sections per page: a new one at each heading and each new page."""
    body_size = statistics.median(line.size for line in lines) if lines else 0.0
    heading, page, texts = "", lines[0].page if lines else 1, []
    for line in lines:
        is_heading = _is_heading(line, body_size)
        if (is_heading or line.page != page) and texts:
            yield from _section(page, heading, texts, vocabulary)
            texts = []
        if is_heading:
            heading = clean_text(line.text)
        else:
            texts.append(line.text)
        page = line.page
    if texts:
        yield from _section(page, heading, texts, vocabulary)


def _is_heading(line: Line, body_size: float) -> bool:
    """Numbered (`2.1 Methods`), a usual section name, or a short line in capitals or in print
    larger than the body's."""
    text = line.text.strip()
    if len(text.split()) > 8 or text.endswith((".", ",")):
        return False
    short_caps = text.isupper() and len(text) > 3
    return bool(_NUMBERED_HEADING.match(text) or _NAMED_HEADING.match(text) or short_caps
                or (line.size > 1.15 * body_size and text[:1].isupper()))


def _section(page: int, heading: str, texts: list[str], vocabulary) -> Iterator[Section]:
    text = clean_text(clean_pdf_text(texts, vocabulary))
    if len(text.split()) >= 8:  # a stray caption or table cell is no passage
        yield Section(page, heading, text)
