"""Verdicts a skeptical reviewer accepts (issue 30): judged only under the claims registered
before the run, gated, honest about their kind, scoped to the scale that ran, and sized by
a pilot. Synthetic records, no training; the run itself is covered in test_cli_run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_study_verdicts import denoising_records, imbalance_records, table1_records

from harness.evidence import (
    CONTRADICTED,
    HOLDS,
    INCONCLUSIVE,
    NOT_JUDGED,
    SUPPORTED,
    UNDERPOWERED,
    Claim,
    Interval,
    Judging,
    judge,
    judge_seeds,
    judging,
)
from harness.power import needed_seeds, power_text
from harness.registration import claim_entries, claims_hash, judging_for, register
from harness.report.verdicts import verdict_frame
from harness.study import get_study
from studies import denoising, imbalance, memorization

SLOWDOWN = memorization.CONSTANT_SLOWDOWN


def registered_run(study_name: str, profile: str, edit=None) -> dict:
    """run.json as `harness run` writes it: the claims as the study file states them now,
    their hash, and when; ``edit`` changes the registered copy (the file as it was run)."""
    claims = claim_entries(get_study(study_name), profile)
    if edit is not None:
        edit(claims)
    return {"registration": {"claims": claims, "hash": claims_hash(claims),
                             "registered_at": "2026-12-07 10:00:00 UTC",
                             "first_trial_at": "2026-12-07 10:00:05 UTC"}}


def judged_under(run: dict | None, records: list[dict], study_name: str = "memorization",
                 profile: str = "smoke"):
    study = get_study(study_name)
    with judging(judging_for(study, profile, records, run)):
        return study.evidence(records)


RECORDS = table1_records([0.9995, 0.9996, 0.9997], [2.0, 2.1, 1.9])


# ---------------------------------------------------------------------------- registration


def test_registered_claims_are_judged_as_registered_with_when_and_first_record():
    judged = judged_under(registered_run("memorization", "smoke"), RECORDS)
    assert not any(e.is_post_hoc for e in judged)
    assert "Registered 2026-12-07 10:00:00 UTC; first record 2026-12-07 10:00:05 UTC" in \
        judged[0].reason()
    assert "post hoc" not in judged[0].verdict_text()


def test_a_claim_edited_after_its_run_is_post_hoc_and_says_what_changed():
    def lower_the_bar(claims: dict) -> None:  # the run registered 99.5; the file now says 99
        claims["fits random labels"]["threshold"] = 99.5

    judged = judged_under(registered_run("memorization", "smoke", lower_the_bar), RECORDS)
    fits = judged[0]
    assert fits.verdict == SUPPORTED and fits.is_post_hoc
    assert "post hoc" in fits.verdict_text()
    assert "changed after its run (threshold 99.5 -> 99.0)" in fits.reason()
    assert not any(e.is_post_hoc for e in judged[1:])  # the claims left alone stay registered


def test_raising_n_after_a_run_counts_as_a_change():
    def two_seeds(claims: dict) -> None:
        for entry in claims.values():
            entry["n"] = 2

    n_now = claim_entries(get_study("memorization"), "smoke")["fits random labels"]["n"]
    judged = judged_under(registered_run("memorization", "smoke", two_seeds), RECORDS)
    assert all(e.is_post_hoc for e in judged)
    assert f"n 2 -> {n_now}" in judged[0].post_hoc


def test_a_registration_edited_without_its_hash_is_post_hoc():
    run = registered_run("memorization", "smoke")
    run["registration"]["claims"]["fits random labels"]["threshold"] = 98.0  # hash unchanged
    judged = judged_under(run, RECORDS)
    assert all("hash does not match" in e.post_hoc for e in judged)


def test_records_with_no_registration_are_post_hoc():
    judged = judged_under(None, RECORDS)
    assert all(e.is_post_hoc and "Registered: never" in e.reason() for e in judged)


def test_register_writes_the_claims_and_their_hash_and_a_resume_keeps_them(tmp_path: Path):
    study = get_study("denoising")
    first = register(study, "smoke", tmp_path, resume=False)
    written = json.loads((tmp_path / "registration.json").read_text())
    assert written == first and written["hash"] == claims_hash(written["claims"])
    assert set(written["claims"]) == {c.name for c in denoising.CLAIMS}
    entry = written["claims"][denoising.IMPULSE_BREAKS_L2.name]
    assert {"statement", "effect", "kind", "threshold", "n", "gate"} <= set(entry)
    assert entry["gate"] == denoising.DENOISES
    written["registered_at"] = "earlier"
    (tmp_path / "registration.json").write_text(json.dumps(written))
    assert register(study, "smoke", tmp_path, resume=True)["registered_at"] == "earlier"


# ---------------------------------------------------------------------------- gates


def test_a_failed_gate_gives_no_verdict():
    # CE at 0% on the rarer half in every seed: CB-focal "helps" them by predicting them at
    # all; the claim is not judged, whatever the interval says.
    records = imbalance_records([2.0, 2.1, 1.9], [-2.0, -2.1, -1.9])
    for r in records:
        if r.get("label") == "CE":
            r["per_class_accuracy"] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]
    rare = imbalance.evidence(records)[0]
    assert rare.verdict == NOT_JUDGED and rare.interval is None
    assert rare.verdict_text().startswith("not judged: CE at or below chance on classes 5, 6, 7")
    assert imbalance.EVERY_CLASS_LEARNED in rare.reason()


def test_a_denoiser_that_does_not_denoise_is_not_judged():
    records = denoising_records("gaussian", [0.02, -0.03, 0.01])
    for r in records:
        r["final"]["input_psnr"] = 26.0  # clean-target training only 1 dB above the input
    gaussian = denoising.evidence(records)[0]
    assert gaussian.verdict == NOT_JUDGED
    assert "1.0 dB above the noisy input" in gaussian.verdict_text()


def test_fitting_speeds_are_compared_only_once_true_labels_fit():
    records = table1_records([1.0] * 3, [2.0, 2.1, 1.9])
    for r in records:
        if r["label"].endswith("| none") and r["config"]["repeat"] == 1:
            r["time_to_fit"]["epoch_99"] = None
    slowdown = memorization.evidence(records)[2]
    assert slowdown.verdict == NOT_JUDGED
    assert "true labels reached 99% in 2 of 3" in slowdown.verdict_text()


# ---------------------------------------------------------------------------- kinds


def test_a_zero_spread_check_reads_holds_with_no_interval():
    claim = Claim("fits", "fits", "accuracy (%)", "greater", 99.0, limits=(0.0, 100.0))
    evidence = judge_seeds(claim, [100.0, 100.0, 100.0])
    assert evidence.verdict == HOLDS and evidence.interval is None
    assert evidence.interval_text() == "100.00 in all 3 seeds" and "[" not in evidence.reason()
    row = verdict_frame([evidence]).iloc[0]
    assert row["estimate [95% interval]"] == "100.00 in all 3 seeds" and row["n"] == "3"


def test_a_two_sided_reading_is_tested_on_both_sides():
    # "Slower by a small constant factor": 1.0x is no slowdown. A one-sided "< 5" would
    # call [0.95, 1.05] supported; inside (1, 5) it is not.
    assert SLOWDOWN.kind == "between" and SLOWDOWN.threshold_text() == "inside (1, 5)"
    for (low, high), verdict in (((1.2, 2.5), SUPPORTED), ((0.95, 1.05), INCONCLUSIVE),
                                 ((0.6, 0.9), CONTRADICTED), ((4.5, 5.5), INCONCLUSIVE),
                                 ((6.0, 7.0), CONTRADICTED)):
        assert judge(SLOWDOWN, Interval((low + high) / 2, low, high, 3, "t")).verdict == verdict
    # From records: random labels no slower than true ones.
    no_slower = memorization.evidence(table1_records([1.0] * 3, [1.0, 1.02, 0.98]))[2]
    assert no_slower.verdict == INCONCLUSIVE


def test_a_claim_covers_only_what_ran():
    judged = memorization.evidence(table1_records([0.9995, 0.9996, 0.9997], [2.0, 2.1, 1.9]))
    assert "for the mlp 1x512, the only model run" in judged[0].reason()
    assert "weight decay 0.0005, the only regularizer run" in judged[3].reason()


# ---------------------------------------------------------------------------- scope


def test_every_verdict_string_carries_its_scale(tmp_path: Path):
    study = get_study("memorization")
    narrative = study.narrate(RECORDS, "smoke", tmp_path)
    scale = "at smoke scale (1,000 training images"
    assert narrative.evidence and all(scale in e.verdict_text() for e in narrative.evidence)
    assert scale in narrative.headline and scale in narrative.verdict
    frame = verdict_frame(narrative.evidence)
    assert all(scale in cell for cell in frame["verdict"])


def test_a_verdict_outside_any_judging_says_no_scale():
    # The guard of the test above: without the Judging that Study.narrate sets, no scale.
    assert "scale (" not in memorization.evidence(RECORDS)[0].verdict_text()


# ---------------------------------------------------------------------------- power


def test_needed_seeds_match_the_textbook_one_sample_t_test():
    # Effect 0.5 sd, two-sided 5% (one side 2.5%), 80% power: n = 33.4 -> 34 (Cohen).
    claim = Claim("c", "c", "e", "greater", 0.0)
    rng_free = [0.5 + 1.0 * z for z in (-1.0, 0.0, 1.0)]  # mean 0.5, sd 1
    assert needed_seeds(claim, rng_free) == 34
    assert needed_seeds(claim, [0.5, 0.5]) is None  # no spread: nothing to size
    deterministic = Claim("d", "d", "e", "greater", 0.5, deterministic=True)
    assert needed_seeds(deterministic, [1.0, 0.0, 1.0]) is None


def test_an_equivalence_needs_both_sides_to_pass():
    margin = Claim("m", "m", "gap", "equivalence", 0.2)
    centred = needed_seeds(margin, [-0.1, 0.0, 0.1])
    off_centre = needed_seeds(margin, [0.0, 0.1, 0.2])
    assert centred is not None and off_centre is not None and off_centre > centred


def test_an_inconclusive_interval_with_too_few_seeds_reads_underpowered():
    claim = Claim("gap", "gap", "gap (dB)", "equivalence", 0.2)
    with judging(Judging(scope="at mini scale (x)", needed={"gap": 27})):
        evidence = judge_seeds(claim, [-0.3, 0.4, 0.05])
    assert evidence.verdict == UNDERPOWERED
    # No registration in this Judging: post hoc as well.
    assert evidence.verdict_text() == "underpowered (needs n ≈ 27), post hoc, at mini scale (x)"
    assert "needs n ≈ 27 seeds, not the 3 run" in evidence.reason()
    with judging(Judging(needed={"gap": 3})):  # enough seeds: inconclusive it stays
        assert judge_seeds(claim, [-0.3, 0.4, 0.05]).verdict == INCONCLUSIVE


def test_the_dry_run_power_table_names_the_pilot_and_the_profiles_n(tmp_path: Path):
    from harness.files import write_json_atomic

    records = denoising_records("gaussian", [0.3, -0.2, 0.1, -0.4])
    folder = tmp_path / "denoising" / "mini" / "records" / "denoise"
    for i, r in enumerate(records):
        write_json_atomic(folder / f"{i}.json", r)
    text = power_text(get_study("denoising"), "mini", tmp_path)
    gaussian = denoising.MATCHES_CLEAN["gaussian"]
    line = next(line for line in text.splitlines() if line.startswith(f"- {gaussian.name}"))
    n_mini = claim_entries(get_study("denoising"), "mini")[gaussian.name]["n"]
    expected = needed_seeds(gaussian, [0.3, -0.2, 0.1, -0.4])
    assert "over 4 seeds" in line and f"needs n ≈ {expected} for 80% power to read supported" in line
    assert f"profile n = {n_mini}" in line
    assert ("underpowered" if n_mini < expected else "enough") in line
    assert "pilot" in text.splitlines()[0] and str(folder.parent) in text.splitlines()[0]
    assert not math.isnan(expected)


def test_the_dry_run_power_table_says_when_the_pilot_is_missing(tmp_path: Path):
    assert "are not there" in power_text(get_study("denoising"), "mini", tmp_path)


# ---------------------------------------------------------------------------- test-set variance


def test_a_hierarchical_bootstrap_carries_the_test_sets_variance():
    """Three seeds that agree almost exactly, each on 20 test images: the t-interval over
    seeds is narrow, but 20 images per arm leave the effect far less certain; the verdict
    reads the wider interval and names it, with the other one beside it."""
    import numpy as np

    from harness.intervals import HIERARCHICAL, hierarchical_bootstrap

    def arms(correct_a: int, correct_b: int) -> list[np.ndarray]:
        return [np.r_[np.ones(correct_a), np.zeros(20 - correct_a)],
                np.r_[np.ones(correct_b), np.zeros(20 - correct_b)]]

    def gain(arrays) -> float:
        return 100 * float(arrays[1].mean() - arrays[0].mean())

    seeds = [arms(10, 13), arms(10, 13), arms(11, 14)]
    first = hierarchical_bootstrap(seeds, gain, seed=1)
    assert first == hierarchical_bootstrap(seeds, gain, seed=1)  # seeded
    assert first.method == HIERARCHICAL and first.estimate == pytest.approx(15.0)
    claim = Claim("gain", "b beats a", "b - a accuracy (points)", "greater", 0.0)
    assert judge_seeds(claim, [15.0, 15.0, 15.1]).verdict == SUPPORTED  # seeds alone
    judged = judge_seeds(claim, [15.0, 15.0, 15.1], examples=seeds, effect_of=gain)
    assert judged.interval.method == HIERARCHICAL and judged.interval.low < 0 < 15
    assert judged.verdict == INCONCLUSIVE and "the t over seeds gives the narrower" in judged.note


def test_a_pilot_outside_a_claims_gate_sizes_no_n(tmp_path: Path):
    from harness.files import write_json_atomic

    records = imbalance_records([20.0, 25.0, 30.0], [-2.0, -1.0, -3.0])
    for r in records:
        if r.get("label") == "CE":
            r["per_class_accuracy"] = [0.9] * 5 + [0.0] * 5
    folder = tmp_path / "imbalance" / "mini" / "records" / "main"
    for i, r in enumerate(records):
        write_json_atomic(folder / f"{i}.json", r)
    lines = power_text(get_study("imbalance"), "mini", tmp_path).splitlines()
    rare = next(line for line in lines if line.startswith("- CB-focal helps the rarer"))
    assert "its gate failed in the pilot (CE at or below chance" in rare
    assert "needs n" not in rare and "underpowered" not in rare
    overall = next(line for line in lines if line.startswith("- CB-focal worse overall"))
    assert "needs n ≈" in overall
