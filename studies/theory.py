"""The write-up's theory, checked numerically: one trial per claim (and seed), each a
PyTorch computation whose verdict is derived from what it computes (harness.theory).

The write-up works through eight optimization and autodiff claims; some hold, one holds
with a broken derivation, and two state wrong numbers. The verdict table is regenerated
from the trial records like every other table; claim 7 (L2 learns the mean, so noisy
targets leave the optimum unchanged) is set beside the denoising study's measured
clean/noisy-target gap when that study's results of the same profile exist.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from harness.evidence import Claim, Evidence, judge_seeds, not_measured, verdict_counts
from harness.records import is_finished
from harness.report import completed
from harness.space import grid
from harness.study import Narrative, Pilot, Profile, Stage, Study, Upstream, register_study
from harness.theory import claim_figures, claims_table
from harness.theory.claims import CLAIMS, DERIVATION_WRONG, HOLDS, NUMBER_WRONG

# One claim per statement of the write-up, registered by `harness run` before any check
# runs. Each check is a deterministic computation (its seeds redraw random problems, and
# every seed must agree): a claim holds or fails by what it computes, with no interval.
# Claims with parts are judged part by part: claim 2's result and its derivation; claim
# 4's counts and its Newton / Hessian-vector statements; claim 5's f2 and the rest.
AGREES_EFFECT = "the computation agrees with the stated numbers, in every seed"
STATEMENTS = {
    1: "the gradient step is the minimizer of the linearized objective plus "
       "(lambda/2)||w - w_t||^2",
    2: "online gradient descent's regret is at most ||w*||^2/(2 eta) + (eta/2) sum ||v_t||^2",
    3: "the averaged subgradient iterate is within B rho / sqrt(T) of the optimum",
    6: "a matrix is circulant iff it commutes with the cyclic shift; n parameters; an "
       "O(n log n) product by FFT",
    7: "L2's best constant is the mean, L1's the median; zero-mean noise on the targets "
       "leaves the L2 optimum unchanged",
    8: "an SGD step on one term can raise the full objective",
}
TOPICS = {1: "proximal step", 2: "regret bound", 3: "averaged-iterate rate",
          4: "Newton, Hessian size", 5: "worked Jacobian", 6: "circulant matrices",
          7: "L2 and L1 optima", 8: "SGD can raise f"}


def _check(name: str, statement: str, effect: str = AGREES_EFFECT) -> Claim:
    return Claim(name, statement, effect, "greater", 0.5, limits=(0.0, 1.0), stage="claims",
                 deterministic=True)


STATED = {number: _check(f"claim {number} ({TOPICS[number]})", statement)
          for number, statement in STATEMENTS.items()}
# Parts: (claim number, part) -> the claim; what each part reads is in _part_agrees.
PARTS = {
    (4, "counts"): _check("claim 4 (MLP 50-50-50-10 counts)",
                          "the MLP 50-50-50-10 has 7,500 parameters and a Hessian of "
                          "302,500,000 entries"),
    (4, "newton"): _check("claim 4 (Newton step, H v)",
                          "Newton's step is -H^-1 g; forward differences err O(r); H v = "
                          "R_v{grad f}"),
    (5, "f2"): _check("claim 5 (f2)", "the worked example's f2 is 3.097"),
    (5, "rest"): _check("claim 5 (f1, Jacobians)",
                        "the worked example's f1 and both Jacobians as stated"),
}
DERIVATION_2 = _check("claim 2's derivation", "the regret bound follows from <w*, w_(T+1)> <= 0",
                      "the derivation's step holds, in every seed")
# In the write-up's order, each claim's parts in its place, claim 2's derivation last.
THEORY_CLAIMS = (*(claim for number in sorted(TOPICS) for claim in
                   ([STATED[number]] if number in STATED else
                    [c for (n, _), c in PARTS.items() if n == number])), DERIVATION_2)
# The committed mini records size later runs and are no evidence (git history).
PILOT = Pilot("mini", "the mini checks first committed in 47c4937 (2026-11-28) and re-run "
                      "from 7839f73 in b645977 (2026-12-06); the claims first appear in "
                      "a133a7a (2026-12-06), after the first records were seen",
              first_record="2026-11-28 (47c4937)")


def _stage(repeats: int) -> Stage:
    return Stage("claims", {"claim": grid(*sorted(CLAIMS))}, repeats=repeats, trial="check")


PROFILES = {
    "smoke": Profile("smoke", "all eight claims, one seed each, seconds on a CPU", (_stage(1),)),
    "mini": Profile("mini", "all eight claims, three seeds each (random problems redrawn)",
                    (_stage(3),)),
    "paper": Profile("paper", "all eight claims, ten seeds each", (_stage(10),)),
}


def seed_agreement(records: list[dict[str, Any]]) -> dict[int, str]:
    """Per claim: in how many seeds the verdict was the one seed 0 gave ("3/3")."""
    by_claim: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_claim.setdefault(int(record["config"]["claim"]), []).append(record)
    out = {}
    for claim, group in by_claim.items():
        first = min(group, key=lambda r: r["config"].get("repeat", 0))["verdict"]
        out[claim] = f"{sum(r['verdict'] == first for r in group)}/{len(group)}"
    return out


def denoising_gap(upstream: Upstream) -> str | None:
    """The denoising study's measured noisy - clean target PSNR gaps at this profile, from
    its records.csv, or None when it has not been run."""
    path = upstream.records_csv("denoising")
    if path is None:
        return None
    frame = pd.read_csv(path)
    frame = completed(frame)
    frame = frame[frame["config.loss"] == "l2"]
    parts = []
    for noise in ("gaussian", "poisson"):
        rows = frame[frame.get("config.task.noise", pd.Series(dtype=str)) == noise]
        by_target = rows.groupby("config.task.target")["final.test_psnr"].mean()
        if {"clean", "noisy"} <= set(by_target.index):
            parts.append(f"{noise} {by_target['noisy'] - by_target['clean']:+.2f} dB")
    if not parts:
        return None
    return f"denoising/{upstream.profile} measured noisy - clean target PSNR gap: " + ", ".join(parts)


def summary(records: list[dict[str, Any]], profile: str, upstream: Upstream) -> list[Any]:
    done = [r for r in records if is_finished(r) and "claim" in r]
    first = {}
    for record in sorted(done, key=lambda r: r["config"].get("repeat", 0)):
        first.setdefault(int(record["config"]["claim"]), record["claim"])
    table = claims_table(list(first.values()))
    agreement = seed_agreement(done)
    table.frame["seeds agreeing"] = [agreement[int(c)] for c in table.frame["claim"]]
    gap = denoising_gap(upstream)
    if gap is not None and 7 in table.frame.index:
        table.frame.loc[7, "computed"] = f"{table.frame.loc[7, 'computed']}; {gap}"
    table = dataclasses.replace(table)  # checked again, with the columns added here
    return [table, *claim_figures(list(first.values()))]


def _claim_records(records: list[dict[str, Any]]) -> dict[int, dict[int, dict[str, Any]]]:
    """Per claim number, each seed's (repeat index's) check result, from finished checks."""
    out: dict[int, dict[int, dict[str, Any]]] = {}
    for record in records:
        if is_finished(record) and "verdict" in record:
            config = record["config"]
            out.setdefault(int(config["claim"]), {})[int(config.get("repeat", 0))] = \
                {**(record.get("claim") or {}), "verdict": record["verdict"]}
    return out


def _part_agrees(part: tuple[int, str], result: dict[str, Any]) -> bool:
    """Whether one seed's check agrees with one part of a claim with parts: the check
    writes a correction (correct_value) naming each number it finds wrong."""
    if result["verdict"] in (HOLDS, DERIVATION_WRONG):  # the check found no number wrong
        return True
    correct = str(result.get("correct_value") or "")
    measured = result.get("measurements") or {}
    if part == (4, "counts"):
        return bool(measured.get("param_count_matches")) and bool(measured.get("hessian_matches"))
    if part == (4, "newton"):
        # R-op has no correction to write: its measured error against the check's 1e-10.
        return ("Newton" not in correct and "forward-difference" not in correct
                and float(measured.get("rop_rel_err", 1.0)) <= 1e-10)
    if part == (5, "f2"):
        return "f2 =" not in correct
    return ("f1 =" not in correct and "J_" not in correct
            and float(measured.get("max_abs_diff_jacfwd_jacrev", 1.0)) <= 1e-12)


def _agreement(claim: Claim, by_seed: dict[int, dict[str, Any]] | None,
               agrees: Any) -> Evidence:
    if not by_seed:
        return not_measured(claim, "no finished check of it records a verdict")
    values = [1.0 if agrees(result) else 0.0 for _, result in sorted(by_seed.items())]
    return judge_seeds(claim, values,
                       value_text=f"agrees in {int(sum(values))} of {len(values)} seeds")


def evidence(records: list[dict[str, Any]]) -> tuple[Evidence, ...]:
    """Each claim (THEORY_CLAIMS) judged by its check in every seed: the stated numbers
    agree unless the check finds a wrong number; claim 2's derivation only where it holds;
    claims 4 and 5 part by part."""
    results = _claim_records(records)
    judged = {claim.name: _agreement(claim, results.get(number),
                                     lambda r: r["verdict"] in (HOLDS, DERIVATION_WRONG))
              for number, claim in STATED.items()}
    judged.update({claim.name: _agreement(claim, results.get(number),
                                          lambda r, part=(number, name): _part_agrees(part, r))
                   for (number, name), claim in PARTS.items()})
    judged[DERIVATION_2.name] = _agreement(DERIVATION_2, results.get(2),
                                           lambda r: r["verdict"] == HOLDS)
    return tuple(judged[claim.name] for claim in THEORY_CLAIMS)


def narrative(records: list[dict[str, Any]], profile: str, upstream: Upstream) -> Narrative:
    """The paper's section: the verdict on each claim, counted, with the corrections."""
    done = [r for r in records if is_finished(r) and "claim" in r]
    first: dict[int, dict[str, Any]] = {}
    for record in sorted(done, key=lambda r: r["config"].get("repeat", 0)):
        first.setdefault(int(record["config"]["claim"]), record["claim"])
    agreement = seed_agreement(done)
    wrong = [c for c in first.values() if c["verdict"] == NUMBER_WRONG]
    derivation = [c for c in first.values() if c["verdict"] == DERIVATION_WRONG]
    holds = [c for c in first.values() if c["verdict"] == HOLDS]
    corrections = "; ".join(f"claim {c['claim']}: {c['correct_value']}" for c in wrong)
    steady = all(a.split("/")[0] == a.split("/")[1] for a in agreement.values())
    answer = (f"Of {len(first)} claims, {len(holds)} hold as stated, {len(derivation)} holds "
              f"with an invalid derivation (claim {', '.join(str(c['claim']) for c in derivation)}), "
              f"and {len(wrong)} state wrong numbers ({corrections}). Every verdict was the same "
              f"in every seed: {'yes' if steady else 'no'} ({len(done)} checks).")
    gap = denoising_gap(upstream)
    if gap:
        answer += f" Claim 7 beside the denoising study: {gap}."
    judged = evidence(records)
    return Narrative(
        question="Do the write-up's eight optimization and autodiff claims hold when each is "
                 "computed?",
        claim="The eight claims of the write-up's theory part: gradient step as a proximal "
              "step, the online gradient descent bound, the averaged-iterate rate, Newton and "
              "Hessian-vector products (with an MLP's parameter count), a worked Jacobian, "
              "circulant matrices, L2/L1 optima, and SGD not decreasing the full objective.",
        answer=answer, evidence=judged,
        headline=f"Of the write-up's eight theory claims, {len(holds)} hold, {len(derivation)} "
                 f"holds with a broken derivation and {len(wrong)} state wrong numbers; judged "
                 f"claim by claim over seeds, {verdict_counts(judged)}.",
        tables=("claims",),
        figures=("theory_claim3_rate", "theory_claim4_hvp", "theory_claim6_commutant"),
    )


STUDY = register_study(Study(
    name="theory",
    description="The write-up's eight theory claims, checked numerically with PyTorch "
                "(verdicts computed, none typed in)",
    profiles=PROFILES,
    summary=summary,
    narrative=narrative,
    title="The write-up's theory, checked numerically",
    order=50,
    uses=("denoising",),  # claim 7 is set beside the measured clean/noisy-target gap
    claims=THEORY_CLAIMS,
    evidence=evidence,
    pilot=PILOT,
))
