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
from dataclasses import dataclass
from typing import Literal

import numpy as np

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

    def threshold_text(self) -> str:
        if self.kind == "equivalence":
            return f"within ±{self.threshold:g}"
        return f"{'>' if self.kind == 'greater' else '<'} {self.threshold:g}"


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int
    method: str  # "t over seeds" or "bootstrap over test images"

    def text(self, digits: int = 2) -> str:
        return f"{self.estimate:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


@dataclass(frozen=True)
class Evidence:
    claim: Claim
    interval: Interval | None  # None: fewer than two observations, nothing to judge
    verdict: str

    def reason(self) -> str:
        """One sentence: the interval against the threshold, and what would change it."""
        c, i = self.claim, self.interval
        if i is None:
            return (f"{c.effect}: fewer than two observations, so no interval; run more seeds "
                    f"to judge it against {c.threshold_text()}.")
        said = (f"{c.effect} = {i.text()} (95% interval, {i.method}, n = {i.n}), "
                f"threshold {c.threshold_text()}")
        if self.verdict == INCONCLUSIVE:
            return f"{said}: the interval straddles the threshold; more seeds would narrow it."
        return f"{said}: a verdict that would change only if the interval crossed the threshold."


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
