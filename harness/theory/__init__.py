"""Numerical checks of the write-up's theory claims, and their table and figures.

``run_claim(n)`` recomputes claim n with PyTorch and returns a ``ClaimResult`` whose verdict
is derived from the computation; ``claims_table`` and ``claim_figures`` turn the results'
``to_dict()`` outputs (what trial records hold) into report outputs.
"""

from harness.theory.claims import (
    CLAIMS,
    VERDICTS,
    ClaimResult,
    check_claim_1,
    check_claim_2,
    check_claim_3,
    check_claim_4,
    check_claim_5,
    check_claim_6,
    check_claim_7,
    check_claim_8,
    run_claim,
)
from harness.theory.report import claim_figures, claims_table

__all__ = [
    "CLAIMS", "VERDICTS", "ClaimResult", "check_claim_1", "check_claim_2", "check_claim_3",
    "check_claim_4", "check_claim_5", "check_claim_6", "check_claim_7", "check_claim_8",
    "claim_figures", "claims_table", "run_claim",
]
