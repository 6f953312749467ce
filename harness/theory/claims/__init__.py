"""Numerical checks of the write-up's eight theory claims: one module per claim
(``claim_1`` ... ``claim_8``), what they share in ``common``, the registry here.

Each ``check_claim_N`` recomputes what the write-up states with PyTorch on the CPU (float64
where precision matters) and returns a ``ClaimResult`` whose verdict is *derived* from the
computation: every stated value is a keyword parameter whose default is the write-up's
value, it is compared with the computed value under a stated tolerance, and
``_verdict`` turns the list of mismatches into one of ``VERDICTS``. Nothing is decided per
claim by hand, so feeding a right value where the write-up has a wrong one (or the
reverse) flips the verdict.

Randomness only comes from ``torch.Generator`` objects seeded from the ``seed`` argument,
so a check is deterministic for a given seed and never touches the global RNG state.
Timings never enter a verdict (see ``benchmarks/circulant_fft.py`` for those).
"""

from __future__ import annotations

from collections.abc import Callable

from harness.theory.claims.claim_1 import check_claim_1
from harness.theory.claims.claim_2 import check_claim_2
from harness.theory.claims.claim_3 import check_claim_3
from harness.theory.claims.claim_4 import check_claim_4, mlp_widths_param_count
from harness.theory.claims.claim_5 import check_claim_5
from harness.theory.claims.claim_6 import (
    check_claim_6,
    circulant,
    circulant_fft_matvec,
    commutation_operator,
    shift_matrix,
)
from harness.theory.claims.claim_7 import argmin_constant, check_claim_7
from harness.theory.claims.claim_8 import check_claim_8
from harness.theory.claims.common import (
    DERIVATION_WRONG,
    HOLDS,
    NUMBER_WRONG,
    VERDICTS,
    ClaimResult,
    loglog_slope,
)

CLAIMS: dict[int, Callable[..., ClaimResult]] = {
    1: check_claim_1,
    2: check_claim_2,
    3: check_claim_3,
    4: check_claim_4,
    5: check_claim_5,
    6: check_claim_6,
    7: check_claim_7,
    8: check_claim_8,
}


def run_claim(claim: int, seed: int = 0) -> ClaimResult:
    """Run one claim's check with the write-up's stated values."""
    if claim not in CLAIMS:
        raise ValueError(f"unknown claim {claim!r}; valid claims are {sorted(CLAIMS)}")
    return CLAIMS[claim](seed=seed)


__all__ = [
    "CLAIMS", "DERIVATION_WRONG", "HOLDS", "NUMBER_WRONG", "VERDICTS", "ClaimResult",
    "argmin_constant", "check_claim_1", "check_claim_2", "check_claim_3", "check_claim_4",
    "check_claim_5", "check_claim_6", "check_claim_7", "check_claim_8", "circulant",
    "circulant_fft_matvec", "commutation_operator", "loglog_slope", "mlp_widths_param_count",
    "run_claim", "shift_matrix",
]
