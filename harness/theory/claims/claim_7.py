"""Claim 7: Best constant under L2 / L1, and what zero-mean target noise does to each optimum.

See ``check_claim_7``; the package docstring says how a verdict is derived."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from harness.theory.claims.common import (
    F64,
    ClaimResult,
    _generator,
    _verdict,
)


def argmin_constant(y: Tensor, loss: str, *, use_autograd: bool = True, rtol: float = 1e-13
                    ) -> Tensor:
    """The constant c minimizing mean loss(y - c) along the last axis of y.

    Bisection on the sign of the derivative in c: both losses are convex in c, so the
    derivative is monotone and bisection converges to the minimizer with no step size to
    tune. The derivative comes from autograd (``use_autograd``) or, for the large batched
    Monte Carlo runs where autograd would dominate the cost, from its closed form
    mean(2 (c - y)) or mean(sign(c - y)). Stops when the bracket is below ``rtol`` times
    the sample range.
    """
    if loss not in ("l2", "l1"):
        raise ValueError(f"loss must be 'l2' or 'l1', not {loss!r}")
    lo = y.min(dim=-1).values.clone()
    hi = y.max(dim=-1).values.clone()
    width = float((hi - lo).max())
    iterations = max(1, math.ceil(math.log2(max(width, 1e-300) / (rtol * max(width, 1e-300)))) + 2)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if use_autograd:
            c = mid.clone().requires_grad_(True)
            residual = y - c[..., None]
            value = (residual ** 2 if loss == "l2" else residual.abs()).mean(dim=-1)
            (slope,) = torch.autograd.grad(value.sum(), c)
        else:
            diff = mid[..., None] - y
            slope = (2 * diff if loss == "l2" else torch.sign(diff)).mean(dim=-1)
        # slope > 0: the minimizer is left of mid; slope < 0: right; 0: mid is a minimizer.
        hi = torch.where(slope >= 0, mid, hi)
        lo = torch.where(slope <= 0, mid, lo)
    return (lo + hi) / 2


def _claim_7_samples(gen: torch.Generator, n: int) -> dict[str, Tensor]:
    u = torch.rand(n, generator=gen, dtype=F64).clamp(1e-15, 1 - 1e-15)
    z = torch.randn(n, generator=gen, dtype=F64)
    chi3 = (torch.randn(n, 3, generator=gen, dtype=F64) ** 2).sum(dim=1)
    return {
        "exponential": -torch.log1p(-u),
        "lognormal": torch.exp(z),
        "student_t3": torch.randn(n, generator=gen, dtype=F64) / torch.sqrt(chi3 / 3),
        "cauchy": torch.tan(math.pi * (torch.rand(n, generator=gen, dtype=F64) - 0.5)),
    }


def check_claim_7(
    seed: int = 0,
    *,
    n: int = 2001,
    noise_sizes: Sequence[int] = (100, 1000, 4000),
    repeats: int = 24,
    stated_l2_minimizer: str = "mean",
    stated_l1_minimizer: str = "median",
    stated_noise_invariant: Sequence[str] = ("l2",),
    z_threshold: float = 5.0,
) -> ClaimResult:
    """Best constant under L2 / L1, and what zero-mean target noise does to each optimum.

    (i) On skewed and heavy-tailed samples (odd n, so the L1 minimizer is unique) the
    numerical argmin of each loss is compared with the sample mean and median; the stated
    statistic must be the one it equals (relative to the sample's range). (ii) For
    targets y and independent zero-mean noise e, the shift argmin(y + e) - argmin(y) is
    measured over ``repeats`` draws per n: a loss is 'noise-invariant' if the mean shift is
    within ``z_threshold`` standard errors of zero at every n, for symmetric (Gaussian) and
    skewed (Exp(1) - 1, median ln 2 - 1) noise. Every stated invariant loss must be one.
    """
    gen = _generator(seed, 7)
    wrong: list[str] = []
    matches: dict[str, dict[str, list[str]]] = {"l2": {}, "l1": {}}
    measurements: dict[str, float] = {}
    samples = _claim_7_samples(gen, n)
    for name, y in samples.items():
        stats = {"mean": float(y.mean()), "median": float(y.median())}
        tol = 1e-9 * float(y.max() - y.min())
        for loss in ("l2", "l1"):
            c = float(argmin_constant(y, loss))
            matches[loss][name] = [k for k, v in stats.items() if abs(c - v) <= tol]
            measurements[f"{name}_{loss}_argmin"] = c
        measurements[f"{name}_mean"] = stats["mean"]
        measurements[f"{name}_median"] = stats["median"]
        measurements[f"{name}_l2_minus_mean"] = measurements[f"{name}_l2_argmin"] - stats["mean"]
        measurements[f"{name}_l1_minus_median"] = \
            measurements[f"{name}_l1_argmin"] - stats["median"]
    for loss, stated in (("l2", stated_l2_minimizer), ("l1", stated_l1_minimizer)):
        missed = [name for name, found in matches[loss].items() if found != [stated]]
        if missed:
            wrong.append(f"{loss.upper()} minimizer = {stated} (fails on {', '.join(missed)})")

    # (ii) noise on the targets.
    series: dict[str, list] = {"n": [float(m) for m in noise_sizes]}
    invariant = {"l2": True, "l1": True}
    identity_err = 0.0
    for noise_kind in ("gaussian", "skewed"):
        for loss in ("l2", "l1"):
            series[f"{loss}_{noise_kind}_shift_mean"] = []
            series[f"{loss}_{noise_kind}_shift_se"] = []
        for m in noise_sizes:
            # Clean targets: narrow and skewed (lognormal, sigma 0.25), as pixel values are.
            y = torch.exp(0.25 * torch.randn(repeats, m, generator=gen, dtype=F64))
            if noise_kind == "gaussian":
                e = torch.randn(repeats, m, generator=gen, dtype=F64)
            else:
                u = torch.rand(repeats, m, generator=gen, dtype=F64).clamp(1e-15, 1 - 1e-15)
                e = -torch.log1p(-u) - 1.0
            for loss in ("l2", "l1"):
                shift = argmin_constant(y + e, loss, use_autograd=False) \
                    - argmin_constant(y, loss, use_autograd=False)
                if loss == "l2":
                    identity_err = max(identity_err, float((shift - e.mean(dim=1)).abs().max()))
                mean = float(shift.mean())
                se = float(shift.std() / math.sqrt(repeats))
                series[f"{loss}_{noise_kind}_shift_mean"].append(mean)
                series[f"{loss}_{noise_kind}_shift_se"].append(se)
                if abs(mean) > z_threshold * se:
                    invariant[loss] = False
        for loss in ("l2", "l1"):
            measurements[f"{loss}_{noise_kind}_shift_at_max_n"] = \
                series[f"{loss}_{noise_kind}_shift_mean"][-1]
            measurements[f"{loss}_{noise_kind}_shift_se_at_max_n"] = \
                series[f"{loss}_{noise_kind}_shift_se"][-1]
    measurements["l2_shift_minus_noise_mean_max"] = identity_err
    for loss in stated_noise_invariant:
        if not invariant[loss]:
            wrong.append(f"{loss.upper()} optimum unchanged by zero-mean noise")

    l2_found = "/".join(sorted({m for v in matches["l2"].values() for m in v})) or "neither"
    l1_found = "/".join(sorted({m for v in matches["l1"].values() for m in v})) or "neither"
    computed = (f"argmin = {l2_found} (L2), {l1_found} (L1) on {len(samples)} samples; shift under "
                f"skewed zero-mean noise (n = {noise_sizes[-1]}): L2 "
                f"{measurements['l2_skewed_shift_at_max_n']:.2g} +- "
                f"{measurements['l2_skewed_shift_se_at_max_n']:.1g}, L1 "
                f"{measurements['l1_skewed_shift_at_max_n']:.2g} +- "
                f"{measurements['l1_skewed_shift_se_at_max_n']:.1g}")
    return ClaimResult(
        claim=7,
        title="best constant under L2 and L1; noisy targets",
        writeup=(f"best constant: L2 -> {stated_l2_minimizer}, L1 -> {stated_l1_minimizer}; "
                 f"zero-mean noise leaves the "
                 f"{' and '.join(x.upper() for x in stated_noise_invariant)} optimum unchanged"),
        computed=computed,
        verdict=_verdict(wrong),
        correct_value=(f"L2 -> {l2_found}, L1 -> {l1_found}; unchanged by zero-mean noise: "
                       + (", ".join(k.upper() for k, v in invariant.items() if v) or "neither")
                       if wrong else None),
        tolerance=(f"|argmin - statistic| <= 1e-9 x sample range; unchanged if |mean shift| <= "
                   f"{z_threshold:g} standard errors ({repeats} repeats per n)"),
        measurements=measurements,
        series=series,
    )
