"""How many seeds each claim needs, from a pilot whose trials are never evidence.

A study names its pilot (``harness.study.Pilot``: earlier records at a profile, with their
history). From the pilot's per-seed effects (``Evidence.values``) this module finds, per
claim, the n at which a run has 80% power to reach a verdict at the pilot's effect and
spread, with statsmodels' ``TTestPower`` at the level the verdicts use (each side of a
95% interval: 2.5%). An equivalence claim inside its margin, or a two-sided "between"
reading inside its bounds, needs both one-sided tests to pass (TOST): each is given 90%
power, so both pass with at least 80% (1 - 0.1 - 0.1). ``harness run STUDY --profile P
--dry-run`` prints the table beside the profile's n; a verdict whose interval straddles
its threshold with fewer seeds than needed reads "underpowered (needs n ≈ K)".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.evidence import Claim, Evidence
from harness.layout import results_records

POWER = 0.8
ALPHA = 0.025  # one side of the two-sided 95% interval a verdict reads
MOST_SEEDS = 10_000  # beyond this "needs n ≈ K" says nothing a reader can act on


def _one_sided_n(distance: float, sd: float, power: float) -> int | None:
    """Seeds for a one-sided t-test at ALPHA to reject with ``power`` when the true effect
    lies ``distance`` beyond the bound (statsmodels TTestPower); None when it lies on it."""
    from statsmodels.stats.power import TTestPower

    if distance <= 0 or sd <= 0:
        return None
    effect = distance / sd
    # Two seeds are the fewest an interval needs; statsmodels' root finder has no root
    # below them, so an effect that large is answered before it is asked.
    if TTestPower().power(effect_size=effect, nobs=2, alpha=ALPHA,
                          alternative="larger") >= power:
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            n = TTestPower().solve_power(effect_size=effect, nobs=None, alpha=ALPHA,
                                         power=power, alternative="larger")
    except (ValueError, RuntimeError):
        return None
    n = float(np.asarray(n).ravel()[0])
    if not math.isfinite(n):  # no root: an effect too small for any n the solver tries
        return None
    if n > MOST_SEEDS:
        return None
    return max(2, math.ceil(n))


def needed_seeds(claim: Claim, values: Sequence[float]) -> int | None:
    """Seeds for 80% power to reach a verdict at the pilot's effect and spread: on the
    side the pilot's mean lies (supported or contradicted). None with fewer than two pilot
    seeds, no spread (a deterministic check needs one), or a mean on the threshold."""
    data = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(data) < 2 or claim.deterministic:
        return None
    mean, sd = float(data.mean()), float(data.std(ddof=1))
    if sd == 0:
        return None
    t = claim.threshold
    if claim.kind in ("greater", "less"):
        return _one_sided_n(abs(mean - t), sd, POWER)
    low, high = (-t, t) if claim.kind == "equivalence" else (t, float(claim.upper))
    if low < mean < high:  # both one-sided tests must pass
        sides = [_one_sided_n(mean - low, sd, 0.9), _one_sided_n(high - mean, sd, 0.9)]
        return None if None in sides else max(sides)  # type: ignore[type-var]
    return _one_sided_n(min(abs(mean - low), abs(mean - high)), sd, POWER)


def tost_p(claim: Claim, values: Sequence[float]) -> float | None:
    """The pilot's TOST p-value for an equivalence claim (statsmodels ttost_paired on the
    per-seed paired differences against zero)."""
    from statsmodels.stats.weightstats import ttost_paired

    data = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if claim.kind != "equivalence" or len(data) < 2 or data.std(ddof=1) == 0:
        return None
    return float(ttost_paired(data, np.zeros_like(data), -claim.threshold, claim.threshold)[0])


@dataclass(frozen=True)
class PowerLine:
    claim: Claim
    pilot_n: int
    mean: float
    sd: float
    needed: int | None
    profile_n: int | None
    tost: float | None = None
    gate_failed: str = ""  # the pilot's records fail the claim's gate: what they show

    def _towards(self) -> str:
        return _towards_of(self.claim, self.mean)

    def text(self) -> str:
        c = self.claim
        if self.pilot_n < 2:
            pilot = f"pilot: {self.pilot_n} seed, no spread to size it from"
        else:
            pilot = f"pilot: {self.mean:+.3g} ± {self.sd:.3g} (mean ± sd) over {self.pilot_n} seeds"
            if self.tost is not None:
                pilot += f", TOST p = {self.tost:.2f}"
        if self.gate_failed:
            need = (f"its gate failed in the pilot ({self.gate_failed}): more seeds cannot "
                    "judge it, a run in the regime its gate names can")
        elif c.deterministic:
            need = "a deterministic check: any n"
        elif self.pilot_n > 1 and self.sd == 0:
            need = "no spread in the pilot: it holds or fails by its value at any n"
        elif self.needed is None:
            need = "needs: unknown (no spread, or an effect on the threshold)"
        else:
            need = f"needs n ≈ {self.needed} for 80% power to read {self._towards()}"
        have = f"profile n = {self.profile_n}" if self.profile_n is not None else "profile n: ?"
        verdict = ""
        if self.needed is not None and self.profile_n is not None and not self.gate_failed:
            verdict = ": underpowered" if self.profile_n < self.needed else ": enough"
        return f"- {c.name} ({c.threshold_text()}): {pilot}; {need}; {have}{verdict}"


def _towards_of(claim: Claim, mean: float) -> str:
    """The verdict the pilot's mean points to: supported or contradicted."""
    return "supported" if claim.on_its_side(mean) else "contradicted"


def pilot_evidence(study: Any, results_dir: Path) -> tuple[Evidence, ...] | None:
    """The study's claims judged on its pilot's records, with no registration or power
    applied: only their per-seed values are read. None without a pilot or its records."""
    from harness.records import load_records

    pilot = getattr(study, "pilot", None)
    if pilot is None or study.evidence is None:
        return None
    folder = results_records(results_dir, study.name, pilot.profile)
    if not folder.is_dir() or not any(folder.rglob("*.json")):
        return None
    return tuple(study.evidence(load_records(folder)))


def needed_by_claim(study: Any, results_dir: Path) -> dict[str, int]:
    """Claim name -> seeds needed for 80% power, from the study's pilot."""
    judged = pilot_evidence(study, results_dir) or ()
    out = {}
    for item in judged:
        n = needed_seeds(item.claim, item.values)
        if n is not None:
            out[item.claim.name] = n
    return out


def power_lines(study: Any, profile: str, results_dir: Path) -> list[PowerLine]:
    from harness.registration import claim_n

    judged = pilot_evidence(study, results_dir) or ()
    lines = []
    for item in judged:
        values = [v for v in item.values if math.isfinite(v)]
        mean = float(np.mean(values)) if values else math.nan
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        lines.append(PowerLine(item.claim, len(values), mean, sd,
                               needed_seeds(item.claim, values),
                               claim_n(item.claim, study.profile(profile)),
                               tost_p(item.claim, values),
                               item.gate.measured if item.gate and not item.gate.passed
                               else ""))
    return lines


def power_text(study: Any, profile: str, results_dir: Path) -> str:
    """The dry run's power table of a ``harness.study.Study``: per claim, the n the pilot
    says it needs beside the n the profile runs."""
    if not study.claims:
        return f"Power: {study.name} states no claims."
    if study.pilot is None:
        return (f"Power: {study.name} names no pilot, so no claim's n is sized; name earlier "
                "records as its pilot (Study(pilot=Pilot(...))).")
    lines = power_lines(study, profile, results_dir)
    where = results_records(results_dir, study.name, study.pilot.profile)
    if not lines:
        return (f"Power: the pilot's records ({where}) are not there; run `harness run "
                f"{study.name} --profile {study.pilot.profile}` or fetch them, then dry-run "
                "again.")
    head = (f"Power (80%, one-sided 2.5% per side, statsmodels TTestPower) for "
            f"{study.name}/{profile}, from the pilot {where} ({study.pilot.history}); the "
            "pilot's trials are never evidence:")
    return "\n".join([head, *(line.text() for line in lines)])
