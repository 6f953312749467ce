"""Intervals for an effect measured over seeds: a t-interval over seeds, a percentile
bootstrap over one seed's test examples, and a seeded hierarchical bootstrap over seeds,
then test examples. Each interval names its method; ``harness.evidence`` judges claims by
them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness.numbers import decimals_apart, fixed

LEVEL = 0.95


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
    images; scipy.stats.bootstrap), from a seeded generator so the same records give the
    same interval."""
    from scipy import stats

    data = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(data) < 2:
        return None
    result = stats.bootstrap((data,), np.mean, confidence_level=level, n_resamples=resamples,
                             method="percentile", rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return Interval(float(data.mean()), float(low), float(high), len(data),
                    "bootstrap over test images")


HIERARCHICAL = "hierarchical bootstrap over seeds, then test images"
# Per seed: the per-example 0/1 outcome arrays its effect is computed from (one array per
# arm and class, say); the effect function maps one seed's arrays to its effect.
SeedExamples = Sequence[np.ndarray]
EffectOf = Callable[[Sequence[np.ndarray]], float]


def hierarchical_bootstrap(seeds: Sequence[SeedExamples], effect: EffectOf,
                           level: float = LEVEL, resamples: int = 2000,
                           seed: int = 0) -> Interval | None:
    """Mean effect over seeds and a percentile interval from a seeded two-level bootstrap:
    seeds drawn with replacement, then within each drawn seed every outcome array's test
    examples drawn with replacement (each class keeps its size), so the interval carries
    test-set variance as well as seed-to-seed variance."""
    if len(seeds) < 2:
        return None
    rng = np.random.default_rng(seed)
    observed = float(np.mean([effect(arrays) for arrays in seeds]))
    means = np.empty(resamples)
    for b in range(resamples):
        drawn = rng.integers(0, len(seeds), size=len(seeds))
        means[b] = np.mean([effect([a[rng.integers(0, len(a), size=len(a))] if len(a) else a
                                    for a in seeds[i]]) for i in drawn])
    low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(observed, float(low), float(high), len(seeds), HIERARCHICAL)
