"""Claim 5: Values and Jacobians of f1, f2 at (1, 2): every stated 3-decimal number is checked.

See ``check_claim_5``; the package docstring says how a verdict is derived."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.func import jacfwd, jacrev

from harness.theory.claims.common import (
    F64,
    ClaimResult,
    _verdict,
)

WRITEUP_CLAIM_5: dict[str, Any] = {
    "f1": 0.656,
    "f2": 3.097,
    "J_fd": [[0.351, -0.386], [4.353, 1.333]],
    "J_ad": [[0.350, -0.386], [4.333, 1.333]],
}


def _claim_5_functions(w: Tensor) -> Tensor:
    w1, w2 = w[0], w[1]
    f1 = torch.cos(w1) * torch.cos(w2) + torch.sigmoid(w2)
    f2 = torch.log(w1 + w2) + w1 ** 2 * w2
    return torch.stack([f1, f2])


def check_claim_5(
    seed: int = 0,
    *,
    point: tuple[float, float] = (1.0, 2.0),
    step: float = 0.01,
    stated: Mapping[str, Any] | None = None,
    abs_tol: float = 5e-4,
) -> ClaimResult:
    """Values and Jacobians of f1, f2 at (1, 2): every stated 3-decimal number is checked.

    Forward-mode (jacfwd) and reverse-mode (jacrev) autodiff and forward differences with
    ``step`` are computed in float64. A stated number is right when it is within
    ``abs_tol`` (half a unit of the third decimal, i.e. it is a correct rounding) of the
    computed value. ``seed`` is unused (nothing is random) and kept for a uniform API.
    """
    del seed
    claimed = {**WRITEUP_CLAIM_5, **(stated or {})}
    w = torch.tensor(point, dtype=F64)
    values = _claim_5_functions(w)
    j_fwd = jacfwd(_claim_5_functions)(w)
    j_rev = jacrev(_claim_5_functions)(w)
    j_fd = torch.stack([(_claim_5_functions(w + step * e) - values) / step
                        for e in torch.eye(2, dtype=F64)], dim=1)
    ad_agree = float((j_fwd - j_rev).abs().max())
    computed_numbers: dict[str, float] = {"f1": float(values[0]), "f2": float(values[1])}
    for i in range(2):
        for j in range(2):
            computed_numbers[f"J_fd[{i}][{j}]"] = float(j_fd[i, j])
            computed_numbers[f"J_ad[{i}][{j}]"] = float(j_fwd[i, j])
    stated_numbers: dict[str, float] = {"f1": float(claimed["f1"]), "f2": float(claimed["f2"])}
    for key in ("J_fd", "J_ad"):
        for i in range(2):
            for j in range(2):
                stated_numbers[f"{key}[{i}][{j}]"] = float(claimed[key][i][j])
    wrong = [key for key, value in stated_numbers.items()
             if abs(value - computed_numbers[key]) > abs_tol + 1e-12]
    if ad_agree > 1e-12:
        wrong.append("forward and reverse AD disagree")
    fixes = [f"{key} = {computed_numbers[key]:.3f} ({computed_numbers[key]:.4f}), not "
             f"{stated_numbers[key]:g}" for key in wrong if key in computed_numbers]
    measurements = {key.replace("[", "_").replace("]", ""): value
                    for key, value in computed_numbers.items()}
    measurements.update({"max_abs_diff_jacfwd_jacrev": ad_agree, "wrong_numbers": float(len(wrong))})
    measurements.update({
        "max_abs_err_stated": max(abs(stated_numbers[k] - computed_numbers[k])
                                  for k in stated_numbers),
    })

    def matrix(name: str, source: Mapping[str, float]) -> str:
        rows = [", ".join(f"{source[f'{name}[{i}][{j}]']:.3f}" for j in range(2))
                for i in range(2)]
        return "[[" + "], [".join(rows) + "]]"

    computed = (f"f1 = {computed_numbers['f1']:.4f}, f2 = {computed_numbers['f2']:.4f}; "
                f"J = {matrix('J_ad', computed_numbers)} (jacfwd = jacrev); J_fd = "
                f"{matrix('J_fd', computed_numbers)}")
    return ClaimResult(
        claim=5,
        title="forward and reverse autodiff Jacobian",
        writeup=(f"f1 = {stated_numbers['f1']:g}, f2 = {stated_numbers['f2']:g}; J_fd = "
                 f"{matrix('J_fd', stated_numbers)}; J_ad = {matrix('J_ad', stated_numbers)}"),
        computed=computed,
        verdict=_verdict(wrong),
        correct_value="; ".join(fixes) if fixes else None,
        tolerance=f"|stated - computed| <= {abs_tol:g} (correct 3-decimal rounding)",
        measurements=measurements,
    )
