"""Claim 1: One gradient step minimizes the linearization plus (lambda/2)||w - w_t||^2.

See ``check_claim_1``; the package docstring says how a verdict is derived."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.func import grad

from harness.theory.claims.common import (
    F64,
    ClaimResult,
    _g,
    _generator,
    _lbfgs_minimize,
    _random_smooth_problem,
    _verdict,
)


def check_claim_1(
    seed: int = 0,
    *,
    dims: Sequence[int] = (2, 5, 10, 20),
    problems_per_dim: int = 2,
    stated_step_scale: float = 1.0,
    rtol: float = 1e-6,
) -> ClaimResult:
    """One gradient step minimizes the linearization plus (lambda/2)||w - w_t||^2.

    The write-up says the minimizer is w_t - (stated_step_scale / lambda) grad f(w_t) with
    stated_step_scale = 1. The surrogate is minimized numerically (LBFGS) on random
    logistic and quadratic problems; the claim holds if the stated step matches every
    numerical argmin to ``rtol`` (relative to the step length).
    """
    gen = _generator(seed, 1)
    rel_stated, rel_exact, scales, surrogate_grads = [], [], [], []
    for d in dims:
        for k in range(problems_per_dim):
            f = _random_smooth_problem(gen, d, "logistic" if k % 2 == 0 else "quadratic")
            lam = float(torch.exp(torch.empty(1, dtype=F64).uniform_(
                math.log(0.2), math.log(5.0), generator=gen)))
            w_t = torch.randn(d, generator=gen, dtype=F64)
            g_t = grad(f)(w_t)
            f_t = f(w_t).detach()

            def surrogate(w: Tensor, w_t: Tensor = w_t, g_t: Tensor = g_t, f_t: Tensor = f_t,
                          lam: float = lam) -> Tensor:
                step = w - w_t
                return f_t + step @ g_t + 0.5 * lam * (step @ step)

            start = w_t + torch.randn(d, generator=gen, dtype=F64)
            w_num = _lbfgs_minimize(surrogate, start)
            length = torch.linalg.norm(w_num - w_t)
            stated = w_t - (stated_step_scale / lam) * g_t
            exact = w_t - g_t / lam
            rel_stated.append(float(torch.linalg.norm(w_num - stated) / length))
            rel_exact.append(float(torch.linalg.norm(w_num - exact) / length))
            # The step length the numerical argmin implies, in units of 1/lambda.
            scales.append(float(lam * ((w_t - w_num) @ g_t) / (g_t @ g_t)))
            surrogate_grads.append(float(torch.linalg.norm(grad(surrogate)(w_num))))

    max_rel = max(rel_stated)
    wrong = [] if max_rel <= rtol else [f"step {stated_step_scale:g}/lambda"]
    implied = float(np.mean(scales))
    computed = (f"LBFGS argmin on {len(scales)} problems (d = {min(dims)}..{max(dims)}) is "
                f"w_t - c grad f(w_t)/lambda with c = {implied:.6f}; max rel. diff from the "
                f"stated step {_g(max_rel)}")
    return ClaimResult(
        claim=1,
        title="gradient step as a proximal minimizer",
        writeup=(f"argmin of the linear model + (lambda/2)||w - w_t||^2 is w_t - "
                 f"({stated_step_scale:g}/lambda) grad f(w_t)"),
        computed=computed,
        verdict=_verdict(wrong),
        correct_value=None if not wrong else f"w_t - ({implied:.6f}/lambda) grad f(w_t)",
        tolerance=f"relative difference <= {rtol:g}",
        measurements={
            "max_rel_diff_stated": max_rel,
            "max_rel_diff_one_over_lambda": max(rel_exact),
            "implied_step_scale_mean": implied,
            "implied_step_scale_min": min(scales),
            "implied_step_scale_max": max(scales),
            "max_surrogate_grad_norm": max(surrogate_grads),
            "problems": float(len(scales)),
        },
        series={"implied_step_scale": scales, "rel_diff_stated": rel_stated},
    )
