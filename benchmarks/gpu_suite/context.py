"""What every part is handed: the arguments, sizes and targets, the device, the data, the
output folder, the time budget and the study plans (planned once, shared by two parts)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.gpu_suite.budget import STARTED, Deadline
from benchmarks.gpu_suite.config import PARTS, Sizes
from benchmarks.gpu_suite.inputs import Data
from benchmarks.gpu_suite.targets import FULL_TARGETS, Targets


def slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())[:48]


@dataclass
class Context:
    args: argparse.Namespace
    sizes: Sizes
    device: Any  # torch.device
    data: Data
    out: Path
    modules: dict[str, dict[str, Any]]
    targets: Targets = FULL_TARGETS
    started: float = STARTED
    state: dict[str, Any] = field(default_factory=dict)
    selected: tuple[str, ...] = PARTS
    # The running part's deadline (budget.part_deadline sets it): its loops check it.
    deadline: Deadline = field(default_factory=Deadline.never)
    _plans: dict[str, Any] | None = None

    def plans(self) -> dict[str, Any]:
        """Study name -> its cost plan (harness.pricing) for the suite's profile, or the
        error that stopped it planning; None for a study without that profile."""
        if self._plans is None:
            from harness.pricing import check_profile, plan_profile
            from harness.study import get_study, list_studies

            self._plans = {}
            for name in list_studies():
                study = get_study(name)
                if self.sizes.profile not in study.profiles:
                    self._plans[name] = None
                    continue
                profile = study.profile(self.sizes.profile)
                try:
                    self._plans[name] = plan_profile(study, profile, check_profile(profile, {}),
                                                     getattr(self.args, "data_root", None))
                except Exception as error:  # noqa: BLE001 - reported per study
                    self._plans[name] = f"{type(error).__name__}: {error}"
        return self._plans

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def remaining(self) -> float:
        return self.sizes.budget_s - self.elapsed()

    def reserve_after(self, part: str) -> float:
        """Seconds the selected parts after ``part`` need: what ``part`` must leave."""
        later = PARTS[PARTS.index(part) + 1:] if part in PARTS else ()
        return sum(self.sizes.needs.get(p, 0) for p in later if p in self.selected)

    def spendable(self, part: str) -> float:
        """Seconds ``part`` may still spend: its share, or less when the budget is short
        (and, while it runs, no more than its deadline leaves)."""
        left = min(self.remaining() - self.reserve_after(part),
                   self.sizes.shares.get(part, float("inf")))
        return min(left, self.deadline.left()) if self.deadline.part == part else left

    def log(self, line: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {line}", flush=True)
