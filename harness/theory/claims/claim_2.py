"""Claim 2: The OGD regret bound, its exact identity, and the write-up's intermediate step.

See ``check_claim_2``; the package docstring says how a verdict is derived."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from harness.theory.claims.common import (
    F64,
    ClaimResult,
    _g,
    _generator,
    _verdict,
)


def _ogd_quantities(v: Tensor, w_star: Tensor, eta: Tensor) -> dict[str, Tensor]:
    """Online gradient descent w_1 = 0, w_{t+1} = w_t - eta v_t on a batch of sequences.

    v: (S, T, d), w_star: (S, d), eta: (S,). Returns per-sequence tensors.
    """
    csum = torch.cumsum(v, dim=1)
    w = -eta[:, None, None] * (csum - v)  # w_t = -eta * sum_{s<t} v_s
    w_next = -eta[:, None] * csum[:, -1]  # w_{T+1}
    lhs = ((w - w_star[:, None, :]) * v).sum(dim=(1, 2))
    sumsq = (v * v).sum(dim=(1, 2))
    star_sq = (w_star * w_star).sum(dim=1)
    gap_sq = ((w_star - w_next) ** 2).sum(dim=1)
    return {
        "lhs": lhs,
        "sumsq": sumsq,
        "star_sq": star_sq,
        "w_next": w_next,
        "intermediate": (w_star * w_next).sum(dim=1),
        "identity": (star_sq - gap_sq) / (2 * eta) + 0.5 * eta * sumsq,
    }


def check_claim_2(
    seed: int = 0,
    *,
    dims: Sequence[int] = (1, 2, 5, 20),
    horizons: Sequence[int] = (1, 5, 50, 400),
    sequences: int = 64,
    stated_constants: tuple[float, float] = (0.5, 0.5),
    stated_intermediate_step: bool = True,
    rtol: float = 1e-9,
) -> ClaimResult:
    """The OGD regret bound, its exact identity, and the write-up's intermediate step.

    The bound is ``sum_t <w_t - w*, v_t> <= a ||w*||^2/eta + b eta sum_t ||v_t||^2`` with the
    write-up's (a, b) = ``stated_constants`` = (1/2, 1/2). It is checked on random,
    adversarial (v_t against w*) and tight (w_{T+1} = w*) sequences; the tight family makes
    any smaller constant fail. ``stated_intermediate_step`` says the derivation relies on
    <w*, w_{T+1}> <= 0 for every sequence; a counterexample makes that derivation wrong.
    """
    gen = _generator(seed, 2)
    a, b = stated_constants
    worst_excess, worst_identity = -math.inf, 0.0
    worst_intermediate, counterexamples, total = -math.inf, 0, 0
    excess_by_family: dict[str, float] = {}
    for d in dims:
        for horizon in horizons:
            for family in ("gaussian", "against_w_star", "tight"):
                w_star = torch.randn(sequences, d, generator=gen, dtype=F64)
                eta = torch.exp(torch.empty(sequences, dtype=F64).uniform_(
                    math.log(1e-2), math.log(10.0), generator=gen))
                noise = torch.randn(sequences, horizon, d, generator=gen, dtype=F64)
                if family == "gaussian":
                    v = noise
                elif family == "against_w_star":
                    unit = w_star / torch.linalg.norm(w_star, dim=1, keepdim=True)
                    v = 0.5 * noise - unit[:, None, :]
                else:  # sum_t v_t = -w*/eta, so w_{T+1} = w* and the bound is attained
                    v = noise - noise.mean(dim=1, keepdim=True) \
                        - w_star[:, None, :] / (eta[:, None, None] * horizon)
                q = _ogd_quantities(v, w_star, eta)
                rhs = a * q["star_sq"] / eta + b * eta * q["sumsq"]
                scale = q["lhs"].abs() + rhs.abs()
                excess = float(((q["lhs"] - rhs) / scale).max())
                worst_excess = max(worst_excess, excess)
                excess_by_family[family] = max(excess_by_family.get(family, -math.inf), excess)
                identity = float(((q["lhs"] - q["identity"]).abs() / scale).max())
                worst_identity = max(worst_identity, identity)
                cosine = q["intermediate"] / (torch.linalg.norm(w_star, dim=1)
                                              * torch.linalg.norm(q["w_next"], dim=1) + 1e-300)
                worst_intermediate = max(worst_intermediate, float(cosine.max()))
                counterexamples += int((q["intermediate"] > rtol * q["star_sq"]).sum())
                total += sequences

    # The smallest counterexample, through the same code path: d = 1, T = 1, w* = 1,
    # v_1 = -1, eta = 1 gives w_2 = 1 and <w*, w_2> = 1 > 0.
    tiny = _ogd_quantities(torch.tensor([[[-1.0]]], dtype=F64), torch.tensor([[1.0]], dtype=F64),
                           torch.tensor([1.0], dtype=F64))
    tiny_value = float(tiny["intermediate"][0])

    wrong = [] if worst_excess <= rtol else [f"constants a = {a:g}, b = {b:g}"]
    intermediate_false = counterexamples > 0 or tiny_value > 0
    wrong_derivation = ["<w*, w_(T+1)> <= 0"] if stated_intermediate_step and intermediate_false \
        else []
    computed = (f"bound on {total} sequences: max excess {_g(worst_excess)} (equality when "
                f"w_(T+1) = w*); identity residual {_g(worst_identity)}; <w*, w_(T+1)> > 0 in "
                f"{counterexamples} of {total} (e.g. T = 1, w* = 1, v_1 = -1: {tiny_value:g})")
    return ClaimResult(
        claim=2,
        title="online gradient descent regret bound",
        writeup=(f"sum_t <w_t - w*, v_t> <= {a:g} ||w*||^2/eta + {b:g} eta sum_t ||v_t||^2, "
                 "proved via <w*, w_(T+1)> <= 0" if stated_intermediate_step else
                 f"sum_t <w_t - w*, v_t> <= {a:g} ||w*||^2/eta + {b:g} eta sum_t ||v_t||^2"),
        computed=computed,
        verdict=_verdict(wrong, wrong_derivation),
        correct_value=(
            "bound with constants 1/2, 1/2 (attained when w_(T+1) = w*)" if wrong else
            ("the bound follows from ||w* - w_(T+1)||^2 >= 0, not from <w*, w_(T+1)> <= 0"
             if worst_identity <= rtol else "<w*, w_(T+1)> <= 0 is false in general")
            if wrong_derivation else None),
        tolerance=f"(LHS - RHS)/(|LHS| + |RHS|) <= {rtol:g}; counterexample if "
                  f"<w*, w_(T+1)> > {rtol:g} ||w*||^2",
        measurements={
            "max_rel_excess": worst_excess,
            "max_rel_excess_gaussian": excess_by_family["gaussian"],
            "max_rel_excess_against_w_star": excess_by_family["against_w_star"],
            "max_rel_excess_tight": excess_by_family["tight"],
            "max_identity_residual": worst_identity,
            "intermediate_counterexamples": float(counterexamples),
            "sequences": float(total),
            "max_cosine_w_star_w_next": worst_intermediate,
            "smallest_counterexample_value": tiny_value,
        },
    )
