"""Each part's figure against its target: PASS, FAIL or SKIP, and the suite's exit code.

Pure functions of a part's entry in suite.json (``{"status", "why", "figures"}``), so the
logic is tested on a CPU with made-up entries (tests/test_gpu_suite_verdicts.py).

Targets (the issue that made the suite a check, #29, and the project's design notes):

- throughput: the device-resident pipeline at least 10x the fastest DataLoader + PIL
  pipeline measured, same net, same batch;
- recipe: fastnet's airbench94 recipe at least 90.3% mean test accuracy on the JPEG copy
  (airbench94 itself: 90.61% ± 0.11 there), every seed finite, none diverged, none at
  chance level;
- sharing: a trial sharing the card with up to ``sharing_checked_up_to`` others (the
  profiles pack four per card, ``gpus_per_trial`` 0.25) runs within 1.5x of its speed alone:
  alone images/s / mean per-trial images/s <= 1.5;
- slices, pricing: every study's slice trained with finite metrics; the throughput table
  was written with finite rates. MLflow: logged, or SKIP when it is not installed.

A part that was stopped at its share of the budget, or raised, FAILs; a part with a target
that did not run (time, a missing preset) FAILs, since its figure is missing; a part not
selected with --parts is a SKIP.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
WITH_TARGET = ("throughput", "recipe", "sharing")


@dataclass(frozen=True)
class Targets:
    """What each figure must reach; None: not judged at this size (--tiny's toy data)."""

    min_resident_speedup: float | None = 10.0
    recipe_min_acc_percent: float | None = 90.3
    # A seed at or below chance + this margin learned nothing (10 classes: <= 15%).
    chance_margin_percent: float | None = 5.0
    num_classes: int = 10
    max_sharing_slowdown: float | None = 1.5
    sharing_checked_up_to: int = 4


FULL_TARGETS = Targets()
# --tiny trains a few steps on random synthetic images on a CPU: only finiteness and the
# code paths are judged there, not the figures.
TINY_TARGETS = Targets(min_resident_speedup=None, recipe_min_acc_percent=None,
                       chance_margin_percent=None, max_sharing_slowdown=None)


@dataclass(frozen=True)
class Verdict:
    part: str
    status: str  # PASS | FAIL | SKIP
    figure: str
    target: str = ""

    def line(self) -> str:
        target = f" (target: {self.target})" if self.target else ""
        return f"{self.status} {self.part}: {self.figure}{target}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _judge(part: str, value: float, target: float | None, at_least: bool, figure: str,
           target_text: str) -> Verdict:
    if target is None:
        return Verdict(part, PASS, figure, "none at this size")
    ok = value >= target if at_least else value <= target
    return Verdict(part, PASS if ok else FAIL, figure, target_text)


def throughput_verdict(figures: Mapping[str, Any], targets: Targets) -> Verdict:
    result = figures["result"]
    resident = result["images_per_second"]["harness_device_resident"]
    loaders = result.get("dataloader_pil_by_workers") or {}
    values = [resident, *loaders.values()]
    if not loaders or not all(_finite(v) and v > 0 for v in values):
        return Verdict("throughput", FAIL, f"images/s not all finite and positive: resident "
                       f"{resident}, DataLoader {dict(loaders)}")
    workers, best = max(loaders.items(), key=lambda item: item[1])
    speedup = resident / best
    figure = (f"device-resident {resident:,.0f} images/s = {speedup:.1f}x the fastest "
              f"DataLoader ({workers} workers, {best:,.0f} images/s)")
    return _judge("throughput", speedup, targets.min_resident_speedup, True, figure,
                  f">= {targets.min_resident_speedup}x")


def recipe_verdict(figures: Mapping[str, Any], targets: Targets) -> Verdict:
    runs = figures.get("runs") or []
    if not runs:
        return Verdict("recipe", FAIL, "no seed ran")
    bad = [f"seed {r['repeat']}: {r['status']}, test_acc {r.get('test_acc')}" for r in runs
           if r["status"] not in ("completed", "fitted") or not _finite(r.get("test_acc"))
           or (r.get("train_loss") is not None and not _finite(r["train_loss"]))]
    if bad:
        return Verdict("recipe", FAIL, "diverged or not finite: " + "; ".join(bad))
    accs = [100 * r["test_acc"] for r in runs]
    if targets.chance_margin_percent is not None:
        chance = 100 / targets.num_classes + targets.chance_margin_percent
        low = [f"seed {r['repeat']}: {a:.1f}%" for r, a in zip(runs, accs, strict=True)
               if a <= chance]
        if low:
            return Verdict("recipe", FAIL, "at chance level: " + "; ".join(low),
                           f"> {chance:g}% every seed")
    mean = statistics.fmean(accs)
    figure = f"mean test accuracy {mean:.2f}% over {len(accs)} seeds (min {min(accs):.2f}%)"
    return _judge("recipe", mean, targets.recipe_min_acc_percent, True, figure,
                  f">= {targets.recipe_min_acc_percent}% on the JPEG copy")


def sharing_verdict(figures: Mapping[str, Any], targets: Targets) -> Verdict:
    rows = {int(r["trials"]): r for r in figures.get("rows") or []}
    alone = rows.get(1, {}).get("aggregate_images_per_second")
    shared = [r for n, r in sorted(rows.items()) if 1 < n <= targets.sharing_checked_up_to]
    if not _finite(alone) or alone <= 0 or not shared:
        return Verdict("sharing", FAIL, f"no alone figure or no shared count up to "
                       f"{targets.sharing_checked_up_to} measured (rows: {sorted(rows)})")
    slowdowns = {}
    for row in shared:
        per = row.get("per_trial_images_per_second") or []
        if not per or not all(_finite(v) and v > 0 for v in per):
            return Verdict("sharing", FAIL, f"{row['trials']} trials: per-trial images/s {per}")
        slowdowns[int(row["trials"])] = alone / statistics.fmean(per)
    trials, worst = max(slowdowns.items(), key=lambda item: item[1])
    figure = ("a trial sharing the card runs " + ", ".join(
        f"{s:.2f}x slower at {n}" for n, s in slowdowns.items())
        + f" than alone ({alone:,.0f} images/s); worst {worst:.2f}x at {trials}")
    return _judge("sharing", worst, targets.max_sharing_slowdown, False, figure,
                  f"<= {targets.max_sharing_slowdown}x up to {targets.sharing_checked_up_to} "
                  "per card")


def slices_verdict(figures: Mapping[str, Any], _targets: Targets) -> Verdict:
    studies = figures.get("studies") or {}
    bad = []
    ran = 0
    for name, entry in studies.items():
        if entry.get("failed"):
            bad.append(f"{name}: {entry.get('why', 'failed')}")
        for run in entry.get("runs", []):
            if run["status"] in ("failed", "diverged"):
                bad.append(f"{name} (compile {'on' if run['compile'] else 'off'}): "
                           f"{run['status']} {run.get('why', '')}".strip())
            numbers = [v for epoch in run.get("epochs") or [] for v in epoch.values()]
            if any(not _finite(v) for v in numbers):
                bad.append(f"{name}: a metric is not finite")
            ran += bool(run.get("epochs"))
    if bad:
        return Verdict("slices", FAIL, "; ".join(bad))
    return Verdict("slices", PASS, f"{ran} slices trained with finite metrics, "
                   f"{len(studies)} studies")


def pricing_verdict(figures: Mapping[str, Any], _targets: Targets) -> Verdict:
    timed = figures.get("timed", 0)
    if not timed:
        return Verdict("pricing", FAIL, "no workload timed: throughput.json holds no rate")
    return Verdict("pricing", PASS, f"{timed} of {figures.get('workloads')} workloads timed "
                   f"into {figures.get('file')}")


def mlflow_verdict(figures: Mapping[str, Any], _targets: Targets) -> Verdict:
    return Verdict("mlflow", PASS, f"{figures.get('metrics')} figures logged "
                   f"(run {figures.get('run_id')})")


CHECKS = {"throughput": throughput_verdict, "recipe": recipe_verdict,
          "sharing": sharing_verdict, "slices": slices_verdict, "pricing": pricing_verdict,
          "mlflow": mlflow_verdict}


def part_verdict(part: str, entry: Mapping[str, Any], targets: Targets) -> Verdict:
    """The verdict on one part's entry: its figure against its target, or why it has none."""
    status, why = entry.get("status"), entry.get("why", "")
    if status in ("failed", "stopped"):
        return Verdict(part, FAIL, f"{status}: {why}")
    if status == "skipped":
        if why.startswith("not selected") or part not in WITH_TARGET:
            return Verdict(part, SKIP, why)
        return Verdict(part, FAIL, f"no figure: {why}")
    try:
        verdict = CHECKS[part](entry.get("figures") or {}, targets)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
        return Verdict(part, FAIL, f"figures unreadable ({type(error).__name__}: {error})")
    if status == "partial" and verdict.status == PASS:
        return Verdict(part, FAIL, f"{verdict.figure}; but only in part: {why}", verdict.target)
    return verdict


def suite_verdicts(parts: Mapping[str, Mapping[str, Any]], targets: Targets,
                   order: Iterable[str]) -> list[Verdict]:
    return [part_verdict(name, parts[name], targets) for name in order if name in parts]


def exit_code(verdicts: Iterable[Verdict]) -> int:
    """1 when any part FAILs, else 0 (2 is the command line's: bad arguments, no GPU)."""
    return 1 if any(v.status == FAIL for v in verdicts) else 0
