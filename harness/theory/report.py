"""The theory claims' table and figures, as pure functions of the claim dicts.

The input is what trial records hold under ``record["claim"]`` (``ClaimResult.to_dict()``),
so the outputs can be rebuilt from the records alone, like every other table here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from harness.report import Plot, Table
from harness.report.figures import new_figure, report_style
from harness.theory.claims import loglog_slope

TABLE_COLUMNS = ("claim", "write-up states", "computed", "verdict", "tolerance")
# Singular values that are exactly zero cannot sit on a log axis; they are drawn here.
_LOG_FLOOR = 1e-18



def _loglog(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    """Log-log axes, labelled, with a legend: every rate figure of the claims."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best")

def _by_claim(claims: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The claim dicts sorted by claim number; a number seen twice is an error, since the
    table has one row per claim and a silent choice between two results would hide one."""
    numbers = [int(c["claim"]) for c in claims]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise ValueError(f"claims {duplicates} appear more than once; pass one result per claim")
    return sorted(claims, key=lambda c: int(c["claim"]))


def verdict_text(claim: Mapping[str, Any]) -> str:
    """The verdict, with the correct value folded in when the write-up's number is wrong."""
    correct = claim.get("correct_value")
    return f"{claim['verdict']}: {correct}" if correct else str(claim["verdict"])


def claims_table(claims: Sequence[Mapping[str, Any]]) -> Table:
    """One row per claim: what the write-up states, what was computed, verdict, tolerance."""
    rows = [
        {
            "claim": int(c["claim"]),
            "write-up states": c["writeup"],
            "computed": c["computed"],
            "verdict": verdict_text(c),
            "tolerance": c["tolerance"],
        }
        for c in _by_claim(claims)
    ]
    frame = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    frame.index = frame["claim"].tolist()
    counts = pd.Series([c["verdict"] for c in _by_claim(claims)]).value_counts()
    summary = "; ".join(f"{verdict}: {count}" for verdict, count in counts.items())
    return Table(
        name="claims",
        frame=frame,
        caption=("The write-up's theory claims, each checked numerically: every number under "
                 "'computed' is computed by PyTorch (float64 where precision matters) on the "
                 "machine in the records, and each verdict is derived from comparing the "
                 "stated value with the computed one under the tolerance shown."),
        note=f"Verdicts ({summary}).",
        # Its cells are sentences: wrapped in LaTeX, or the table shrinks to illegibility.
        column_widths={"write-up states": 0.2, "computed": 0.27, "verdict": 0.15,
                       "tolerance": 0.13},
        math=True,  # the claims are written in plain-text maths; the PDF typesets them
    )


def claim_figures(claims: Sequence[Mapping[str, Any]]) -> list[Plot]:
    """Figures for claims 3 (rate), 4 (HVP error vs r) and 6 (commutant; timing if
    recorded). A figure whose claim, or whose series, is absent is skipped."""
    found = {int(c["claim"]): c for c in _by_claim(claims)}
    plots: list[Plot] = []
    if 3 in found and _has(found[3], "T", "gap_lad", "bound_lad"):
        plots.append(_rate_figure(found[3]))
    if 4 in found and _has(found[4], "r", "forward_err", "central_err"):
        plots.append(_hvp_figure(found[4]))
    if 6 in found and _has(found[6], "singular_values", "singular_values_n"):
        plots.append(_commutant_figure(found[6]))
    if 6 in found and _has(found[6], "timing_n", "dense_s", "fft_s"):
        plots.append(_timing_figure(found[6]))
    return plots


def _has(claim: Mapping[str, Any], *keys: str) -> bool:
    series = claim.get("series") or {}
    return all(series.get(key) for key in keys)


def _positive(x: Sequence[float], y: Sequence[float]) -> tuple[list[float], list[float]]:
    """Points a log-log axis can show (a gap of exactly 0 has no logarithm)."""
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a > 0 and b > 0]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _rate_figure(claim: Mapping[str, Any]) -> Plot:
    series = claim["series"]
    fig, ax = new_figure((5.0, 3.5))
    labels = {"lad": "least absolute deviations", "hinge": "hinge loss"}
    with report_style():
        colors = sns.color_palette("deep", 2)
        slopes, below = [], True
        for color, problem in zip(colors, ("lad", "hinge"), strict=True):
            if not series.get(f"gap_{problem}"):
                continue
            ts, gaps = _positive(series["T"], series[f"gap_{problem}"])
            slope = loglog_slope(ts, gaps)
            slopes.append(f"{labels[problem]} {slope:.2f}")
            below = below and all(g <= b for g, b in zip(
                series[f"gap_{problem}"], series[f"bound_{problem}"], strict=True))
            ax.plot(ts, gaps, marker="o", markersize=3, color=color,
                    label=f"{labels[problem]}: gap (slope {slope:.2f})")
            ax.plot(series["T"], series[f"bound_{problem}"], linestyle="--", color=color,
                    label=f"{labels[problem]}: bound B rho / sqrt(T)")
        _loglog(ax, "T (iterations)", "f(w_bar) - f(w*)", "Averaged subgradient descent: gap vs bound")
    return Plot(
        name="theory_claim3_rate",
        figure=fig,
        caption=("Claim 3: the optimality gap of the averaged iterate against T (solid) "
                 + ("stays below" if below else "exceeds")
                 + " the bound B rho / sqrt(T) (dashed); fitted log-log slopes "
                 + ", ".join(slopes) + "."),
    )


def _hvp_figure(claim: Mapping[str, Any]) -> Plot:
    series = claim["series"]
    measurements = claim.get("measurements") or {}
    fig, ax = new_figure((5.0, 3.5))
    with report_style():
        colors = sns.color_palette("deep", 2)
        for color, kind, name in zip(colors, ("forward", "central"),
                                     ("forward (g(w+rv) - g(w))/r",
                                      "central (g(w+rv) - g(w-rv))/(2r)"), strict=True):
            rs, errors = _positive(series["r"], series[f"{kind}_err"])
            slope = measurements.get(f"{kind}_slope", loglog_slope(rs, errors))
            ax.plot(rs, errors, marker="o", markersize=3, color=color,
                    label=f"{name}: slope {slope:.2f}")
            fitted = set(series.get(f"{kind}_fit_r") or [])
            fit_points = [(r, e) for r, e in zip(rs, errors, strict=True) if r in fitted]
            if fit_points:  # ring the points the slope was fitted on
                ax.scatter([r for r, _ in fit_points], [e for _, e in fit_points], s=40,
                           facecolors="none", edgecolors=color, linewidths=0.8)
        _loglog(ax, "r", "relative error vs exact H v", "Finite-difference Hessian-vector products (float64)")
    return Plot(
        name="theory_claim4_hvp",
        figure=fig,
        caption=("Claim 4: relative error of finite-difference Hessian-vector products against "
                 "the exact forward-over-reverse product, against r; slopes are fitted on the "
                 "ringed points, where truncation rather than rounding error dominates."),
    )


def _commutant_figure(claim: Mapping[str, Any]) -> Plot:
    series = claim["series"]
    n = int(series["singular_values_n"][0])
    values = np.maximum(np.asarray(series["singular_values"], dtype=float), _LOG_FLOOR)
    zeros = int(np.sum(values <= 1e-10 * values.max()))
    fig, ax = new_figure((5.0, 3.5))
    with report_style():
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=2,
                linestyle="none", label="singular values of X -> XS - SX")
        ax.axhline(1e-10 * values.max(), color="0.4", linestyle="--", linewidth=0.8,
                   label="null-space threshold")
        ax.set_yscale("log")
        ax.set_xlabel("index (ascending)")
        ax.set_ylabel("singular value")
        ax.set_title(f"n = {n}: {zeros} zero singular values (commutant dimension)")
        ax.legend(loc="center right")
    return Plot(
        name="theory_claim6_commutant",
        figure=fig,
        caption=(f"Claim 6: the map X -> XS - SX on {n} x {n} matrices has {zeros} zero singular "
                 f"values, so the matrices commuting with the cyclic shift form a {zeros}-"
                 f"dimensional space ({'n, as many as the circulants' if zeros == n else 'not n'})."),
    )


def _timing_figure(claim: Mapping[str, Any]) -> Plot:
    series = claim["series"]
    fig, ax = new_figure((5.0, 3.5))
    with report_style():
        colors = sns.color_palette("deep", 2)
        ax.plot(series["timing_n"], series["dense_s"], marker="o", markersize=3,
                color=colors[0], label="dense matvec")
        ax.plot(series["timing_n"], series["fft_s"], marker="o", markersize=3,
                color=colors[1], label="FFT product")
        _loglog(ax, "n", "seconds (median)", "Circulant matrix-vector product")
    return Plot(
        name="theory_claim6_timing",
        figure=fig,
        caption=("Claim 6: median time of a dense and an FFT circulant matrix-vector product "
                 "against n, measured in one run on the machine in the records."),
    )
