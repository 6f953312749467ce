"""What a reader sees in the paper's figures and the theory table: bands that stay in the
metric's range, legends only where they tell lines apart, no invented line between two
x values, wide figures at full width, and plain-text maths typeset in LaTeX."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.report.ascii_math import ascii_math_latex
from harness.report.figures import line_with_bands, write_figure
from harness.report.render import _figure_width
from harness.report.tables import Table, latex_escape, render_latex


def _frame(xs: list[float], hues: list[str]) -> pd.DataFrame:
    rows = [(x, h, value) for x in xs for h in hues for value in (0.02, 0.9)]  # sd > mean
    return pd.DataFrame(rows, columns=["x", "run", "acc"])


def test_a_band_never_leaves_the_metric_range() -> None:
    fig = line_with_bands(_frame([1, 2, 3], ["a", "b"]), "x", "acc", hue="run", bounds=(0.0, 1.0))
    ax = fig.axes[0]
    bands = [np.asarray(c.get_paths()[0].vertices) for c in ax.collections]
    assert bands and all(v[:, 1].min() >= 0.0 and v[:, 1].max() <= 1.0 for v in bands)
    unbounded = line_with_bands(_frame([1, 2, 3], ["a"]), "x", "acc")
    low = min(np.asarray(c.get_paths()[0].vertices)[:, 1].min() for c in unbounded.axes[0].collections)
    assert low < 0.0  # without bounds the ±1 sd band does go below zero


def test_a_legend_only_where_there_are_lines_to_tell_apart_and_outside_the_axes() -> None:
    single = line_with_bands(_frame([1, 2, 3], ["a"]), "x", "acc", hue="run")
    assert single.axes[0].get_legend() is None
    several = line_with_bands(_frame([1, 2, 3], ["a", "b"]), "x", "acc", hue="run")
    legend = several.axes[0].get_legend()
    assert legend is not None and legend.get_bbox_to_anchor().x0 > several.axes[0].bbox.x1 - 1


def test_two_x_values_are_points_with_error_bars_not_a_line() -> None:
    fig = line_with_bands(_frame([10, 100], ["a", "b"]), "x", "acc", hue="run")
    ax = fig.axes[0]
    assert ax.containers  # errorbar containers
    assert all(line.get_linestyle() == "None" for line in ax.lines if len(line.get_xdata()) == 2)


def test_a_wide_figure_takes_the_whole_line(tmp_path) -> None:
    from harness.report.figures import new_figure

    wide, _ = new_figure((9.0, 3.0))
    narrow, _ = new_figure((5.0, 3.5))
    assert _figure_width(write_figure(wide, tmp_path, "wide")) == "1.0"
    assert _figure_width(write_figure(narrow, tmp_path, "narrow")) == "0.62"


def test_plain_text_maths_is_typeset_and_the_rest_stays_escaped_text() -> None:
    tex = ascii_math_latex("argmin of f + (lambda/2)||w - w_t||^2, proved via <w*, w_(T+1)> <= 0 "
                           "with eta = B/sqrt(T); 100% of runs", latex_escape)
    # Each formula is one math span, brackets and one-letter symbols included.
    assert r"$(\lambda/2)\lVert w - w_{t}\rVert^{2}$" in tex
    assert r"$\langle w^*, w_{T+1}\rangle \leq 0$" in tex
    assert r"$\eta = B/\sqrt{T}$" in tex
    assert r"100\% of runs" in tex and "argmin of f" in tex


def test_only_a_maths_table_typesets_its_cells() -> None:
    frame = pd.DataFrame({"claim": ["||w||^2 <= 1"]})
    assert r"$\lVert w\rVert^{2} \leq 1$" in render_latex(Table("m", frame, "c", math=True))
    assert r"\textbar{}\textbar{}w" in render_latex(Table("p", frame, "c"))


def test_a_legend_inside_the_axes_is_moved_beside_them_when_written(tmp_path) -> None:
    from harness.report.figures import new_figure

    fig, ax = new_figure()
    ax.plot([1, 2, 3], [1, 2, 3], label="a")
    ax.plot([1, 2, 3], [3, 2, 1], label="b")
    ax.legend(loc="best")
    write_figure(fig, tmp_path, "legend")
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.bbox.x1 - 1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_a_log_axis_under_a_decade_is_labelled_at_its_values(tmp_path) -> None:
    from harness.report.figures import new_figure

    fig, ax = new_figure()
    ax.plot([8, 16, 24], [1, 2, 3])
    ax.set_xscale("log")
    write_figure(fig, tmp_path, "log")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "16", "24"]


def test_a_legend_of_long_labels_goes_below_the_figure(tmp_path) -> None:
    from harness.report.figures import new_figure

    fig, ax = new_figure()
    ax.plot([1, 2], [1, 2], label="least absolute deviations: gap (slope -0.75)")
    ax.legend()
    write_figure(fig, tmp_path, "long")
    assert ax.get_legend() is None and len(fig.legends) == 1
