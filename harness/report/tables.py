"""Tables as files: the same frame written as .csv (data), .tex (paper) and .md (README).

A ``Table`` holds the frame exactly as it should be shown; this module only decides
how it looks in each format, which cell is best, and writes the files atomically.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from harness.errors import HarnessError
from harness.files import atomic_path, write_text_atomic  # noqa: F401  (re-exported)
from harness.report.latex_escape import latex_escape  # noqa: F401  (re-exported)
from harness.report.latex_text import tex_text
from harness.report.table_layout import Layout, plan_layout

Direction = Literal["max", "min"]

# Names become file names and LaTeX labels: keep them to characters safe in both.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LEADING_NUMBER = re.compile(r"\s*([-+\u2212]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
MISSING = "—"


@dataclass
class Table:
    """One displayed table.

    ``frame`` is the table as shown (strings such as ``"91.23 ± 0.12"`` or numbers); its
    index is not written, so put row labels in a column. ``best`` maps a column to
    ``"max"`` or ``"min"``: that column's best cell is bolded in .tex and .md (ties all
    bolded). ``reference_rows`` are index labels of rows that are not results of this
    run, such as numbers reported in a paper or the write-up: they are shown, set off by a
    rule in LaTeX, and never marked best. ``column_widths`` maps a text column to a
    fraction of the line width: in LaTeX its cells wrap within that width, ragged right
    (the array package's ``>{...}``), and the table is set in footnote size; for tables
    whose cells are sentences.
    """

    name: str
    frame: pd.DataFrame
    caption: str
    best: dict[str, Direction] = field(default_factory=dict)
    note: str = ""
    reference_rows: frozenset[Hashable] = frozenset()
    column_widths: Mapping[str, float] = field(default_factory=dict)
    # Cells hold plain-text mathematics ("||w - w_t||^2") that LaTeX typesets as maths.
    math: bool = False

    def __post_init__(self) -> None:
        check_name(self.name)
        self.reference_rows = frozenset(self.reference_rows)
        for column, direction in self.best.items():
            if column not in self.frame.columns:
                raise ValueError(f"table {self.name}: best column {column!r} is not in the frame")
            if direction not in ("max", "min"):
                raise ValueError(f"table {self.name}: best[{column!r}] must be 'max' or 'min'")
        for column, width in self.column_widths.items():
            if column not in self.frame.columns or not 0 < width <= 1:
                raise ValueError(f"table {self.name}: column_widths[{column!r}] must name a "
                                 "column and a fraction of the line width in (0, 1]")
        unknown = self.reference_rows - set(self.frame.index)
        if unknown:
            raise ValueError(f"table {self.name}: reference rows {sorted(map(str, unknown))} "
                             "are not index labels of the frame")
        if not self.frame.index.is_unique:
            raise ValueError(f"table {self.name}: the frame index must be unique")


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"output name {name!r} must be letters, digits, '_', '.' or '-'")


def parse_number(cell: Any) -> float | None:
    """The number a cell shows: a plain number, or the leading number of a string such as
    ``"91.23 ± 0.12"`` or ``"45%"``. None when the cell shows no number (or NaN)."""
    if isinstance(cell, bool) or cell is None:
        return None
    if isinstance(cell, int | float) or pd.api.types.is_number(cell):
        value = float(cell)
        return None if math.isnan(value) else value
    if isinstance(cell, str):
        match = _LEADING_NUMBER.match(cell)
        if match:
            return float(match.group(1).replace("\u2212", "-"))
    return None


def best_cells(table: Table) -> dict[str, set[Hashable]]:
    """For each ``best`` column, the index labels of its best cells, reference rows excluded.

    Decided on the shown value (the mean before "±"), so cells that display the same
    number tie and are all bolded.
    """
    chosen: dict[str, set[Hashable]] = {}
    for column, direction in table.best.items():
        values = {
            label: parse_number(cell)
            for label, cell in table.frame[column].items()
            if label not in table.reference_rows
        }
        numbers = {label: v for label, v in values.items() if v is not None}
        if not numbers:
            chosen[column] = set()
            continue
        target = max(numbers.values()) if direction == "max" else min(numbers.values())
        chosen[column] = {label for label, v in numbers.items() if v == target}
    return chosen


def cell_text(value: Any) -> str:
    """How a cell reads in .tex and .md: strings as they are, numbers without float noise."""
    if value is None or (not isinstance(value, str) and _is_nan(value)):
        return MISSING
    if isinstance(value, str):
        return " ".join(value.split())  # a newline would break a table row
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) or pd.api.types.is_float(value):
        value = float(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def _is_nan(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False




_LONG_TOKEN = re.compile(r"\S{19,}")


def _cell_tex(text: str) -> str:
    """A cell escaped, a long unbroken name in it (model.base_width,model.convs_per_block)
    allowed to break after its commas, dots, slashes and underscores, so it stays in its
    column instead of running past the margin."""
    return _LONG_TOKEN.sub(
        lambda m: re.sub(r"(?:(?<=[,./])|(?<=\\_))(?=[^\s])", r"\\allowbreak{}", m.group(0)),
        latex_escape(text))


def _caption_tex(text: str) -> str:
    """Captions, notes and maths cells as the paper's prose (harness.report.latex_text)."""
    return tex_text(text)


def _markdown_escape(text: str) -> str:
    # A pipe would end the cell and an asterisk could open emphasis.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")


def _numeric_column(series: pd.Series) -> bool:
    shown = [v for v in series if cell_text(v) != MISSING]
    return bool(shown) and all(parse_number(v) is not None for v in shown)


def shown_rows(
    table: Table, escape: Callable[[str], str], bold: Callable[[str], str]
) -> Iterator[tuple[Hashable, list[str]]]:
    """(index label, cell texts) per row, escaped for the format and with the best cells
    bolded: the one place that decides how a cell reads, for LaTeX and Markdown alike."""
    best = best_cells(table)
    for label, row in table.frame.iterrows():
        cells = []
        for column in table.frame.columns:
            text = escape(cell_text(row[column]))
            cells.append(bold(text) if label in best.get(column, ()) else text)
        yield label, cells


GENERATED_COMMENT = ("% Generated by harness.report from trial records: change the study's "
                     "summary, not this file.")


def _column_spec(numeric: bool, width: float | None) -> str:
    if width is not None:
        return rf">{{\raggedright\arraybackslash}}p{{{width:g}\linewidth}}"
    return "r" if numeric else "l"


def table_layout(table: Table) -> Layout:
    """How the table fits the page at a readable size (harness.report.table_layout)."""
    frame = table.frame
    cells = {c: [cell_text(v) for v in frame[c]] for c in frame.columns}
    numeric = {c: _numeric_column(frame[c]) for c in frame.columns}
    return plan_layout(list(frame.columns), cells, numeric, dict(table.column_widths))


def _header_cell(column: Hashable, layout: Layout, numeric: bool) -> str:
    lines = layout.headers.get(column)
    if not lines:
        return latex_escape(cell_text(column))
    side = "r" if numeric else "l"
    stacked = r" \\ ".join(latex_escape(line) for line in lines)
    return rf"\shortstack[{side}]{{{stacked}}}"


def render_latex(table: Table) -> str:
    """A booktabs table environment with caption, ``tab:<name>`` label and bold best cells,
    laid out to fit the text width without scaling (``table_layout``)."""
    frame = table.frame
    layout = table_layout(table)
    numeric = {c: _numeric_column(frame[c]) for c in frame.columns}
    widths = {**layout.widths, **table.column_widths}
    spec = "".join(_column_spec(numeric[c], widths.get(c)) for c in frame.columns)
    header = "    " + " & ".join(_header_cell(c, layout, numeric[c]) for c in frame.columns) + r" \\"
    if len(frame) > LONG_TABLE_ROWS:
        return _render_longtable(table, layout, spec, header)
    lines = [
        GENERATED_COMMENT,
        r"\begin{table}[htbp]",
        r"  \centering",
        *([f"  {layout.font}"] if layout.font else []),
        rf"  \caption{{{_caption_tex(table.caption)}}}",
        rf"  \label{{tab:{table.name}}}",
        rf"  \begin{{tabular}}{{{spec}}}",
        r"    \toprule",
        header,
        r"    \midrule",
    ]
    lines += _body_rows(table)
    lines += [r"    \bottomrule", r"  \end{tabular}"]
    if table.note:
        lines += [r"  \par\smallskip", rf"  {{\footnotesize {_caption_tex(table.note)}\par}}"]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


LONG_TABLE_ROWS = 30  # a table longer than this breaks across pages (longtable), not floats


def _render_longtable(table: Table, layout: Layout, spec: str, header: str) -> str:
    """A table too long for one page: a longtable whose header repeats on every page."""
    lines = [
        GENERATED_COMMENT,
        "{" + (layout.font or ""),
        rf"\begin{{longtable}}{{{spec}}}",
        rf"  \caption{{{_caption_tex(table.caption)}}}\label{{tab:{table.name}}} \\",
        r"    \toprule", header, r"    \midrule", r"  \endfirsthead",
        r"    \toprule", header, r"    \midrule", r"  \endhead",
        r"    \bottomrule", r"  \endlastfoot",
        *_body_rows(table),
        r"\end{longtable}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _body_rows(table: Table) -> list[str]:
    lines = []
    previous_reference: bool | None = None
    escape = _caption_tex if table.math else _cell_tex
    for label, cells in shown_rows(table, escape, lambda text: rf"\textbf{{{text}}}"):
        is_reference = label in table.reference_rows
        # A rule between reported numbers and this run's numbers, as papers do.
        if previous_reference is not None and is_reference != previous_reference:
            lines.append(r"    \midrule")
        previous_reference = is_reference
        lines.append("    " + " & ".join(cells) + r" \\")
    return lines


def render_markdown(table: Table) -> str:
    """A GitHub pipe table with a pandoc-style ``Table:`` caption line and bold best cells."""
    frame = table.frame
    header = [_markdown_escape(cell_text(c)) for c in frame.columns]
    rule = ["---:" if _numeric_column(frame[c]) else "---" for c in frame.columns]
    lines = [f"Table: {' '.join(table.caption.split())}", "", _pipe_row(header), _pipe_row(rule)]
    for _label, cells in shown_rows(table, _markdown_escape, lambda text: f"**{text}**"):
        lines.append(_pipe_row(cells))
    if table.note:
        lines += ["", " ".join(table.note.split())]
    return "\n".join(lines) + "\n"


def _pipe_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_csv(frame: pd.DataFrame) -> str:
    """The frame as is (index not written), with '\\n' line ends on every platform.

    Tuple cells (list-valued config such as milestones) are written as JSON lists, which
    any reader can parse back, rather than Python's ``(2,)``.
    """
    shown = frame.copy()
    for column in shown.columns:
        if shown[column].dtype == object and any(isinstance(v, tuple) for v in shown[column]):
            shown[column] = [_json_cell(v) for v in shown[column]]
    return shown.to_csv(index=False, lineterminator="\n")


def _json_cell(value: Any) -> Any:
    if isinstance(value, tuple):
        return json.dumps([None if _is_nan(v) else v for v in value])
    return value


def write_table(table: Table, out_dir: str | Path) -> list[Path]:
    """Write ``<name>.csv``, ``<name>.tex`` and ``<name>.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        write_text_atomic(out / f"{table.name}.csv", render_csv(table.frame)),
        write_text_atomic(out / f"{table.name}.tex", render_latex(table)),
        write_text_atomic(out / f"{table.name}.md", render_markdown(table)),
    ]


# How each data source is named in captions. The JPEG copy is a different dataset from
# the one the published numbers use, so it is never called plain "CIFAR-10".
SOURCE_PHRASES = {
    "cifar10": "CIFAR-10",
    "cifar10-jpeg-q75": "CIFAR-10 (JPEG q75 copy)",
    "sklearn-digits": "scikit-learn digits (8x8)",
    "sklearn-sample-photos": "scikit-learn's sample photographs (32x32 crops of china.jpg; "
                             "flower.jpg for testing)",
}
_JPEG_SOURCE = re.compile(r"cifar10-jpeg-q(\d+)")


def source_phrase(source: str) -> str:
    if source in SOURCE_PHRASES:
        return SOURCE_PHRASES[source]
    match = _JPEG_SOURCE.fullmatch(source)
    if match:
        return f"CIFAR-10 (JPEG q{match.group(1)} copy)"
    return source  # an unknown source is named as recorded, never guessed


def data_caption(records: Iterable[Mapping[str, Any]] | pd.DataFrame) -> str:
    """The dataset phrase for a caption, from the sources the records actually read.

    Accepts records or a ``records_frame``. Several sources are joined ("A and B");
    a record without a source is named "<dataset> (source not recorded)".
    """
    if isinstance(records, pd.DataFrame):
        pairs = list(zip(
            _column_values(records, "data.source"),
            _column_values(records, "data.dataset", "config.dataset"),
            strict=True,
        ))
    else:
        pairs = []
        for record in records:
            data = record.get("data") or {}
            dataset = data.get("dataset") or (record.get("config") or {}).get("dataset")
            pairs.append((data.get("source"), dataset))
    phrases = sorted({
        source_phrase(s) if isinstance(s, str) and s
        else f"{d if isinstance(d, str) else 'dataset'} (source not recorded)"
        for s, d in pairs
    })
    if not phrases:
        raise HarnessError("no records, so no dataset to name in the caption")
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def validation_caption(records: Iterable[Mapping[str, Any]]) -> str:
    """The sentence a caption needs when some of its trials chose on a validation split:
    which stages held one out, its size and data seed, as the records say; "" when none."""
    held: dict[str, set[tuple[int, Any]]] = {}
    for record in records:
        size = (record.get("data") or {}).get("val_size") or 0
        if size:
            # The data seed the trial drew with (data_seed + repeat for a stage that
            # redraws per repeat); older records name only the config's.
            data = record.get("data") or {}
            seed = data.get("data_seed", (record.get("config") or {}).get("data_seed", 0))
            held.setdefault(str(record.get("stage")), set()).add((int(size), seed))
    if not held:
        return ""
    parts = []
    for stage in sorted(held):
        sizes = sorted(held[stage])
        said = " / ".join(f"{size:,} (data seed {seed})" for size, seed in sizes)
        parts.append(f"{stage}: {said}")
    return ("Choices were made on validation images held out of the training split, never "
            f"on the test split ({'; '.join(parts)}).")


def _column_values(frame: pd.DataFrame, *names: str) -> list[Any]:
    """The first of ``names`` that is a column, as a list; Nones when none is."""
    for name in names:
        if name in frame.columns:
            return list(frame[name])
    return [None] * len(frame)
