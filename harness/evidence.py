"""Verdicts a reviewer accepts: a claim stated before the run (the effect it measures and
its threshold), judged by a 95% interval rather than a point estimate, with three outcomes.

- ``supported``: the interval lies on the claim's side of the threshold (for an
  equivalence claim, inside the margin: two one-sided tests, TOST, each at 2.5%);
- ``contradicted``: the interval lies wholly on the other side (outside the margin);
- ``inconclusive at this scale``: the interval straddles the threshold; more seeds or a
  larger profile could move it either way.

Intervals: a t-interval over seeds (each seed's effect one observation); for a cell with
one seed, a percentile bootstrap over the test examples' per-example effects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from harness.numbers import decimals_apart, fixed

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive at this scale"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE)
LEVEL = 0.95
Kind = Literal["equivalence", "greater", "less"]


@dataclass(frozen=True)
class Claim:
    """What a study tests, fixed in the study file before any trial runs."""

    name: str
    statement: str  # e.g. "noisy-target and clean-target training reach the same PSNR"
    effect: str  # what is measured, e.g. "noisy - clean test PSNR (dB)"
    kind: Kind  # equivalence: |effect| <= threshold; greater: > threshold; less: < threshold
    threshold: float
    # The values the effect can take (an accuracy in %: 0 to 100), None where unbounded.
    # The true mean lies inside them, so an interval cut at them keeps its coverage and
    # never reads "[99.47, 100.07]" for an accuracy.
    limits: tuple[float | None, float | None] = (None, None)

    def threshold_text(self) -> str:
        if self.kind == "equivalence":
            return f"within ±{self.threshold:g}"
        return f"{'>' if self.kind == 'greater' else '<'} {self.threshold:g}"

    @property
    def marks(self) -> tuple[float, ...]:
        """The values the verdict turns on: an interval bound must never print as one of
        them unless it is one."""
        if self.kind == "equivalence":
            return (-self.threshold, self.threshold)
        return (self.threshold,)

    @property
    def signed(self) -> bool:
        """A difference (an equivalence margin, a threshold at or below zero) reads with
        its sign; an accuracy, a ratio or a share without one."""
        return self.kind == "equivalence" or self.threshold <= 0


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int
    method: str  # "t over seeds" or "bootstrap over test images"

    def within(self, limits: tuple[float | None, float | None]) -> Interval:
        """The interval cut at the values the effect can take."""
        low, high = limits
        return replace(self, low=self.low if low is None else max(self.low, low),
                       high=self.high if high is None else min(self.high, high))

    def text(self, digits: int | None = None, marks: Sequence[float] = (),
             signed: bool = True) -> str:
        """The estimate and its interval, "+0.12 [-0.05, +0.29]": ``digits`` decimals, or
        (None) the fewest from two up at which neither bound nor the estimate prints as one
        of ``marks`` (the threshold) that it does not equal, so 0.996 against 1 never reads
        "1.00"."""
        values = (self.estimate, self.low, self.high)
        places = digits if digits is not None else decimals_apart(values, marks)
        shown = [fixed(v, places, signed) for v in values]
        return f"{shown[0]} [{shown[1]}, {shown[2]}]"


@dataclass(frozen=True)
class Evidence:
    claim: Claim
    interval: Interval | None  # None: fewer than two observations, nothing to judge
    verdict: str
    # What the records lack, so the effect is not measured at all (an older record without
    # the column, a comparison not run); and what the reader needs beside the interval (a
    # seed left out, what was run). The reason says both: a verdict never hides them.
    missing: str = ""
    note: str = ""

    def interval_text(self) -> str:
        """The estimate and its interval as the claim reads them, or "—" without one."""
        if self.interval is None:
            return "—"
        return self.interval.text(marks=self.claim.marks, signed=self.claim.signed)

    def reason(self) -> str:
        """One sentence: the interval against the threshold, and what would change it."""
        c, i = self.claim, self.interval
        left_out = f" ({self.note})" if self.note else ""
        if i is None and self.missing:
            return (f"{c.effect}: not measured, since {self.missing}; a run that measures it, "
                    f"with two or more seeds, would judge it against {c.threshold_text()}"
                    f"{left_out}.")
        if i is None:
            return (f"{c.effect}: fewer than two observations, so no interval; run more seeds "
                    f"to judge it against {c.threshold_text()}{left_out}.")
        said = (f"{c.effect} = {self.interval_text()} (95% interval, {i.method}, n = {i.n}), "
                f"threshold {c.threshold_text()}")
        if self.verdict == INCONCLUSIVE:
            return (f"{said}: the interval straddles the threshold; more seeds would narrow "
                    f"it{left_out}.")
        return (f"{said}: a verdict that would change only if the interval crossed the "
                f"threshold{left_out}.")


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval | None:
    """Mean and two-sided t-interval of independent observations (seeds)."""
    from scipy import stats

    data = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(data) < 2:
        return None
    mean, sem = float(data.mean()), float(data.std(ddof=1) / math.sqrt(len(data)))
    half = float(stats.t.ppf(0.5 + level / 2, len(data) - 1)) * sem
    return Interval(mean, mean - half, mean + half, len(data), "t over seeds")


def bootstrap_interval(values: Sequence[float], level: float = LEVEL, resamples: int = 2000,
                       seed: int = 0) -> Interval | None:
    """Mean and percentile-bootstrap interval over per-example effects (one seed's test
    images), from a seeded generator so the same records give the same interval."""
    data = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(data) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(float(data.mean()), float(low), float(high), len(data),
                    "bootstrap over test images")


def judge(claim: Claim, interval: Interval | None) -> Evidence:
    """The verdict the interval gives the claim (see the module docstring)."""
    if interval is None:
        return Evidence(claim, None, INCONCLUSIVE)
    low, high, t = interval.low, interval.high, claim.threshold
    if claim.kind == "equivalence":
        supported = -t <= low and high <= t
        contradicted = high < -t or low > t
    elif claim.kind == "greater":
        supported, contradicted = low > t, high < t
    else:
        supported, contradicted = high < t, low > t
    verdict = SUPPORTED if supported else CONTRADICTED if contradicted else INCONCLUSIVE
    return Evidence(claim, interval, verdict)


def judge_seeds(claim: Claim, per_seed: Sequence[float],
                per_example: Sequence[float] | None = None, note: str = "",
                seed: int = 0) -> Evidence:
    """The claim judged from its effect measured once per seed: a t-interval over two or
    more seeds; with one seed, a bootstrap over that seed's per-example effects where the
    records carry them (``per_example``); otherwise no interval, so inconclusive until
    more seeds run. Non-finite effects (a seed that never measured it) are left out. The
    interval is cut at the claim's ``limits``."""
    values = [float(v) for v in per_seed if math.isfinite(float(v))]
    interval = t_interval(values)
    if interval is None and len(values) == 1 and per_example is not None:
        interval = bootstrap_interval(per_example, seed=seed)
    if interval is not None:
        interval = interval.within(claim.limits)
    return replace(judge(claim, interval), note=note)


def not_measured(claim: Claim, missing: str) -> Evidence:
    """Inconclusive because the records do not measure the effect (an older record
    without the column, a comparison that was not run); ``missing`` says what lacked."""
    return Evidence(claim, None, INCONCLUSIVE, missing=missing)


def verdict_counts(evidence: Sequence[Evidence]) -> str:
    """The sub-claims' verdicts counted, in the order supported, contradicted,
    inconclusive: "2 supported, 1 inconclusive at this scale"."""
    counts = [(sum(e.verdict == v for e in evidence), v) for v in VERDICTS]
    shown = [f"{n} {verdict}" for n, verdict in counts if n]
    return ", ".join(shown) if shown else "no claim judged"


def verdict_by_claim(evidence: Sequence[Evidence]) -> str:
    """Each sub-claim with its verdict: "fits random labels: supported; ..."."""
    return "; ".join(f"{e.claim.name}: {e.verdict}" for e in evidence)
