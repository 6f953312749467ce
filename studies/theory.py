"""The write-up's theory, checked numerically: one trial per claim (and seed), each a
PyTorch computation whose verdict is derived from what it computes (harness.theory).

The write-up works through eight optimization and autodiff claims; some hold, one holds
with a broken derivation, and two state wrong numbers. The verdict table is regenerated
from the trial records like every other table; claim 7 (L2 learns the mean, so noisy
targets leave the optimum unchanged) is set beside the denoising study's measured
clean/noisy-target gap when that study's results of the same profile exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.report import Table
from harness.space import grid
from harness.study import Profile, Stage, Study, register_study
from harness.theory import claim_figures, claims_table
from harness.theory.claims import CLAIMS


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


def denoising_gap(profile: str, results_dir: Path | None = None) -> str | None:
    """The denoising study's measured Gaussian noisy - clean target PSNR gap for this
    profile, from its committed records.csv, or None when it has not been run."""
    from harness.plan import resolve_results_dir

    path = (results_dir or resolve_results_dir(None)) / "denoising" / profile / "records.csv"
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    frame = frame[(frame["status"] == "completed") & (frame["config.loss"] == "l2")]
    parts = []
    for noise in ("gaussian", "poisson"):
        rows = frame[frame.get("config.task.noise", pd.Series(dtype=str)) == noise]
        by_target = rows.groupby("config.task.target")["final.test_psnr"].mean()
        if {"clean", "noisy"} <= set(by_target.index):
            parts.append(f"{noise} {by_target['noisy'] - by_target['clean']:+.2f} dB")
    if not parts:
        return None
    return f"denoising/{profile} measured noisy - clean target PSNR gap: " + ", ".join(parts)


def summary(records: list[dict[str, Any]], profile: str) -> list[Any]:
    done = [r for r in records if r.get("status") == "completed" and "claim" in r]
    first = {}
    for record in sorted(done, key=lambda r: r["config"].get("repeat", 0)):
        first.setdefault(int(record["config"]["claim"]), record["claim"])
    table = claims_table(list(first.values()))
    agreement = seed_agreement(done)
    table.frame["seeds agreeing"] = [agreement[int(c)] for c in table.frame["claim"]]
    gap = denoising_gap(profile)
    if gap is not None:
        table.frame.loc[7, "computed"] = f"{table.frame.loc[7, 'computed']}; {gap}"
    table = Table(table.name, table.frame, table.caption, table.best, table.note,
                  table.reference_rows)
    return [table, *claim_figures(list(first.values()))]


STUDY = register_study(Study(
    name="theory",
    description="The write-up's eight theory claims, checked numerically with PyTorch "
                "(verdicts computed, none typed in)",
    profiles=PROFILES,
    summary=summary,
))
