"""How close a re-trained record's numbers are to the committed record's: one class per
metric and per record (``harness reproduce``).

- **identical**: bit for bit (the values as JSON holds them).
- **within rounding**: a float32 reduction's last bits, as another CPU or library build
  gives them: relative 1e-5 on continuous values (losses, PSNR, learning rates, a theory
  check's measurements); never on counts and accuracies, which must match exactly.
- **within noise**: only where the record or this machine says a trial is not repeatable
  bit for bit (another device kind, or CUDA without deterministic algorithms): the value
  lies inside the spread of the record's own repeats (same stage and config hash).
- **differs**: anything else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

IDENTICAL = "identical"
WITHIN_ROUNDING = "within rounding"
WITHIN_NOISE = "within noise"
DIFFERS = "differs"
# Worst last: a record's class is its worst metric's.
CLASSES = (IDENTICAL, WITHIN_ROUNDING, WITHIN_NOISE, DIFFERS)
AGREEING = frozenset({IDENTICAL, WITHIN_ROUNDING, WITHIN_NOISE})

# The same relative tolerance tests/test_tasks.py gives the pre-task-layer fixtures' losses:
# on CI's CPU a test_loss came out 2e-7 away from the one the AMD EPYC wrote (b8e994f).
ROUNDING_REL_TOLERANCE = 1e-5
# How long a trial took is not a result.
TIMING_KEYS = frozenset({"epoch_seconds", "images_per_second"})
# Counts and fractions of counts: equal or not, no rounding to forgive.
EXACT_SUFFIXES = ("_acc", "_error")
EXACT_NAMES = frozenset({"epoch", "agrees", "time_to_fit", "status"})


def is_exact(metric: str, value: Any) -> bool:
    """Whether ``metric`` is a count or an accuracy (compared exactly), not a float
    reduction (compared to float32 rounding)."""
    if metric in EXACT_NAMES or metric.endswith(EXACT_SUFFIXES):
        return True
    return isinstance(value, bool | int | str) or value is None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _within_rounding(then: Any, now: Any) -> bool:
    if not (isinstance(then, int | float) and isinstance(now, int | float)):
        return False
    if not (math.isfinite(then) and math.isfinite(now)):
        return False
    return math.isclose(then, now, rel_tol=ROUNDING_REL_TOLERANCE, abs_tol=0.0)


def _within_spread(now: Any, spread: Iterable[Any]) -> bool:
    values = [v for v in spread if isinstance(v, int | float) and math.isfinite(v)]
    if len(values) < 2 or not isinstance(now, int | float) or not math.isfinite(now):
        return False  # one repeat has no spread to be inside
    return min(values) <= now <= max(values)


def classify_value(metric: str, then: Any, now: Any, *, noisy: bool,
                   spread: Iterable[Any] = ()) -> str:
    """The class of one metric: ``noisy`` says the trial is not repeatable bit for bit
    here (then ``spread``, the metric's values over the record's repeats, decides)."""
    if _same(then, now):
        return IDENTICAL
    if not is_exact(metric, then) and _within_rounding(then, now):
        return WITHIN_ROUNDING
    if noisy and _within_spread(now, spread):
        return WITHIN_NOISE
    return DIFFERS


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    then: Any
    now: Any
    verdict: str


def comparable_metrics(final: Mapping[str, Any]) -> dict[str, Any]:
    """A record's final scalars that are results (its timing is not)."""
    return {k: v for k, v in final.items()
            if k not in TIMING_KEYS and (v is None or isinstance(v, int | float | str))}


def compare_finals(
    then: Mapping[str, Any], now: Mapping[str, Any], *, noisy: bool = False,
    spreads: Mapping[str, list[Any]] | None = None,
) -> list[MetricComparison]:
    """Every result metric of two records' ``final``, with its class; a metric one side
    lacks differs."""
    before, after = comparable_metrics(then), comparable_metrics(now)
    spreads = spreads or {}
    out = []
    for metric in sorted(set(before) | set(after)):
        if metric not in before or metric not in after:
            out.append(MetricComparison(metric, before.get(metric), after.get(metric), DIFFERS))
            continue
        verdict = classify_value(metric, before[metric], after[metric], noisy=noisy,
                                 spread=spreads.get(metric, ()))
        out.append(MetricComparison(metric, before[metric], after[metric], verdict))
    return out


def worst(verdicts: Iterable[str]) -> str:
    return max(verdicts, key=CLASSES.index, default=IDENTICAL)


def deciding(comparisons: list[MetricComparison], primary: str) -> MetricComparison:
    """The metric a row shows: the primary one, unless another metric is in a worse class
    (the first such, by name)."""
    verdict = worst(c.verdict for c in comparisons)
    by_name = {c.metric: c for c in comparisons}
    if primary in by_name and by_name[primary].verdict == verdict:
        return by_name[primary]
    return next(c for c in comparisons if c.verdict == verdict)
