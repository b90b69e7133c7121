"""Typeset small HEA papers as real PDFs (reportlab), with formulas set as real subscripts.

Used by tests/test_pdf.py and scripts/bench_pdf.py; the PDFs are made at run time, never
committed. Two layouts: `journal` (a running header with the DOI, `A B S T R A C T` in spaced
letters, the body in two columns) and `preprint` (one column, an unlabelled abstract, the DOI as
`doi:` in a footer, optionally after a cover sheet). Fonts: DejaVu Sans when the system has it
(Greek letters), else reportlab's bundled Vera (Latin only).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# The amount after an element or a closing bracket inside a formula: set as a subscript.
_AMOUNT = re.compile(r"(?<=[A-Za-z)])(\d+(?:\.\d+)?)")


@dataclass
class TypesetPaper:
    title: str
    abstract: str
    doi: str
    authors: list[str] = field(default_factory=lambda: ["A. Writer", "B. Reader"])
    year: int = 2024
    body: list[tuple[str, str]] = field(default_factory=list)  # (heading, text) sections
    references: list[str] = field(default_factory=list)


def subscripted(text: str) -> str:
    """`text` as reportlab markup, the amounts of alloy formulas as <sub>: Al<sub>0.3</sub>CoCrFeNi."""
    from hea_rag.lexical import parse_formula

    out = []
    for token in re.split(r"(\s+)", text):
        core = token.strip(".,;:()[]")
        if core and any(c.isdigit() for c in core) and parse_formula(core) is not None:
            start = token.index(core)
            marked = _AMOUNT.sub(r"<sub>\1</sub>", escape(core))
            out.append(escape(token[:start]) + marked + escape(token[start + len(core):]))
        else:
            out.append(escape(token))
    return "".join(out)


def _font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    import reportlab

    if _DEJAVU.is_file():
        path, name = _DEJAVU, "DejaVuSans"
    else:
        path, name = Path(reportlab.__file__).parent / "fonts" / "Vera.ttf", "Vera"
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, str(path)))
    return name


def _styles(font: str) -> dict:
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=12)
    return {
        "title": ParagraphStyle("title", base, fontSize=17, leading=21, spaceAfter=8),
        "authors": ParagraphStyle("authors", base, fontSize=11, leading=14, spaceAfter=6),
        "small": ParagraphStyle("small", base, fontSize=7.5, leading=9),
        "heading": ParagraphStyle("heading", base, fontSize=11.5, leading=15, spaceBefore=6, spaceAfter=3),
        "body": base,
    }


def typeset(path: Path, paper: TypesetPaper, layout: str = "journal", cover: bool = False,
            encrypt: str | None = None) -> Path:
    """Write `paper` as a PDF at `path` in the given layout; `encrypt` sets a user password."""
    from reportlab.lib.pagesizes import A4

    font = _font()
    styles = _styles(font)
    story = (_cover(styles) if cover else []) + (
        _journal_story(paper, styles) if layout == "journal" else _preprint_story(paper, styles))
    doc = _document(path, paper, layout, font, A4, encrypt)
    doc.build(story)
    return path


def _document(path, paper, layout, font, pagesize, encrypt):
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate

    width, height = pagesize
    margin, gap = 50, 18
    column = (width - 2 * margin - gap) / 2
    full = Frame(margin, height * 0.45, width - 2 * margin, height * 0.55 - margin, id="head")
    left = Frame(margin, margin, column, height * 0.45 - margin, id="left")
    right = Frame(margin + column + gap, margin, column, height * 0.45 - margin, id="right")
    tall_left = Frame(margin, margin, column, height - 2 * margin, id="tl")
    tall_right = Frame(margin + column + gap, margin, column, height - 2 * margin, id="tr")
    single = Frame(margin, margin, width - 2 * margin, height - 2 * margin, id="single")

    def decorate(canvas, doc):
        canvas.saveState()
        canvas.setFont(font, 7)
        if layout == "journal":
            canvas.drawString(margin, height - 30, f"Journal of Invented Alloys 12 ({paper.year}) "
                                                   f"1-9   https://doi.org/{paper.doi}")
        else:
            canvas.drawString(margin, 25, f"Preprint {paper.year}, doi: {paper.doi}   page {doc.page}")
        canvas.restoreState()

    doc = BaseDocTemplate(str(path), pagesize=pagesize, title="5", encrypt=encrypt)
    if layout == "journal":
        doc.addPageTemplates([PageTemplate("first", [full, left, right], onPage=decorate, autoNextPageTemplate="rest"),
                              PageTemplate("rest", [tall_left, tall_right], onPage=decorate)])
    else:
        doc.addPageTemplates([PageTemplate("single", [single], onPage=decorate)])
    return doc


def _cover(styles) -> list:
    from reportlab.platypus import PageBreak, Paragraph

    return [Paragraph("Institutional repository copy", styles["heading"]),
            Paragraph("This is the accepted manuscript, downloaded from an institutional repository. "
                      "Please cite the published version.", styles["body"]),
            PageBreak()]


def _journal_story(paper: TypesetPaper, styles) -> list:
    from reportlab.platypus import FrameBreak, Paragraph

    return [
        Paragraph(subscripted(paper.title), styles["title"]),
        Paragraph(escape(", ".join(paper.authors)), styles["authors"]),
        Paragraph("Department of Materials, Invented University, Nowhere", styles["small"]),
        Paragraph("A B S T R A C T", styles["heading"]),
        Paragraph(subscripted(paper.abstract), styles["body"]),
        Paragraph("Keywords: high-entropy alloys; microstructure", styles["small"]),
        FrameBreak(),
        *_body(paper, styles),
    ]


def _preprint_story(paper: TypesetPaper, styles) -> list:
    from reportlab.platypus import Paragraph, Spacer

    return [
        Paragraph(subscripted(paper.title), styles["title"]),
        Paragraph(escape(" and ".join(paper.authors)), styles["authors"]),
        Spacer(1, 8),
        Paragraph(subscripted(paper.abstract), styles["body"]),
        Spacer(1, 8),
        *_body(paper, styles),
    ]


def _body(paper: TypesetPaper, styles) -> list:
    from reportlab.platypus import Paragraph

    story = []
    for number, (heading, text) in enumerate(paper.body, start=1):
        story += [Paragraph(f"{number}. {escape(heading)}", styles["heading"]),
                  Paragraph(subscripted(text), styles["body"])]
    if paper.references:
        story.append(Paragraph("References", styles["heading"]))
        story += [Paragraph(escape(ref), styles["small"]) for ref in paper.references]
    return story


# --- broken files -----------------------------------------------------------------------------


def image_only_pdf(path: Path) -> Path:
    """A one-page PDF whose only content is a picture of text: a scan without a text layer."""
    from PIL import Image, ImageDraw
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = Image.new("L", (800, 300), 255)
    ImageDraw.Draw(image).text((20, 20), "Scanned page: Al0.3CoCrFeNi alloy", fill=0)
    page = canvas.Canvas(str(path), pagesize=A4)
    page.drawImage(ImageReader(image), 50, 400, width=500, height=190)
    page.save()
    return path


def truncated_copy(source: Path, path: Path, keep: float = 0.4) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def html_named_pdf(path: Path) -> Path:
    path.write_text("<!DOCTYPE html>\n<html><head><title>Article</title></head>"
                    "<body><p>Please enable cookies to download this PDF.</p></body></html>\n",
                    encoding="utf-8")
    return path


def filler_body(seed_text: str, sections: int = 4, words: int = 260) -> list[tuple[str, str]]:
    """Body sections long enough to fill pages, made of plain methods-style sentences (they say
    nothing about the abstract's alloy, so they cannot answer the abstract's questions)."""
    sentences = [
        "The samples were ground with silicon carbide paper and polished before each measurement.",
        "Diffraction patterns were recorded with copper radiation over a wide angular range.",
        "Each value is the mean of at least three measurements, and the scatter is given as one standard deviation.",
        "Specimens for electron microscopy were thinned by twin-jet polishing at low temperature.",
        "The furnace was purged with argon several times before melting to limit oxidation.",
    ]
    headings = ["Introduction", "Experimental procedure", "Results", "Discussion", "Conclusions"]
    out = []
    for index in range(sections):
        text = " ".join(sentences[(index + i) % len(sentences)] for i in range(words // 14))
        out.append((headings[index % len(headings)], f"{seed_text} {text}" if index == 0 else text))
    return out


if __name__ == "__main__":  # a quick look: python tests/pdf_typeset.py OUT.pdf
    import sys

    sample = TypesetPaper("Grain refinement of Al0.3CoCrFeNi", "An Al0.3CoCrFeNi alloy was rolled.",
                          "10.9999/fake.1")
    typeset(Path(sys.argv[1] if len(sys.argv) > 1 else os.devnull), sample)
