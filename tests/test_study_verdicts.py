"""Each study's claims, judged by their 95% intervals: synthetic records built so that a
claim comes out supported, contradicted and inconclusive; numbers that never round into a
different claim; and the report's verdict tables. Nothing here trains."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from harness.evidence import (
    CONTRADICTED,
    FAILS,
    INCONCLUSIVE,
    SUPPORTED,
    Claim,
    Evidence,
    Interval,
    judge,
    judge_seeds,
)
from harness.evidence import HOLDS as HOLDS_VERDICT
from harness.numbers import decimals_apart, fixed_apart
from harness.records import RECORD_SCHEMA_VERSION
from harness.report import format_mean_sd
from harness.report.render import render_latex, render_markdown
from harness.report.sections import Section
from harness.study import Narrative
from harness.theory.claims import DERIVATION_WRONG, HOLDS, NUMBER_WRONG
from studies import cnn_search, denoising, imbalance, memorization, theory

OUTCOMES = (SUPPORTED, CONTRADICTED, INCONCLUSIVE)


def record(stage: str, config: dict[str, Any], final: dict[str, Any], status: str = "completed",
           **extra: Any) -> dict[str, Any]:
    """A minimal trial record: its config is its resolved config (no model to resolve)."""
    config = {"repeat": 0, **config}
    return {"schema_version": RECORD_SCHEMA_VERSION, "status": status, "stage": stage,
            "config": config, "resolved_config": config,
            "config_hash": f"{stage}-{sorted(config.items())}", "final": final, **extra}


def seeds(values: list[float]) -> list[tuple[int, float]]:
    return list(enumerate(values))


# Per outcome, an effect per seed that puts the interval above, below or across a
# threshold of 0: three tight seeds either side, or two seeds of opposite sign.
ABOVE, BELOW, ACROSS = [2.0, 2.1, 1.9], [-2.0, -2.1, -1.9], [3.0, -3.0]
EFFECTS_AROUND_ZERO = dict(zip(OUTCOMES, (ABOVE, BELOW, ACROSS), strict=True))


# ---------------------------------------------------------------------------- cnn_search


def depth_width_records(differences: list[float]) -> list[dict[str, Any]]:
    """One depth x width grid per seed, with accuracy exactly linear in log2 depth and
    log2 width: depth's slope minus width's is the seed's difference."""
    out = []
    for repeat, difference in seeds(differences):
        depth_slope, width_slope = 2.0 + difference, 2.0
        for convs in (1, 2, 4):
            for width in (8, 16, 32):
                accuracy = 40 + depth_slope * math.log2(3 * convs) + width_slope * math.log2(width)
                out.append(record("depth-width", {
                    "model.blocks": 3, "model.convs_per_block": convs, "model.base_width": width,
                    "repeat": repeat}, {"test_acc": accuracy / 100}))
    return out


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_cnn_search_depth_over_width_has_all_three_outcomes(outcome):
    (judged,) = cnn_search.evidence(depth_width_records(EFFECTS_AROUND_ZERO[outcome]))
    assert judged.claim is cnn_search.DEPTH_OVER_WIDTH and judged.verdict == outcome


def test_cnn_search_point_estimate_alone_is_not_a_finding():
    # One seed whose grid says depth helped by 5 points a doubling: no interval, no finding.
    (judged,) = cnn_search.evidence(depth_width_records([5.0]))
    assert judged.interval is None and judged.verdict == INCONCLUSIVE
    assert "run more seeds" in judged.reason()


def test_cnn_search_records_without_the_grid_are_inconclusive_and_say_why():
    (judged,) = cnn_search.evidence([record("baselines", {"lr": 0.1}, {"test_acc": 0.5})])
    assert judged.verdict == INCONCLUSIVE and "config.model.blocks" in judged.reason()


# ---------------------------------------------------------------------------- imbalance

CB_FOCAL = "CB-focal (beta 0.9999, gamma 1)"


def imbalance_records(rare_gains: list[float], error_gains: list[float]) -> list[dict[str, Any]]:
    """CE and CB-focal at IF 100 per seed: CB-focal's rarer-half accuracy higher by
    ``rare_gains`` points and its overall error higher by ``error_gains`` points."""
    out = []
    for (repeat, rare), (_, error) in zip(seeds(rare_gains), seeds(error_gains), strict=True):
        for label, rare_acc, test_acc in (("CE", 0.30, 0.60),
                                          (CB_FOCAL, 0.30 + rare / 100, 0.60 - error / 100)):
            per_class = [0.9] * 5 + [rare_acc] * 5
            out.append(record("main", {"imbalance_factor": 100, "repeat": repeat},
                              {"test_acc": test_acc}, label=label,
                              per_class_accuracy=per_class))
    return out


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_imbalance_claims_have_all_three_outcomes(outcome):
    effects = EFFECTS_AROUND_ZERO[outcome]
    rare, overall = imbalance.evidence(imbalance_records(effects, effects))
    assert rare.claim is imbalance.CB_FOCAL_HELPS_RARE and rare.verdict == outcome
    assert overall.claim is imbalance.CB_FOCAL_WORSE_OVERALL and overall.verdict == outcome
    assert rare.interval is not None and rare.interval.estimate == pytest.approx(
        sum(effects) / len(effects))


def test_imbalance_without_cb_focal_is_inconclusive_and_says_so():
    ce_only = [r for r in imbalance_records(ABOVE, ABOVE) if r["label"] == "CE"]
    for judged in imbalance.evidence(ce_only):
        assert judged.verdict == INCONCLUSIVE and "not both run" in judged.reason()


# ---------------------------------------------------------------------------- memorization


def table1_records(random_train: list[float], ratio: list[float],
                   unregularized_share: list[float] | None = None) -> list[dict[str, Any]]:
    """Table 1's MLP rows per seed: random labels at ``random_train`` true training
    accuracy, taking ``ratio`` times the true-label epochs to 99%; with weight decay, a
    test accuracy above chance of which the unregularized row keeps ``share``."""
    shares = unregularized_share or [1.0] * len(random_train)
    out = []
    for repeat, train in seeds(random_train):
        regularized = 0.6
        none = 0.1 + shares[repeat] * (regularized - 0.1)
        rows = (("none", none, 1.0, 20), ("wd", regularized, 1.0, 20),
                ("random labels", 0.1, train, 20 * ratio[repeat]))
        for setting, test_acc, train_acc, epochs in rows:
            config = {"weight_decay": 5e-4 if setting == "wd" else 0.0, "repeat": repeat,
                      "dataset": "digits"}
            out.append(record(
                "table1", config, {"test_acc": test_acc, "true_train_acc": train_acc},
                status="completed", label=f"mlp 1x512 | {setting}",
                time_to_fit={"epoch_99": epochs, "epoch_100": None},
                data={"train_size": 1000}))
    return out


@pytest.mark.parametrize(("outcome", "train"), [
    (SUPPORTED, [0.9995, 0.9996, 0.9997]),
    (CONTRADICTED, [0.95, 0.96, 0.955]),
    (INCONCLUSIVE, [0.999]),  # one seed: no interval
])
def test_memorization_fits_random_labels_has_all_three_outcomes(outcome, train):
    judged = memorization.evidence(table1_records(train, [2.0] * len(train)))[0]
    assert judged.claim is memorization.FITS_RANDOM_LABELS and judged.verdict == outcome


@pytest.mark.parametrize(("outcome", "ratio"), [
    (SUPPORTED, [2.0, 2.1, 1.9]),
    (CONTRADICTED, [10.0, 11.0, 12.0]),
    (INCONCLUSIVE, [2.0, 8.0]),
])
def test_memorization_slowdown_has_all_three_outcomes(outcome, ratio):
    judged = memorization.evidence(table1_records([1.0] * len(ratio), ratio))[2]
    assert judged.claim is memorization.CONSTANT_SLOWDOWN and judged.verdict == outcome


@pytest.mark.parametrize(("outcome", "share"), [
    (SUPPORTED, [0.98, 0.97, 0.99]),
    (CONTRADICTED, [0.5, 0.55, 0.45]),
    (INCONCLUSIVE, [0.99, 0.8]),
])
def test_memorization_regularizers_have_all_three_outcomes_and_name_what_ran(outcome, share):
    judged = memorization.evidence(table1_records([1.0] * len(share), [2.0] * len(share),
                                                  share))[3]
    assert judged.claim is memorization.REGULARIZERS_NOT_THE_EXPLANATION
    assert judged.verdict == outcome
    assert "weight decay 0.0005" in judged.reason() and "dropout: not run" in judged.reason()


def test_memorization_slowdown_names_the_seed_that_never_reached_99_percent():
    judged = memorization.evidence(table1_records([1.0] * 3, [2.0, 2.1, math.nan]))[2]
    assert judged.interval.n == 2 and judged.verdict == SUPPORTED
    assert "left out: seed 2" in judged.reason()


def test_memorization_older_records_without_time_to_fit_are_inconclusive():
    records = table1_records([1.0, 1.0], [2.0, 2.0])
    for r in records:
        del r["time_to_fit"]
    judged = memorization.evidence(records)[2]
    assert judged.verdict == INCONCLUSIVE and judged.interval is None
    assert "time_to_fit.epoch_99" in judged.reason()


def test_memorization_input_corruptions_fit_only_if_every_one_does():
    records = [record("corruptions", {"repeat": r}, {"true_train_acc": acc, "test_acc": 0.1},
                      label=f"mlp 1x512 | {setting}", status="fitted" if acc == 1 else "completed")
               for r in range(3) for setting, acc in (("random pixels", 1.0),
                                                      ("gaussian", 1.0),
                                                      ("shuffled pixels", 0.9))]
    judged = memorization.evidence(records + table1_records([1.0] * 3, [2.0] * 3))[1]
    # 90% in every seed: no spread, so a computed value that fails, with no interval.
    assert judged.claim is memorization.FITS_RANDOM_PIXELS and judged.verdict == FAILS
    assert judged.interval is None and judged.value_text == "90.00 in all 3 seeds"


# ---------------------------------------------------------------------------- denoising


def denoising_records(noise: str, gaps: list[float]) -> list[dict[str, Any]]:
    out = []
    for repeat, gap in seeds(gaps):
        for target, psnr in (("clean", 27.0), ("noisy", 27.0 + gap)):
            out.append(record("denoise", {"task.noise": noise, "task.target": target,
                                          "loss": "l2", "repeat": repeat},
                              {"test_psnr": psnr, "input_psnr": 20.0},
                              label=f"{noise}/{target}/l2"))
    return out


@pytest.mark.parametrize(("outcome", "gaps"), [
    (SUPPORTED, [0.02, -0.03, 0.01]),  # inside ±0.2 dB
    (CONTRADICTED, [-1.0, -1.1, -0.9]),  # wholly outside
    (INCONCLUSIVE, [-0.3, 0.3]),  # straddles the margin
])
def test_denoising_noisy_targets_match_clean_has_all_three_outcomes(outcome, gaps):
    judged = denoising.evidence(denoising_records("gaussian", gaps))
    gaussian = judged[0]
    assert gaussian.claim is denoising.MATCHES_CLEAN["gaussian"]
    assert gaussian.verdict == outcome
    # The noise models that did not run are inconclusive, and say why.
    assert all(e.verdict == INCONCLUSIVE and "with both targets" in e.reason()
               for e in judged[1:])


def test_denoising_impulse_breaks_l2():
    judged = denoising.evidence(denoising_records("impulse", [-4.6, -4.5, -4.7]))[-1]
    assert judged.claim is denoising.IMPULSE_BREAKS_L2 and judged.verdict == SUPPORTED


# ---------------------------------------------------------------------------- theory


def theory_records(claim: int, verdicts: list[str]) -> list[dict[str, Any]]:
    return [{"schema_version": RECORD_SCHEMA_VERSION, "status": "completed",
             "config": {"claim": claim, "repeat": r}, "verdict": v}
            for r, v in seeds(verdicts)]


@pytest.mark.parametrize(("outcome", "verdicts"), [
    (HOLDS_VERDICT, [HOLDS] * 3),
    (FAILS, [NUMBER_WRONG] * 3),
    (FAILS, [HOLDS, HOLDS, NUMBER_WRONG]),  # a computation must agree in every seed
])
def test_theory_each_claim_holds_or_fails_with_no_interval(outcome, verdicts):
    judged = {e.claim.name: e for e in theory.evidence(theory_records(8, verdicts))}
    claim_8 = judged[theory.STATED[8].name]
    assert claim_8.verdict == outcome and claim_8.interval is None
    assert claim_8.interval_text().startswith("agrees in ")
    # Every other claim did not run: inconclusive, never failed.
    assert all(e.verdict == INCONCLUSIVE for name, e in judged.items()
               if name != theory.STATED[8].name)


def test_theory_claim_2_holds_while_its_derivation_fails():
    judged = {e.claim.name: e for e in theory.evidence(theory_records(2, [DERIVATION_WRONG] * 3))}
    assert judged[theory.STATED[2].name].verdict == HOLDS_VERDICT
    assert judged[theory.DERIVATION_2.name].verdict == FAILS


def test_theory_claims_4_and_5_are_judged_part_by_part():
    """A wrong parameter count fails claim 4's counts, not its Newton and H v parts; a
    wrong f2 fails claim 5's f2, not its f1 and Jacobians."""
    records = theory_records(4, [NUMBER_WRONG] * 3) + theory_records(5, [NUMBER_WRONG] * 3)
    for r in records:
        if r["config"]["claim"] == 4:
            r["claim"] = {"correct_value": "5,610 parameters; Hessian 5,610 x 5,610",
                          "measurements": {"param_count_matches": 0.0, "hessian_matches": 0.0,
                                           "rop_rel_err": 4e-16}}
        else:
            r["claim"] = {"correct_value": "f2 = 3.099 (3.0986), not 3.097",
                          "measurements": {"max_abs_diff_jacfwd_jacrev": 0.0}}
    judged = {e.claim.name: e.verdict for e in theory.evidence(records)}
    assert judged[theory.PARTS[(4, "counts")].name] == FAILS
    assert judged[theory.PARTS[(4, "newton")].name] == HOLDS_VERDICT
    assert judged[theory.PARTS[(5, "f2")].name] == FAILS
    assert judged[theory.PARTS[(5, "rest")].name] == HOLDS_VERDICT


# ---------------------------------------------------------------------------- numbers


def test_an_accuracy_below_one_never_prints_as_100():
    assert format_mean_sd(0.99998, math.nan, scale=100, ceiling=100.0) == "99.998"
    assert format_mean_sd(0.99998, math.nan, scale=100) == "100.00"  # why the ceiling exists
    assert format_mean_sd(1.0, 0.0, scale=100, ceiling=100.0) == "100.00 ± 0.00"
    assert fixed_apart(99.998, [100.0]) == "99.998"
    assert decimals_apart([99.5], [100.0]) == 2


def test_an_interval_bound_never_prints_as_the_threshold_it_misses():
    claim = Claim("fit", "fits", "training accuracy", "greater", 1.0)
    evidence = judge(claim, Interval(0.99990, 0.99980, 0.99995, 3, "t over seeds"))
    assert evidence.verdict == CONTRADICTED
    assert "1.00" not in evidence.interval_text()
    assert evidence.interval_text() == "0.99990 [0.99980, 0.99995]"


def test_one_seed_is_judged_by_its_per_example_effects_when_the_records_carry_them():
    claim = Claim("gap", "noisy matches clean", "noisy - clean PSNR (dB)", "equivalence", 0.2)
    per_image = [0.01 + 0.05 * ((i % 7) - 3) for i in range(500)]
    judged = judge_seeds(claim, [0.01], per_example=per_image)
    assert judged.interval.method == "bootstrap over test images"
    assert judged.interval.n == 500 and judged.verdict == SUPPORTED
    assert judge_seeds(claim, [0.01]).verdict == INCONCLUSIVE  # no per-example effects


def test_memorization_tables_never_say_fitted_0_of_2_beside_100_percent():
    # True labels at 99.998% on both seeds, never reaching 100%: the table of time to
    # fit counts 0/2 fitted, so Table 1 must not round its training accuracy to 100.00.
    records = table1_records([0.9977, 0.9978], [2.0, 2.0])
    for r in records:
        if r["label"].endswith("| none"):
            r["final"]["true_train_acc"] = 0.99998
    frame = memorization.finished_frame(records)
    table = memorization.table1(frame, "digits")
    assert table.frame.loc["mlp 1x512 | none", "train (%)"] == "99.998 ± 0.000"
    slowdown = memorization.slowdown_table(frame, "digits")
    assert slowdown.frame.loc["mlp 1x512 | 1,000 | none", "fitted"] == "0/2"
    # Weight decay's rows did reach 100%: they still read 100.00.
    assert table.frame.loc["mlp 1x512 | wd", "train (%)"] == "100.00 ± 0.00"


# ---------------------------------------------------------------------------- the report


def sections_with_claims() -> tuple[list[Section], dict[str, tuple[Evidence, ...]]]:
    """A section per study whose narrative holds the study's own claims, judged on
    synthetic records (no results folder, no training)."""
    judged = {
        "cnn_search": cnn_search.evidence(depth_width_records(ABOVE)),
        "imbalance": imbalance.evidence(imbalance_records(ABOVE, BELOW)),
        "memorization": memorization.evidence(table1_records([0.9995, 0.9996, 0.9997],
                                                             [2.0, 2.1, 1.9])),
        "denoising": denoising.evidence(denoising_records("gaussian", [0.02, -0.03, 0.01])),
        "theory": theory.evidence(theory_records(2, [DERIVATION_WRONG] * 3)),
    }
    sections = []
    for study, evidence in judged.items():
        narrative = Narrative(question="Q?", claim="C.", answer="A.", headline=f"{study}.",
                              evidence=evidence)
        sections.append(Section(study, f"The {study} study", "smoke",
                                f"harness run {study} --profile smoke", narrative=narrative))
    return sections, judged


HEADER = "| study | claim | effect | estimate [95% interval] | n | threshold | verdict |"
SECTION_HEADER = "| claim | effect | estimate [95% interval] | n | threshold | verdict |"


def test_the_report_has_a_verdict_table_up_front_with_a_row_per_claim(tmp_path: Path):
    sections, judged = sections_with_claims()
    md = render_markdown(sections, "smoke", tmp_path)
    lines = md.splitlines()
    up_front = lines.index(HEADER)
    first_section = lines.index("## 1. The cnn_search study (`cnn_search`)")
    assert lines.index("## Verdicts") < up_front < first_section
    assert lines.index("## Abstract") < lines.index("## Verdicts")
    rows = []
    for line in lines[up_front + 2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    expected = [(study, e) for study, evidence in judged.items() for e in evidence]
    assert len(rows) == len(expected)
    for row, (study, e) in zip(rows, expected, strict=True):
        assert row.startswith(f"| {study} | {e.claim.name} |")
        assert row.endswith(f"| {e.verdict_text()} |")
    # Each section: its own table and a sentence per claim saying what would change it.
    assert lines.count(SECTION_HEADER) == len(judged)
    for evidence in judged.values():
        for e in evidence:
            assert f"- **{e.claim.name}** ({e.verdict_text()}): {e.reason()}" in md
    # memorization's: no input-corruption trial ran; a share of 1.0 in every seed is a
    # check with no spread, read by its value.
    assert ("**Verdicts on the write-up's claims: 2 supported, 1 inconclusive at this "
            "scale, 1 holds.**") in md


def test_the_latex_verdict_tables_are_escaped_and_never_below_footnotesize(tmp_path: Path):
    sections, judged = sections_with_claims()
    tex = render_latex(sections, "smoke", tmp_path)
    assert r"\usepackage{xltabular}" in tex
    assert tex.count(r"\begin{xltabular}{\linewidth}") == 1 + len(judged)
    assert r"\scriptsize" not in tex and r"\tiny" not in tex
    assert r"\textit{cnn\_search}" in tex  # the up-front table's study rows, escaped
    assert r"CB-focal $-$ CE" not in tex and "CB-focal - CE" in tex
    assert r"$\langle w^*, w_{T+1}\rangle \leq 0$" in tex  # claim 2's step, typeset
    assert "±" not in tex  # spelled in LaTeX
