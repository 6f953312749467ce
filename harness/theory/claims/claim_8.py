"""Claim 8: One SGD step on a single term of f(w) = 1/2 (w-2)^2 + 1/2 (w+1)^2 from w = 0.

See ``check_claim_8``; the package docstring says how a verdict is derived."""

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
    _verdict,
)


def check_claim_8(
    seed: int = 0,
    *,
    learning_rates: Sequence[float] | None = None,
    start: float = 0.0,
    step_term: int = 2,
    stated_raises: bool = True,
) -> ClaimResult:
    """One SGD step on a single term of f(w) = 1/2 (w-2)^2 + 1/2 (w+1)^2 from w = 0.

    f before and after the step (gradient of term ``step_term`` by autograd) is computed for
    each learning rate; the write-up's 'the step raises f' (``stated_raises``) holds when
    some learning rate raises f (and is wrong if none does). ``seed`` is unused.
    """
    del seed
    if learning_rates is None:
        learning_rates = [float(x) for x in np.logspace(-2, math.log10(2.0), 25)]
    terms = (lambda w: 0.5 * (w - 2) ** 2, lambda w: 0.5 * (w + 1) ** 2)

    def f(w: Tensor) -> Tensor:
        return terms[0](w) + terms[1](w)

    w0 = torch.tensor(start, dtype=F64)
    term_grad = float(grad(terms[step_term - 1])(w0))
    full_grad = float(grad(f)(w0))
    f0 = float(f(w0))
    after, full_after = [], []
    for lr in learning_rates:
        after.append(float(f(w0 - lr * term_grad)))
        full_after.append(float(f(w0 - lr * full_grad)))
    rises = [lr for lr, fa in zip(learning_rates, after, strict=True) if fa > f0]
    raises = bool(rises)
    wrong = [] if raises == stated_raises else [
        f"'a step on term {step_term} raises f' is {stated_raises}"]
    increase = [fa - f0 for fa in after]
    computed = (f"f({start:g}) = {f0:g}; term-{step_term} gradient {term_grad:g}; f rises for "
                f"{len(rises)} of {len(learning_rates)} lr in {min(learning_rates):g}.."
                f"{max(learning_rates):g}"
                + (f" (by {_g(min(increase))}..{_g(max(increase))})" if rises else ""))
    return ClaimResult(
        claim=8,
        title="an SGD step can raise the full objective",
        writeup=(f"f = 1/2 (w-2)^2 + 1/2 (w+1)^2: an SGD step from w = {start:g} on term "
                 f"{step_term} {'raises' if stated_raises else 'never raises'} f"),
        computed=computed,
        verdict=_verdict(wrong),
        correct_value=(None if not wrong else
                       f"f rises for {len(rises)} of {len(learning_rates)} learning rates "
                       f"({min(rises):g}..{max(rises):g})" if rises else
                       f"no step raises f for lr in {min(learning_rates):g}.."
                       f"{max(learning_rates):g}"),
        tolerance="exact comparison f(after) > f(before) in float64",
        measurements={
            "f_before": f0,
            "term_grad": term_grad,
            "full_grad": full_grad,
            "learning_rates": float(len(learning_rates)),
            "learning_rates_raising_f": float(len(rises)),
            "min_increase": min(increase),
            "max_increase": max(increase),
        },
        series={"lr": list(learning_rates), "f_after": after, "f_after_full_step": full_after},
    )
