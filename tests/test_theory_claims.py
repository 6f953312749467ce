"""Tests of harness.theory: every claim's verdict, and that a fed-in value flips it.

Each claim is run once with the write-up's values (module fixture) and checked for its
expected verdict; then the stated value is replaced by the right (or a wrong) one and the
verdict must change, which proves the verdict comes from the computation. Variants use
smaller problem sizes where the default sizes are not needed to decide.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from harness.report import Plot, Table
from harness.report.figures import write_figure
from harness.report.tables import render_latex, render_markdown, write_table
from harness.theory import (
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
    claim_figures,
    claims_table,
    run_claim,
)
from harness.theory.claims import (
    argmin_constant,
    circulant,
    circulant_fft_matvec,
    commutation_operator,
    mlp_widths_param_count,
    shift_matrix,
)

HOLDS, DERIVATION_WRONG, NUMBER_WRONG = VERDICTS

# PyTorch's own forward-mode AD loads a TorchScript decomposition on first use, which warns.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine, two spinning threads per op make
    these small-tensor loops several times slower. Restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def defaults(one_thread) -> dict[int, ClaimResult]:
    """Every claim with the write-up's values, seed 0; also checks no check touches the
    global RNG (they must use their own generators)."""
    state = torch.random.get_rng_state()
    results = {claim: run_claim(claim) for claim in CLAIMS}
    assert torch.equal(torch.random.get_rng_state(), state), "a check used the global RNG"
    return results


@pytest.fixture(scope="module")
def claim_dicts(defaults) -> list[dict]:
    return [result.to_dict() for result in defaults.values()]


# ----------------------------------------------------------------------------- API


def test_verdict_strings_are_exact():
    assert VERDICTS == ("holds", "holds, but the write-up's derivation is wrong",
                        "the write-up's number is wrong")


def test_expected_default_verdicts(defaults):
    expected = {1: HOLDS, 2: DERIVATION_WRONG, 3: HOLDS, 4: NUMBER_WRONG, 5: NUMBER_WRONG,
                6: HOLDS, 7: HOLDS, 8: HOLDS}
    assert {claim: result.verdict for claim, result in defaults.items()} == expected
    for claim, result in defaults.items():
        assert result.claim == claim
        # A correct value is given exactly when something stated is wrong.
        assert (result.correct_value is not None) == (result.verdict != HOLDS)


def test_results_are_json_safe_and_finite(claim_dicts):
    for record in claim_dicts:
        assert json.loads(json.dumps(record, allow_nan=False)) == record
        assert set(record) == {"claim", "title", "writeup", "computed", "verdict",
                               "correct_value", "tolerance", "measurements", "series"}
        assert all(math.isfinite(v) for v in record["measurements"].values())
        for text in (record["title"], record["writeup"], record["computed"], record["tolerance"]):
            assert text and "\n" not in text


def test_same_seed_same_result_and_seed_matters():
    a = check_claim_2(seed=3, dims=(2,), horizons=(5,), sequences=8)
    b = check_claim_2(seed=3, dims=(2,), horizons=(5,), sequences=8)
    c = check_claim_2(seed=4, dims=(2,), horizons=(5,), sequences=8)
    assert a.to_dict() == b.to_dict()
    assert a.measurements != c.measurements


def test_run_claim_rejects_unknown_claim():
    with pytest.raises(ValueError, match=r"valid claims are \[1, 2, 3, 4, 5, 6, 7, 8\]"):
        run_claim(9)


def test_claim_result_validates_verdict_and_numbers():
    base = dict(claim=1, title="t", writeup="w", computed="c", correct_value=None,
                tolerance="tol")
    with pytest.raises(ValueError, match="verdict"):
        ClaimResult(verdict="probably", **base)
    with pytest.raises(ValueError, match="not finite"):
        ClaimResult(verdict=HOLDS, measurements={"x": float("nan")}, **base)
    with pytest.raises(ValueError, match="non-finite"):
        ClaimResult(verdict=HOLDS, series={"x": [1.0, float("inf")]}, **base)


# ----------------------------------------------------------------------------- claim 1


def test_claim_1_step_is_one_over_lambda(defaults):
    result = defaults[1]
    assert result.verdict == HOLDS
    assert result.measurements["max_rel_diff_stated"] < 1e-9
    assert result.measurements["implied_step_scale_min"] == pytest.approx(1.0, abs=1e-9)
    assert result.measurements["implied_step_scale_max"] == pytest.approx(1.0, abs=1e-9)


def test_claim_1_wrong_step_size_flips_verdict():
    result = check_claim_1(dims=(2, 5), stated_step_scale=0.5)  # step 1/(2 lambda)
    assert result.verdict == NUMBER_WRONG
    assert result.measurements["max_rel_diff_stated"] == pytest.approx(0.5, rel=1e-6)
    assert "(1.000000/lambda)" in result.correct_value  # the step the argmin implies


# ----------------------------------------------------------------------------- claim 2

SMALL_2 = dict(dims=(1, 3), horizons=(1, 20), sequences=16)


def test_claim_2_bound_holds_but_intermediate_step_is_false(defaults):
    m = defaults[2].measurements
    assert defaults[2].verdict == DERIVATION_WRONG
    assert m["max_rel_excess"] <= 1e-9
    assert abs(m["max_rel_excess_tight"]) < 1e-12  # the bound is attained: it is tight
    assert m["max_identity_residual"] < 1e-12
    assert m["intermediate_counterexamples"] > 0
    assert m["smallest_counterexample_value"] == 1.0
    assert "||w* - w_(T+1)||^2 >= 0" in defaults[2].correct_value


def test_claim_2_verdict_flips_with_a_right_derivation_or_a_wrong_bound():
    assert check_claim_2(stated_intermediate_step=False, **SMALL_2).verdict == HOLDS
    # Any smaller constant fails on the sequences that reach equality.
    for constants in ((0.25, 0.5), (0.5, 0.25)):
        result = check_claim_2(stated_constants=constants, stated_intermediate_step=False,
                               **SMALL_2)
        assert result.verdict == NUMBER_WRONG
        assert result.measurements["max_rel_excess"] > 0.1
    # Larger constants are still true bounds.
    assert check_claim_2(stated_constants=(1.0, 1.0), stated_intermediate_step=False,
                         **SMALL_2).verdict == HOLDS


# ----------------------------------------------------------------------------- claim 3


def test_claim_3_gap_below_bound_with_certified_optimum(defaults):
    result = defaults[3]
    m, s = result.measurements, result.series
    assert result.verdict == HOLDS
    for problem in ("lad", "hinge"):
        assert all(g <= b for g, b in zip(s[f"gap_{problem}"], s[f"bound_{problem}"],
                                          strict=True))
        assert all(g >= -1e-12 for g in s[f"gap_{problem}"])
        assert m[f"{problem}_max_subgrad_norm"] <= m[f"{problem}_rho"]
        assert m[f"{problem}_slope"] < -0.4  # the gap falls at least like T^-0.4
    assert abs(m["lad_duality_gap"]) < 1e-12
    assert m["lad_certificate_max_abs_s"] <= 1 + 1e-10
    assert s["T"][0] == 10 and s["T"][-1] == 10_000 and len(s["T"]) == len(s["gap_lad"])


def test_claim_3_too_tight_a_bound_is_rejected():
    short = (10, 30, 100)
    assert check_claim_3(horizons=short).verdict == HOLDS
    assert check_claim_3(horizons=short, stated_bound_constant=0.01).verdict == NUMBER_WRONG
    assert check_claim_3(horizons=short, stated_rate_exponent=1.0).verdict == NUMBER_WRONG


# ----------------------------------------------------------------------------- claim 4


def test_claim_4_parameter_count_is_wrong_in_the_writeup(defaults):
    result = defaults[4]
    m = result.measurements
    assert result.verdict == NUMBER_WRONG
    assert m["param_count"] == 5610 and m["weight_count"] == 5500
    assert m["hessian_entries"] == 5610 ** 2
    assert m["param_count_matches"] == 0 and m["hessian_matches"] == 0
    assert "5,610 parameters" in result.correct_value
    assert "5,610 x 5,610" in result.correct_value
    # The other parts of the claim hold.
    assert m["newton_max_rel_diff"] < 1e-6
    assert m["rop_rel_err"] < 1e-12
    assert m["forward_slope"] == pytest.approx(1.0, abs=0.1)
    assert m["central_slope"] == pytest.approx(2.0, abs=0.1)


def test_mlp_param_counts():
    assert mlp_widths_param_count((50, 50, 50, 10)) == 5610
    assert mlp_widths_param_count((50, 50, 50, 10), bias=False) == 5500
    # Four Linear layers (50-50-50-50-10) would be another network: 8,160 parameters.
    assert mlp_widths_param_count((50, 50, 50, 50, 10)) == 8160


def test_claim_4_verdict_flips_with_the_right_numbers():
    count_only = check_claim_4(stated_param_count=5610)
    assert count_only.measurements["param_count_matches"] == 1
    assert count_only.verdict == NUMBER_WRONG  # the Hessian size is still wrong
    right = check_claim_4(stated_param_count=5610, stated_hessian_entries=5610 ** 2)
    assert right.verdict == HOLDS and right.correct_value is None
    wrong_order = check_claim_4(stated_param_count=5610, stated_hessian_entries=5610 ** 2,
                                stated_fd_order=2.0)
    assert wrong_order.verdict == NUMBER_WRONG
    assert "O(r^1)" in wrong_order.correct_value
    wrong_sign = check_claim_4(stated_param_count=5610, stated_hessian_entries=5610 ** 2,
                               stated_newton_scale=1.0)
    assert wrong_sign.verdict == NUMBER_WRONG


# ----------------------------------------------------------------------------- claim 5


def test_claim_5_only_f2_is_wrong(defaults):
    result = defaults[5]
    assert result.verdict == NUMBER_WRONG
    assert result.measurements["wrong_numbers"] == 1
    assert "f2 = 3.099" in result.correct_value
    assert result.measurements["f2"] == pytest.approx(math.log(3) + 2)
    assert result.measurements["J_ad_1_0"] == pytest.approx(1 / 3 + 4)
    assert result.measurements["J_fd_1_0"] == pytest.approx(4.353, abs=5e-4)
    assert result.measurements["max_abs_diff_jacfwd_jacrev"] < 1e-12


def test_claim_5_verdict_flips_with_stated_numbers():
    assert check_claim_5(stated={"f2": 3.099}).verdict == HOLDS
    swapped = check_claim_5(stated={"f2": 3.099, "J_ad": [[0.350, -0.386], [4.353, 1.333]]})
    assert swapped.verdict == NUMBER_WRONG
    assert "J_ad[1][0] = 4.333" in swapped.correct_value


# ----------------------------------------------------------------------------- claim 6


def test_claim_6_commutant_is_the_circulants(defaults):
    result = defaults[6]
    assert result.verdict == HOLDS
    assert result.series["commutant_dimension"] == result.series["sizes"]
    assert result.measurements["max_basis_circulant_residual"] < 1e-12
    assert result.measurements["max_commutator_circulant"] < 1e-12
    assert result.measurements["min_commutator_perturbed"] > 1e-9
    assert result.measurements["fft_max_rel_err"] < 1e-12
    assert "timing_n" not in result.series  # no timings unless asked for


def test_circulant_helpers():
    gen = torch.Generator().manual_seed(0)
    c = torch.randn(7, generator=gen, dtype=torch.float64)
    x = torch.randn(7, generator=gen, dtype=torch.float64)
    matrix = circulant(c)
    assert torch.equal(matrix[:, 0], c)
    assert torch.allclose(circulant_fft_matvec(c, x), matrix @ x, atol=1e-12)
    s = shift_matrix(7)
    assert torch.equal(s @ x, torch.roll(x, 1))
    assert torch.equal(s, circulant(torch.eye(7, dtype=torch.float64)[1]))
    # The operator's matrix acts on row-major vec(X) as X -> XS - SX.
    big_x = torch.randn(7, 7, generator=gen, dtype=torch.float64)
    assert torch.allclose(commutation_operator(7) @ big_x.reshape(-1),
                          (big_x @ s - s @ big_x).reshape(-1), atol=1e-12)


def test_claim_6_verdict_flips_and_timing_does_not_decide():
    small = dict(sizes=(2, 3, 4), trials=6, fft_sizes=(8, 64))
    assert check_claim_6(stated_params_per_n=2.0, **small).verdict == NUMBER_WRONG
    timed = check_claim_6(time_products=True, **small)
    assert timed.verdict == HOLDS
    assert len(timed.series["dense_s"]) == len(timed.series["fft_s"]) == 2


# ----------------------------------------------------------------------------- claim 7


def test_claim_7_mean_median_and_noise(defaults):
    result = defaults[7]
    m = result.measurements
    assert result.verdict == HOLDS
    for name in ("exponential", "lognormal", "student_t3", "cauchy"):
        assert abs(m[f"{name}_l2_minus_mean"]) < 1e-9 * (1 + abs(m[f"{name}_mean"]))
        assert abs(m[f"{name}_l1_minus_median"]) < 1e-9 * (1 + abs(m[f"{name}_median"]))
    assert m["l2_shift_minus_noise_mean_max"] < 1e-9
    # Skewed zero-mean noise moves the L1 optimum by many standard errors.
    assert abs(m["l1_skewed_shift_at_max_n"]) > 10 * m["l1_skewed_shift_se_at_max_n"]


def test_argmin_constant_autograd_matches_closed_form():
    y = torch.tensor([[3.0, -1.0, 10.0, 0.5, 2.0]], dtype=torch.float64)
    for use_autograd in (True, False):
        assert float(argmin_constant(y, "l2", use_autograd=use_autograd)) == pytest.approx(2.9)
        assert float(argmin_constant(y, "l1", use_autograd=use_autograd)) == pytest.approx(2.0)


def test_claim_7_verdict_flips_with_wrong_statements():
    small = dict(n=201, noise_sizes=(100, 1000), repeats=16)
    assert check_claim_7(**small).verdict == HOLDS
    assert check_claim_7(stated_l1_minimizer="mean", **small).verdict == NUMBER_WRONG
    assert check_claim_7(stated_l2_minimizer="median", **small).verdict == NUMBER_WRONG
    both = check_claim_7(stated_noise_invariant=("l2", "l1"), **small)
    assert both.verdict == NUMBER_WRONG


# ----------------------------------------------------------------------------- claim 8


def test_claim_8_step_on_second_term_raises_f(defaults):
    result = defaults[8]
    assert result.verdict == HOLDS
    assert result.measurements["f_before"] == 2.5
    assert result.measurements["learning_rates_raising_f"] == 25
    for lr, after in zip(result.series["lr"], result.series["f_after"], strict=True):
        assert after == pytest.approx(2.5 + lr + lr * lr)  # f(-lr), worked out by hand


def test_claim_8_verdict_flips():
    assert check_claim_8(stated_raises=False).verdict == NUMBER_WRONG
    # A step on the first term (gradient -2) lowers f for lr < 1/2.
    assert check_claim_8(step_term=1, learning_rates=(0.01, 0.1, 0.4)).verdict == NUMBER_WRONG
    assert check_claim_8(step_term=1, learning_rates=(0.01, 0.6)).verdict == HOLDS


# ----------------------------------------------------------------------------- report


def test_claims_table(claim_dicts, tmp_path: Path):
    table = claims_table(list(reversed(claim_dicts)))
    assert isinstance(table, Table) and table.name == "claims"
    assert list(table.frame.columns) == ["claim", "write-up states", "computed", "verdict",
                                         "tolerance"]
    assert table.frame["claim"].tolist() == list(range(1, 9))
    for record, verdict in zip(claim_dicts, table.frame["verdict"], strict=True):
        assert verdict.startswith(record["verdict"])
    assert "f2 = 3.099" in table.frame.loc[5, "verdict"]
    assert "5,610" in table.frame.loc[4, "verdict"]
    assert "PyTorch" in table.caption and "records" in table.caption
    markdown, latex = render_markdown(table), render_latex(table)
    rows = [line for line in markdown.splitlines()
            if line.startswith("| ") and not line.startswith("| -")]
    assert len(rows) == 1 + 8  # header + one row per claim
    assert r"\label{tab:claims}" in latex and "±" not in latex
    assert [p.name for p in write_table(table, tmp_path)] == ["claims.csv", "claims.tex",
                                                               "claims.md"]


def test_claims_table_rejects_duplicate_claims(claim_dicts):
    with pytest.raises(ValueError, match="more than once"):
        claims_table(claim_dicts + claim_dicts[:1])


def test_claim_figures(claim_dicts, tmp_path: Path):
    plots = claim_figures(claim_dicts)
    assert [p.name for p in plots] == ["theory_claim3_rate", "theory_claim4_hvp",
                                       "theory_claim6_commutant"]
    by_name = {p.name: p for p in plots}
    for plot in plots:
        assert isinstance(plot, Plot)
        assert plot.caption.endswith(".") and plot.caption.count(". ") == 0  # one sentence
        ax = plot.figure.axes[0]
        assert ax.get_yscale() == "log"
        assert write_figure(plot.figure, tmp_path, plot.name).stat().st_size > 0
    rate = by_name["theory_claim3_rate"].figure.axes[0]
    assert rate.get_xscale() == "log" and len(rate.get_lines()) == 4  # 2 gaps + 2 bounds
    legend = rate.get_legend() or rate.figure.legends[0]  # long labels: below the figure
    assert "slope" in legend.get_texts()[0].get_text()
    hvp = by_name["theory_claim4_hvp"].figure.axes[0]
    assert hvp.get_xscale() == "log" and len(hvp.get_lines()) == 2
    labels = [t.get_text() for t in (hvp.get_legend() or hvp.figure.legends[0]).get_texts()]
    assert "slope 1.00" in labels[0] and "slope 2.00" in labels[1]
    commutant = by_name["theory_claim6_commutant"].figure.axes[0]
    assert "16 zero singular values" in commutant.get_title()


def test_claim_figures_skip_absent_claims_and_add_timing(claim_dicts):
    only_5 = [d for d in claim_dicts if d["claim"] == 5]
    assert claim_figures(only_5) == []
    timed = check_claim_6(sizes=(2, 3, 4), trials=6, fft_sizes=(8, 64),
                          time_products=True).to_dict()
    names = [p.name for p in claim_figures([timed])]
    assert names == ["theory_claim6_commutant", "theory_claim6_timing"]
