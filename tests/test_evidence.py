"""Verdicts from 95% intervals with three outcomes (harness.evidence)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.evidence import (
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    Claim,
    Interval,
    bootstrap_interval,
    judge,
    judge_seeds,
    t_interval,
)

GAP = Claim("gap", "noisy targets match clean ones", "noisy - clean PSNR (dB)", "equivalence", 0.2)
SLOWER = Claim("slower", "random labels fit slower", "epochs ratio", "greater", 1.0)
FASTER = Claim("faster", "Gaussian inputs fit faster", "epochs ratio", "less", 1.0)


def test_t_interval_matches_the_textbook_formula():
    # n = 3, mean 2, sd 1: half width t(0.975, 2) * 1 / sqrt(3) = 4.302653 / 1.732051.
    interval = t_interval([1.0, 2.0, 3.0])
    assert interval.estimate == 2.0 and interval.n == 3
    assert interval.high - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert interval.low == pytest.approx(2.0 - (interval.high - 2.0))


def test_one_observation_gives_no_interval_and_an_inconclusive_verdict():
    assert t_interval([0.1]) is None
    evidence = judge(GAP, None)
    assert evidence.verdict == INCONCLUSIVE and "fewer than two observations" in evidence.reason()


@pytest.mark.parametrize(
    ("claim", "low", "high", "verdict"),
    [
        (GAP, -0.1, 0.15, SUPPORTED),  # inside the margin (TOST)
        (GAP, -0.5, 0.1, INCONCLUSIVE),  # straddles -0.2
        (GAP, 0.3, 0.9, CONTRADICTED),  # wholly outside
        (GAP, -0.9, -0.25, CONTRADICTED),
        (SLOWER, 1.2, 2.5, SUPPORTED),
        (SLOWER, 0.8, 1.3, INCONCLUSIVE),
        (SLOWER, 0.5, 0.9, CONTRADICTED),
        (FASTER, 0.2, 0.6, SUPPORTED),
        (FASTER, 0.9, 1.1, INCONCLUSIVE),
        (FASTER, 1.1, 1.6, CONTRADICTED),
    ],
)
def test_each_claim_kind_has_all_three_outcomes(claim, low, high, verdict):
    evidence = judge(claim, Interval((low + high) / 2, low, high, 3, "t over seeds"))
    assert evidence.verdict == verdict
    assert claim.threshold_text() in evidence.reason()


def test_a_point_estimate_inside_the_margin_is_not_enough():
    # The committed mini denoising gap: -0.07 ± 0.30 dB over 2 seeds. Its point estimate
    # sits inside ±0.2 dB, but its interval does not: inconclusive, not supported.
    gaps = [-0.07 - 0.30 / math.sqrt(2), -0.07 + 0.30 / math.sqrt(2)]
    evidence = judge(GAP, t_interval(gaps))
    assert abs(evidence.interval.estimate) < 0.2
    assert evidence.verdict == INCONCLUSIVE


def test_bootstrap_is_seeded_and_narrows_with_more_images():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0.05, 1.0, 100), rng.normal(0.05, 1.0, 10_000)
    first, again = bootstrap_interval(small, seed=3), bootstrap_interval(small, seed=3)
    assert first == again
    wide, narrow = first, bootstrap_interval(large, seed=3)
    assert narrow.high - narrow.low < (wide.high - wide.low) / 5
    assert narrow.low < 0.05 < narrow.high and narrow.method == "bootstrap over test images"


def test_an_accuracy_interval_never_reaches_past_100():
    # memorization/mini's random-label fit on 2026-11-28: 99.60% and 99.94% over two seeds.
    # Its t-interval runs past 100%; cut at the claim's limits it stops there, and the
    # verdict, which turns on the lower bound, is the same.
    fits = Claim("fits", "fits random labels", "training accuracy (%)", "greater", 99.0,
                 limits=(0.0, 100.0))
    unbounded = judge_seeds(Claim("fits", "", "", "greater", 99.0), [99.60, 99.94])
    bounded = judge_seeds(fits, [99.60, 99.94])
    assert unbounded.interval.high > 100.0
    assert bounded.interval.high == 100.0
    assert bounded.interval.low == unbounded.interval.low
    assert bounded.interval.estimate == unbounded.interval.estimate
    assert bounded.verdict == unbounded.verdict
    assert "100.00]" in bounded.interval_text()


def test_the_above_chance_gate_fails_at_chance_and_names_the_lowest() -> None:
    from harness.evidence import above_chance

    passed = above_chance([0.42, 0.31], 0.1, "the grid's lowest test accuracy")
    assert passed.passed and passed.measured == (
        "the grid's lowest test accuracy is 31.0% (chance 10%)")
    failed = above_chance([0.42, 0.1], 0.1, "the lowest of the two")
    assert not failed.passed and "10.0% (chance 10%)" in failed.measured
    assert not above_chance([], 0.1, "the lowest").passed
