"""Search-space declarations that studies use without importing Ray.

A study's space is a flat mapping from config keys (``lr``, ``model.blocks``) to a
constant or one of these domains; ``harness.tune`` turns them into Ray Tune domains.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Grid:
    """Every value is run (a Cartesian product with the other grids)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Choice:
    """One value sampled per trial by the study's searcher."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float


@dataclass(frozen=True)
class IntRange:
    """An integer in [low, high], both ends included."""

    low: int
    high: int


Domain = Grid | Choice | Uniform | LogUniform | IntRange


def grid(*values: Any) -> Grid:
    return Grid(tuple(values))


def choice(*values: Any) -> Choice:
    return Choice(tuple(values))


def uniform(low: float, high: float) -> Uniform:
    return Uniform(float(low), float(high))


def loguniform(low: float, high: float) -> LogUniform:
    return LogUniform(float(low), float(high))


def int_range(low: int, high: int) -> IntRange:
    return IntRange(int(low), int(high))


def is_domain(value: Any) -> bool:
    return isinstance(value, Grid | Choice | Uniform | LogUniform | IntRange)


def sample(domain: Domain, rng: random.Random) -> Any:
    """Draw one value without Ray (used by tests and by the dry-run listing)."""
    if isinstance(domain, Grid | Choice):
        return rng.choice(domain.values)
    if isinstance(domain, Uniform):
        return rng.uniform(domain.low, domain.high)
    if isinstance(domain, LogUniform):
        return math.exp(rng.uniform(math.log(domain.low), math.log(domain.high)))
    return rng.randint(domain.low, domain.high)


def grid_size(space: dict[str, Any]) -> int:
    size = 1
    for value in space.values():
        if isinstance(value, Grid):
            size *= len(value.values)
    return size


# A space may hold one key VARIANT_KEY whose Grid values are whole partial configs, for
# stages that compare different models each with its own options (baselines), or re-run
# a few chosen configurations. Each variant may name itself with LABEL_KEY.
VARIANT_KEY = "variant"
LABEL_KEY = "label"


def variants(*configs: dict[str, Any]) -> Grid:
    return Grid(tuple(dict(c) for c in configs))


def expand_variant(values: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Merge a trial's variant into its flat config; return the config and the variant label."""
    merged = {k: v for k, v in values.items() if k != VARIANT_KEY}
    variant = dict(values.get(VARIANT_KEY) or {})
    label = variant.pop(LABEL_KEY, None)
    merged.update(variant)
    return merged, label
