"""Figures from trial frames: reusable seaborn builders and a deterministic PNG writer.

Builders make a ``matplotlib.figure.Figure`` directly rather than through pyplot, so
they need no display, touch no global figure state and work under any backend. Each
draws inside one fixed style so a user's matplotlibrc cannot change committed figures.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from harness.report.tables import atomic_path, check_name

DPI = 150
# Software is the matplotlib version; leaving it out keeps the PNG bytes identical
# across reruns and patch upgrades (PNG stores no date unless one is passed).
PNG_METADATA: dict[str, Any] = {"Software": None}
_RC = {
    "font.family": "DejaVu Sans",  # bundled with matplotlib, so every machine has it
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "svg.hashsalt": "harness",
}


@dataclass
class Plot:
    """A figure to write as ``<name>.png``, with the caption a paper would give it."""

    name: str
    figure: Figure
    caption: str = ""

    def __post_init__(self) -> None:
        check_name(self.name)


@contextmanager
def report_style() -> Iterator[None]:
    """The one style every figure here is drawn in."""
    with mpl.rc_context(_RC), sns.axes_style("whitegrid"), sns.plotting_context("paper", rc=_RC):
        yield


def new_figure(figsize: tuple[float, float] = (5.0, 3.5)) -> tuple[Figure, Any]:
    """A figure with one axes, in the report style and with a fixed layout engine."""
    with report_style():
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()


def write_figure(fig: Figure, out_dir: str | Path, name: str) -> Path:
    """Save ``fig`` as ``<out_dir>/<name>.png`` (dpi 150, no volatile metadata), atomically,
    then close it so a long summary does not hold every figure in memory."""
    check_name(name)
    legends_off_the_data(fig)
    label_short_log_axes(fig)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata=PNG_METADATA)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)  # a no-op for figures pyplot does not manage
    return path


def legends_off_the_data(fig: Figure) -> None:
    """Move every legend drawn inside its axes out of them, so no legend covers a curve, a
    band or a point (matplotlib's 'best' still overlaps data where none is free): beside the
    axes, or below the figure when its labels are long (beside, they would squeeze the plot)."""
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or legend.get_bbox_to_anchor().x0 >= ax.bbox.x1 - 1:
            continue
        title = legend.get_title().get_text() or None
        labels = [text.get_text() for text in legend.get_texts()]
        handles = legend.legend_handles
        if max(map(len, labels), default=0) > LONG_LEGEND_LABEL and fig.get_layout_engine():
            legend.remove()
            fig.legend(handles, labels, title=title, loc="outside lower center",
                       ncol=1, frameon=False)
        else:
            ax.legend(handles, labels, title=title, loc="upper left",
                      bbox_to_anchor=(1.02, 1.0), frameon=False)


LONG_LEGEND_LABEL = 24  # characters: a legend of longer labels goes below the figure


def label_short_log_axes(fig: Figure) -> None:
    """A log x axis spanning less than a decade shows no labelled tick by default (widths 8,
    16, 24 between 10 and 100): label it at the plotted x values instead."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    for ax in fig.axes:
        if ax.get_xscale() != "log":
            continue
        low, high = ax.get_xlim()
        values = sorted({float(v) for line in ax.lines for v in line.get_xdata() if float(v) > 0})
        if high / max(low, 1e-300) >= 10 or not values or len(values) > 8:
            continue
        ax.xaxis.set_major_locator(FixedLocator(values))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        ax.xaxis.set_minor_locator(NullLocator())


def _categorical(frame: pd.DataFrame, column: str | None) -> pd.DataFrame:
    """Make a hue column discrete with sorted, readable levels: seaborn would otherwise
    draw numeric levels (imbalance factor 10, 100) on a continuous colour scale."""
    if column is None:
        return frame
    levels = sorted(frame[column].dropna().unique(), key=_sort_key)
    names = [_level_name(v) for v in levels]
    mapped = frame[column].map(dict(zip(levels, names, strict=True)))
    return frame.assign(**{column: pd.Categorical(mapped, categories=names, ordered=True)})


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def _level_name(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _label(ax: Any, xlabel: str | None, ylabel: str | None, title: str | None) -> None:
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def line_with_bands(
    frame: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    *,
    style: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    logx: bool = False,
    bounds: tuple[float | None, float | None] = (None, None),
    figsize: tuple[float, float] = (5.0, 3.5),
    ax: Any = None,
    legend: bool = True,
) -> Figure:
    """Mean of ``y`` over rows sharing ``x`` (seeds) as a line, with a ±1 sd band (sample
    sd) clipped to ``bounds``, the range the metric can take (an accuracy's band never
    goes below 0). With fewer than three x values the means are points with ±1 sd error
    bars, not a line that would invent the values between them. The legend sits outside
    the axes, so it never covers data, and a single line has none (the axis label says
    what it is). ``ax``: draw into this axes (a panel of a larger figure) instead of a new
    figure; ``legend``: False leaves the legend to another panel."""
    if ax is None:
        fig, ax = new_figure(figsize)
    else:
        fig = ax.figure
    with report_style():
        data = _categorical(_categorical(frame, hue), style)
        groups = [(None, data)] if hue is None else [
            (level, data[data[hue] == level]) for level in data[hue].cat.categories]
        groups = [(level, part) for level, part in groups if len(part)]
        colours = sns.color_palette(n_colors=max(1, len(groups)))
        few = data[x].nunique() < 3
        markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
        for index, (level, part) in enumerate(groups):
            stats = part.groupby(x, sort=True)[y].agg(["mean", "std", "count"]).reset_index()
            low = (stats["mean"] - stats["std"].fillna(0)).clip(bounds[0], bounds[1])
            high = (stats["mean"] + stats["std"].fillna(0)).clip(bounds[0], bounds[1])
            colour, marker = colours[index], markers[index % len(markers)]
            label = None if level is None else str(level)
            if few:
                ax.errorbar(stats[x], stats["mean"], yerr=[stats["mean"] - low, high - stats["mean"]],
                            fmt=marker, color=colour, markersize=4, capsize=3, label=label)
            else:
                ax.plot(stats[x], stats["mean"], marker=marker, markersize=3, color=colour,
                        label=label)
                ax.fill_between(stats[x], low, high, color=colour, alpha=0.2, linewidth=0)
        if logx:
            ax.set_xscale("log")
        if few:
            ax.set_xticks(sorted(data[x].unique()))
            ax.set_xticklabels([_level_name(v) for v in sorted(data[x].unique())])
            ax.minorticks_off()
        if legend and len(groups) > 1:
            ax.legend(title=hue, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        _label(ax, xlabel, ylabel, title)
    return fig


def pareto_front(
    frame: pd.DataFrame,
    x: str,
    y: str,
    *,
    maximize_y: bool = True,
    minimize_x: bool = True,
) -> pd.Series:
    """Boolean mask (aligned with ``frame.index``) of the points no other point dominates.

    A point is dominated when another is at least as good in both coordinates and
    strictly better in one; equal points therefore all stay on the front. Rows with a
    NaN coordinate are never on it.
    """
    # Turn both objectives into "smaller is better", then sweep in order of the first.
    a = frame[x].to_numpy(dtype=float) * (1.0 if minimize_x else -1.0)
    b = frame[y].to_numpy(dtype=float) * (-1.0 if maximize_y else 1.0)
    on_front = np.zeros(len(frame), dtype=bool)
    valid = np.flatnonzero(~(np.isnan(a) | np.isnan(b)))
    order = valid[np.lexsort((b[valid], a[valid]))]
    best_b_so_far = np.inf  # smallest b among points with strictly smaller a
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and a[order[end]] == a[order[start]]:
            end += 1
        group = order[start:end]
        group_best = b[group].min()
        # Within equal a, only the smallest b survives; it must also beat every point
        # with a smaller a, or that point dominates it.
        if group_best < best_b_so_far:
            on_front[group[b[group] == group_best]] = True
        best_b_so_far = min(best_b_so_far, group_best)
        start = end
    return pd.Series(on_front, index=frame.index, name="pareto")


def scatter_with_pareto(
    frame: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    *,
    maximize_y: bool = True,
    minimize_x: bool = True,
    label: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    logx: bool = False,
    figsize: tuple[float, float] = (5.0, 3.5),
) -> Figure:
    """Every point, with the Pareto front drawn as a step line and its points ringed.

    ``label`` names a column whose value is written beside each front point (say the
    architecture), so the trade-off can be read off the figure.
    """
    fig, ax = new_figure(figsize)
    front = pareto_front(frame, x, y, maximize_y=maximize_y, minimize_x=minimize_x)
    with report_style():
        data = _categorical(frame, hue)
        sns.scatterplot(data=data, x=x, y=y, hue=hue, ax=ax, s=25, alpha=0.8)
        best = frame[front].sort_values([x, y], kind="mergesort")
        if not best.empty:
            ax.plot(best[x], best[y], drawstyle="steps-post", color="0.2", linewidth=1,
                    label="Pareto front", zorder=1)
            ax.scatter(best[x], best[y], s=60, facecolors="none", edgecolors="0.1",
                       linewidths=1, zorder=3)
            if label is not None:
                for _, row in best.iterrows():
                    ax.annotate(str(row[label]), (row[x], row[y]), xytext=(4, 4),
                                textcoords="offset points", fontsize=7)
        if logx:
            ax.set_xscale("log")
        ax.legend(loc="best", title=hue)
        _label(ax, xlabel, ylabel, title)
    return fig


def per_class_bars(
    frame: pd.DataFrame,
    *,
    class_col: str = "class_name",
    value_col: str = "accuracy",
    hue: str | None = None,
    order: Sequence[Any] | None = None,
    ylabel: str = "test accuracy",
    title: str | None = None,
    figsize: tuple[float, float] = (6.5, 3.2),
) -> Figure:
    """Per-class bars (mean over seeds, sd whiskers) from a long frame such as
    ``per_class_frame``; classes keep their first-seen order (class index) by default."""
    fig, ax = new_figure(figsize)
    with report_style():
        data = _categorical(frame, hue)
        classes = list(order) if order is not None else list(pd.unique(frame[class_col]))
        sns.barplot(data=data, x=class_col, y=value_col, hue=hue, order=classes,
                    estimator="mean", errorbar="sd", capsize=0.1, err_kws={"linewidth": 0.8},
                    ax=ax)
        ax.set_xticks(range(len(classes)), [str(c) for c in classes], rotation=45, ha="right")
        _label(ax, "", ylabel, title)
    return fig


def confusion_heatmap(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    class_names: Sequence[str],
    *,
    normalize: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] = (5.5, 4.5),
) -> Figure:
    """Confusion matrix, rows = true class. Normalised by row (per-class recall) by default,
    because raw counts on an imbalanced train set hide the rare classes."""
    counts = np.asarray(matrix, dtype=float)
    if counts.shape != (len(class_names), len(class_names)):
        raise ValueError(f"matrix shape {counts.shape} does not match {len(class_names)} classes")
    values = counts
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    fig, ax = new_figure(figsize)
    with report_style():
        sns.heatmap(values, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues",
                    vmin=0, vmax=1 if normalize else None, square=True, cbar=True,
                    xticklabels=list(class_names), yticklabels=list(class_names),
                    annot_kws={"fontsize": 6}, ax=ax)
        _label(ax, "predicted", "true", title)
    return fig
