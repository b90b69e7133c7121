"""Lines of text from a PDF page, with their font size and sub/superscripts marked.

pdfium (pypdfium2) gives characters in reading order with their positions. Its own line breaks
fall after every raised or lowered run, so `(FeCoNi)86Al7Ti7` comes out as `(FeCoNi)86Al7` and
`Ti7` on two lines. Here a "line" pdfium breaks is glued back when it continues on the same
baseline to the right; within a line, characters set below the baseline are subscripts (written
straight after their element: `Al0.3`) and those set above are superscripts (written `10^3` after
a digit, so an exponent never reads as more digits; `cm3` after a letter, as units are typed).
"""

from __future__ import annotations

import ctypes
import statistics
from dataclasses import dataclass, field

# A character this far (in units of the line's size) off the baseline is a sub/superscript.
SCRIPT_SHIFT = 0.12
# A following piece on a baseline this close (in units of the line's size) is the same line.
SAME_LINE = 0.6


@dataclass(frozen=True)
class Char:
    text: str
    x: float  # origin: left end of the baseline
    y: float
    size: float  # height of the loose glyph box: proportional to the font size
    right: float  # right edge of the glyph box


@dataclass
class Line:
    chars: list[Char] = field(default_factory=list)
    page: int = 1

    @property
    def size(self) -> float:
        """The font size of most of the line: the commonest glyph height (to half a point), so
        that the subscripts of a formula do not shrink a title line."""
        sizes = [round(2 * c.size) / 2 for c in self.chars if not c.text.isspace()]
        return statistics.mode(sizes) if sizes else 0.0

    @property
    def baseline(self) -> float:
        ys = [round(c.y) for c in self.chars if not c.text.isspace()]
        return statistics.mode(ys) if ys else 0.0

    @property
    def text(self) -> str:
        return _line_text(self.chars, self.baseline, self.size).strip()


def page_lines(page, number: int) -> list[Line]:
    """The lines of one pypdfium2 page, in pdfium's reading order (1-based page `number`)."""
    textpage = page.get_textpage()
    try:
        pieces = _pieces(textpage)
    finally:
        textpage.close()
    lines: list[Line] = []
    for piece in pieces:
        if lines and _continues(lines[-1], piece):
            _join(lines[-1], piece)
        else:
            lines.append(Line(piece, number))
    return [line for line in lines if line.text]


def _pieces(textpage) -> list[list[Char]]:
    """The characters of the page, cut where pdfium generated a line break or where the text
    jumps back to the left (pdfium runs some hyphenated lines together)."""
    import pypdfium2.raw as raw

    handle = textpage.raw
    x, y, box = ctypes.c_double(), ctypes.c_double(), raw.FS_RECTF()
    pieces: list[list[Char]] = [[]]
    for index in range(raw.FPDFText_CountChars(handle)):
        code = raw.FPDFText_GetUnicode(handle, index)
        if code in (10, 13):
            if pieces[-1]:
                pieces.append([])
            continue
        raw.FPDFText_GetCharOrigin(handle, index, x, y)
        raw.FPDFText_GetLooseCharBox(handle, index, box)
        # pdfium marks a hyphen at a line end (U+FFFE, or the font's own code such as U+0002)
        text = "-" if code == 0xFFFE or raw.FPDFText_IsHyphen(handle, index) == 1 else chr(code)
        char = Char(text, x.value, y.value, box.top - box.bottom, box.right)
        previous = pieces[-1][-1] if pieces[-1] else None
        if previous is not None and char.x < previous.x - 2 * max(char.size, 1.0):
            pieces.append([])
        pieces[-1].append(char)
    return [piece for piece in pieces if piece]


def _continues(line: Line, piece: list[Char]) -> bool:
    """Whether `piece` goes on `line`: to its right, on (nearly) the same baseline."""
    first = next((c for c in piece if not c.text.isspace()), piece[0])
    last = line.chars[-1]
    size = line.size or first.size
    return first.x >= last.x - 0.5 and abs(_main_y(piece) - line.baseline) < SAME_LINE * size


def _join(line: Line, piece: list[Char]) -> None:
    """`piece` appended to `line`, with a space where the print leaves a gap (pdfium put it
    in the line break it generated)."""
    last, first = line.chars[-1], piece[0]
    if not last.text.isspace() and not first.text.isspace() and first.x - last.right > 0.15 * line.size:
        line.chars.append(Char(" ", last.right, last.y, last.size, first.x))
    line.chars.extend(piece)


def _main_y(chars: list[Char]) -> float:
    ys = [round(c.y) for c in chars if not c.text.isspace()]
    return statistics.mode(ys) if ys else chars[0].y


def _line_text(chars: list[Char], baseline: float, size: float) -> str:
    out: list[str] = []
    raised = False
    for char in chars:
        is_super = char.y > baseline + SCRIPT_SHIFT * size and char.size <= size
        if is_super and not raised and out and out[-1][-1:].isdigit() and not char.text.isspace():
            out.append("^")
        raised = is_super
        out.append(char.text)
    return "".join(out)
