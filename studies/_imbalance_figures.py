"""The imbalance study's per-class figure: test accuracy of each class against the number of
training images it had, as small multiples (one panel per loss, cross-entropy drawn in every
panel as the grey reference), so no legend takes width and no two coloured bands overlap.

A helper of studies/imbalance.py (the leading underscore keeps study discovery from treating
it as a study); it is handed the per-class frame and never imports the study file.
"""

from __future__ import annotations

import pandas as pd

from harness.report import Plot
from harness.report.figures import new_figure, report_style
from harness.report.table_layout import LINE_PT

PAGE_WIDTH_IN = LINE_PT / 72.0  # the report's \linewidth (472 pt), so fonts print at their own size
REFERENCE = "CE"


def _mean_sd(part: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Mean and sample sd of ``y`` over the rows (seeds) sharing ``x``; sd 0 for one seed."""
    stats = part.groupby(x, sort=True)[y].agg(["mean", "std"]).reset_index()
    stats["std"] = stats["std"].fillna(0.0)
    return stats


def per_class_panels(top: pd.DataFrame, title: str) -> Plot:
    """``top``: one row per (trial, class) at a single imbalance factor, with columns
    ``loss``, ``train images``, ``accuracy`` and ``config.repeat``. One panel per loss other
    than CE (CE alone when it is the only one), CE in grey in each, shared axes."""
    losses = sorted(str(v) for v in top["loss"].unique())
    has_reference = REFERENCE in losses
    panels = [v for v in losses if v != REFERENCE] or losses
    seeds = int(top.groupby("loss")["config.repeat"].nunique().min())
    columns = min(len(panels), 4)
    rows = -(-len(panels) // columns)
    fig, _ = new_figure((PAGE_WIDTH_IN, 0.5 + 2.1 * rows))
    fig.clear()
    with report_style():
        axes = fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).flatten()
        reference = _mean_sd(top[top["loss"] == REFERENCE], "train images", "accuracy")
        for ax, loss in zip(axes, panels, strict=False):
            if has_reference and loss != REFERENCE:
                ax.plot(reference["train images"], reference["mean"], color="0.45",
                        marker="s", markersize=2.5, linewidth=1, label=REFERENCE)
                ax.fill_between(reference["train images"],
                                (reference["mean"] - reference["std"]).clip(0, 1),
                                (reference["mean"] + reference["std"]).clip(0, 1),
                                color="0.6", alpha=0.25, linewidth=0)
            stats = _mean_sd(top[top["loss"] == loss], "train images", "accuracy")
            ax.plot(stats["train images"], stats["mean"], color="C0", marker="o",
                    markersize=3, linewidth=1.4, label=loss)
            ax.fill_between(stats["train images"], (stats["mean"] - stats["std"]).clip(0, 1),
                            (stats["mean"] + stats["std"]).clip(0, 1), color="C0", alpha=0.25,
                            linewidth=0)
            ax.set_xscale("log")
            ax.set_ylim(-0.03, 1.03)
            # The loss names the panel; the title says which line is which, so no legend.
            ax.set_title(loss if loss == REFERENCE or not has_reference
                         else f"{loss}\n(grey: {REFERENCE})", fontsize=9)
        for unused in axes[len(panels):]:
            unused.set_visible(False)
        for ax in axes[(rows - 1) * columns:]:
            ax.set_xlabel("training images of the class")
        for ax in axes[::columns]:
            ax.set_ylabel("test accuracy")
        fig.suptitle(title, fontsize=10)
    spread = (f"lines: mean over {seeds} seeds, bands: ±1 sd (sample sd) over them"
              if seeds > 1 else "one seed, so lines without a band")
    caption = ("Per-class test accuracy against the class's training images (log axis), one "
               f"panel per loss with cross-entropy (CE) in grey in each; {spread}.")
    return Plot("per_class_vs_frequency", fig, caption)
