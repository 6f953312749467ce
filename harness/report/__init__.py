"""Tables and figures as pure functions from trial records to files.

A study's ``summary(records)`` returns a list of ``Table`` and ``Plot`` (or
``(name, matplotlib Figure)`` pairs); ``write_outputs`` writes them with records.csv
into ``results/<study>/<profile>/``, so the results folder can be rebuilt from the
records alone, without training.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from harness.report.figures import (
    Plot,
    confusion_heatmap,
    line_with_bands,
    pareto_front,
    per_class_bars,
    scatter_with_pareto,
    write_figure,
)
from harness.report.records_frame import (
    completed,
    format_mean_sd,
    history_frame,
    load_records,
    mean_sd,
    mean_sd_columns,
    per_class_frame,
    records_frame,
)
from harness.report.tables import (
    Table,
    best_cells,
    data_caption,
    latex_escape,
    parse_number,
    render_csv,
    validation_caption,
    write_table,
    write_text_atomic,
)

Output = Table | Plot | tuple[str, Figure]
RECORDS_CSV = "records.csv"
INDEX_MD = "index.md"
OUTPUTS_JSON = "outputs.json"  # the index for programs (harness report): names and captions

__all__ = [
    "Output", "Plot", "RECORDS_CSV", "Table", "best_cells", "completed", "confusion_heatmap",
    "data_caption", "validation_caption", "format_mean_sd", "history_frame", "latex_escape", "line_with_bands",
    "load_records", "mean_sd", "mean_sd_columns", "pareto_front", "parse_number",
    "per_class_bars", "per_class_frame", "records_frame", "scatter_with_pareto",
    "write_figure", "write_outputs", "write_table",
]


def write_outputs(
    records: Iterable[Mapping[str, Any]],
    outputs: Sequence[Output],
    out_dir: str | Path,
) -> list[Path]:
    """Write records.csv, every table (.csv .tex .md) and figure (.png), and index.md (each
    table and figure with its caption, linked) into ``out_dir``.

    Returns the written paths in order. Names are checked before anything is written, so
    two outputs can never overwrite each other's files (or records.csv). Files from
    outputs a study no longer makes are left alone.
    """
    out = Path(out_dir)
    plots = [_as_plot(item) for item in outputs]
    claimed: dict[str, str] = {RECORDS_CSV: "records", INDEX_MD: "index", OUTPUTS_JSON: "outputs"}
    for item in plots:
        suffixes = (".csv", ".tex", ".md") if isinstance(item, Table) else (".png",)
        for suffix in suffixes:
            filename = item.name + suffix
            if filename in claimed:
                raise ValueError(f"two outputs would write {filename} ({claimed[filename]} "
                                 f"and {item.name})")
            claimed[filename] = item.name

    out.mkdir(parents=True, exist_ok=True)
    written = [write_text_atomic(out / RECORDS_CSV, render_csv(records_frame(records)))]
    for item in plots:
        if isinstance(item, Table):
            written += write_table(item, out)
        else:
            written.append(write_figure(item.figure, out, item.name))
    written.append(write_text_atomic(out / INDEX_MD, render_index(plots)))
    listing = [{"name": item.name, "kind": "table" if isinstance(item, Table) else "figure",
                "caption": " ".join(item.caption.split())} for item in plots]
    written.append(write_text_atomic(out / OUTPUTS_JSON,
                                     json.dumps(listing, indent=1, ensure_ascii=False) + "\n"))
    return written


def render_index(outputs: Sequence[Table | Plot]) -> str:
    """A page listing the folder's tables and figures with their captions."""
    lines = ["# Tables and figures", "", f"Trial records: [{RECORDS_CSV}]({RECORDS_CSV}).", ""]
    for item in outputs:
        if isinstance(item, Table):
            caption = " ".join(item.caption.split())
            lines += [f"- Table [{item.name}]({item.name}.md) "
                      f"([csv]({item.name}.csv), [tex]({item.name}.tex)): {caption}"]
    figures = [item for item in outputs if isinstance(item, Plot)]
    if figures:
        lines += [""]
        for plot in figures:
            caption = " ".join(plot.caption.split()) or plot.name
            lines += [f"![{plot.name}]({plot.name}.png)", "", f"*{caption}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def _as_plot(item: Any) -> Table | Plot:
    if isinstance(item, Table | Plot):
        return item
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Figure):
        return Plot(name=item[0], figure=item[1])
    raise TypeError(f"an output must be a Table, a Plot or (name, Figure); got {type(item)!r}")
