"""How a table fits the page in LaTeX without being shrunk: long text columns wrap, long
headers break over lines, and the font steps down to \\small or \\footnotesize at most (8 pt
beside the 10 pt body), never below and never by scaling the table as a picture.

Widths are estimated from the cells' characters (Computer Modern at 10 pt averages about
5 pt a character; booktabs puts 12 pt between columns) for the report's A4 page with
2.2 cm margins. The estimate errs wide, so a table that fits by it fits on the page."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

LINE_PT = 472.0  # \linewidth of the report: A4 (595 pt) less two 2.2 cm margins
CHAR_PT = 5.2  # a character of the 10 pt body font, on average, bold included
COLUMN_GAP_PT = 12.0  # \tabcolsep on both sides
WRAP_CHARS = 30  # a text column longer than this wraps at this many characters
# Tighter wraps, tried in turn at footnotesize when a table does not fit at WRAP_CHARS.
TIGHTER_WRAPS = (22, 16, 12)
MIN_HEADER_CHARS = 6  # a header breaks over lines no narrower than this
# The font steps a table may take, with their size against the body's: none below 8 pt.
FONT_STEPS: tuple[tuple[str, float], ...] = (("", 1.0), (r"\small", 0.9), (r"\footnotesize", 0.8))
SMALLEST_FONT = FONT_STEPS[-1][0]


@dataclass(frozen=True)
class Layout:
    font: str  # "" (the body's), \small or \footnotesize
    widths: dict[Hashable, float] = field(default_factory=dict)  # column -> fraction of \linewidth
    headers: dict[Hashable, list[str]] = field(default_factory=dict)  # column -> its lines


def wrap_words(text: str, width: int) -> list[str]:
    """Greedy word wrap at ``width`` characters (a longer word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def plan_layout(columns: Sequence[Hashable], cells: dict[Hashable, list[str]],
                numeric: dict[Hashable, bool], given: dict[Hashable, float]) -> Layout:
    """The layout of a table whose column ``c`` shows ``cells[c]`` (unescaped text):
    ``given`` widths (fractions of the line) are kept, text columns longer than
    WRAP_CHARS wrap, headers break to their column's width, and the font is the largest of
    FONT_STEPS at which the estimate fits the line. When none does, text columns wrap
    tighter (TIGHTER_WRAPS) at footnotesize; the tightest is kept if even that is wide."""
    for wrap in (WRAP_CHARS, *TIGHTER_WRAPS):
        steps = FONT_STEPS if wrap == WRAP_CHARS else FONT_STEPS[-1:]
        for font, scale in steps:
            layout, width = _layout_at(columns, cells, numeric, given, wrap, font, scale)
            if width <= LINE_PT:
                return layout
    return layout


def _layout_at(columns: Sequence[Hashable], cells: dict[Hashable, list[str]],
               numeric: dict[Hashable, bool], given: dict[Hashable, float], wrap: int,
               font: str, scale: float) -> tuple[Layout, float]:
    """The layout with text columns wrapped at ``wrap`` characters, and its estimated width
    in points at the font's ``scale``."""
    chars: dict[Hashable, int] = {}
    widths: dict[Hashable, float] = {}
    headers: dict[Hashable, list[str]] = {}
    for column in columns:
        longest = max([len(c) for c in cells[column]] or [0])
        # A column wraps where its cells have spaces to break at: text, or a number
        # with words around it ("0.01 to 0.2 (4 values)"), never a bare number or mean ± sd.
        breakable = any(" " in c.replace(" ± ", "") for c in cells[column])
        wrapped = column not in given and longest > wrap and (breakable or not numeric[column])
        if wrapped:
            longest = wrap
        header = str(column)
        lines = wrap_words(header, max(longest, MIN_HEADER_CHARS)) if len(header) > longest else [header]
        if len(lines) > 1:
            headers[column] = lines
        chars[column] = max(longest, *(len(line) for line in lines))
        if wrapped:
            widths[column] = round(chars[column] * CHAR_PT * scale / LINE_PT, 3)
    total = sum(given[c] * LINE_PT if c in given else chars[c] * CHAR_PT * scale
                for c in columns) + COLUMN_GAP_PT * len(columns)
    return Layout(font, widths, headers), total
