"""What every claim check shares: the verdicts, ``ClaimResult`` and the numeric helpers.

``_verdict`` is the one rule that turns a check's mismatches into a verdict; the other
helpers format numbers for the ``computed`` strings and set up small problems."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

HOLDS = "holds"
DERIVATION_WRONG = "holds, but the write-up's derivation is wrong"
NUMBER_WRONG = "the write-up's number is wrong"
VERDICTS: tuple[str, str, str] = (HOLDS, DERIVATION_WRONG, NUMBER_WRONG)

F64 = torch.float64


@dataclass(frozen=True)
class ClaimResult:
    """What one check found: the stated claim, the computed numbers and the verdict.

    ``measurements`` are finite scalars (final metrics of a trial); ``series`` are lists of
    numbers (or labels) for figures. Both are validated so ``to_dict()`` is JSON-safe.
    """

    claim: int
    title: str
    writeup: str
    computed: str
    verdict: str
    correct_value: str | None
    tolerance: str
    measurements: dict[str, float] = field(default_factory=dict)
    series: dict[str, list] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.claim}: verdict {self.verdict!r} is not one of {VERDICTS}")
        for key, value in self.measurements.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"claim {self.claim}: measurement {key!r} is not a number")
            if not math.isfinite(value):
                raise ValueError(f"claim {self.claim}: measurement {key!r} is not finite")
        for key, values in self.series.items():
            for value in values:
                if isinstance(value, str):
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise TypeError(f"claim {self.claim}: series {key!r} holds a non-number")
                if not math.isfinite(value):
                    raise ValueError(f"claim {self.claim}: series {key!r} holds a non-finite value")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe copy (what a trial record keeps under ``record["claim"]``)."""
        return {
            "claim": self.claim,
            "title": self.title,
            "writeup": self.writeup,
            "computed": self.computed,
            "verdict": self.verdict,
            "correct_value": self.correct_value,
            "tolerance": self.tolerance,
            "measurements": {k: float(v) for k, v in self.measurements.items()},
            "series": {k: list(v) for k, v in self.series.items()},
        }


def _generator(seed: int, stream: int) -> torch.Generator:
    """An independent generator per (seed, claim part), so parts do not share draws."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + stream)


def _verdict(wrong_numbers: Sequence[str], wrong_derivation: Sequence[str] = ()) -> str:
    """The one rule every claim uses: a stated value that disagrees with the computation
    makes the number wrong; otherwise a false intermediate step makes the derivation
    wrong; otherwise the claim holds."""
    if wrong_numbers:
        return NUMBER_WRONG
    if wrong_derivation:
        return DERIVATION_WRONG
    return HOLDS


def _g(x: float) -> str:
    """A short, plain-text number for the ``computed`` strings."""
    return f"{x:.3g}"


def _times(coefficient: float, symbol: str) -> str:
    """'B rho', '-H^-1 g', '2 n': a coefficient written as the write-up would."""
    if coefficient == 1:
        return symbol
    if coefficient == -1:
        return f"-{symbol}"
    return f"{coefficient:g} {symbol}"


def _power(symbol: str, exponent: float) -> str:
    if exponent == 0.5:
        return f"sqrt({symbol})"
    return symbol if exponent == 1 else f"{symbol}^{exponent:g}"


def _floats(values: Tensor | Sequence[float] | np.ndarray) -> list[float]:
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().tolist()
    return [float(v) for v in values]


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log y against log x (positive entries only)."""
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    keep = (xs > 0) & (ys > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(xs[keep]), np.log(ys[keep]), 1)[0])


def _lbfgs_minimize(fn: Callable[[Tensor], Tensor], start: Tensor, max_iter: int = 200) -> Tensor:
    """Minimize a smooth function numerically (LBFGS with strong-Wolfe line search)."""
    w = start.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=max_iter, tolerance_grad=1e-13,
                            tolerance_change=1e-18, history_size=50,
                            line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        value = fn(w)
        value.backward()
        return value

    opt.step(closure)
    return w.detach()


def _random_smooth_problem(gen: torch.Generator, d: int, kind: str) -> Callable[[Tensor], Tensor]:
    """A random smooth convex objective in d dimensions: logistic loss + small ridge, or a
    random positive-definite quadratic."""
    if kind == "logistic":
        n = 4 * d + 10
        x = torch.randn(n, d, generator=gen, dtype=F64)
        y = torch.where(torch.rand(n, generator=gen, dtype=F64) < 0.5, -1.0, 1.0).to(F64)
        ridge = 0.1

        def logistic(w: Tensor) -> Tensor:
            return torch.nn.functional.softplus(-y * (x @ w)).mean() + 0.5 * ridge * (w @ w)

        return logistic
    a = torch.randn(d, d, generator=gen, dtype=F64)
    h = a @ a.T / d + 0.5 * torch.eye(d, dtype=F64)
    b = torch.randn(d, generator=gen, dtype=F64)

    def quadratic(w: Tensor) -> Tensor:
        return 0.5 * w @ (h @ w) - b @ w

    return quadratic
