"""What the paper profile of each study would cost on a GPU, for the paper's Compute
section: the dry run's GPU-hours (``harness run --all-studies --profile paper --dry-run``)
and the assumptions behind them. Nothing is timed here, so the same code gives the same
numbers: GPU-hours come from the GPU suite's committed throughput table when there is one,
else from the H100 anchor, as the dry run prices them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harness.report.tables import Table
from harness.study import Study

PAPER = "paper"


def paper_profile_cost(studies: Sequence[Study], results_dir: Path) -> tuple[Table, str] | None:
    """A table of each study's paper profile (trials, GPU-hours, its largest stage) and the
    pricing's assumptions in one paragraph; None when no study has a paper profile.

    The one place the paper calls harness.pricing: its plan, estimate and GPU table."""
    from harness import pricing

    gpu_path = pricing.find_gpu_table(results_dir)
    gpu = pricing.load_table(gpu_path) if gpu_path is not None else pricing.anchor_gpu_table()
    rows, plans = [], []
    for study in studies:
        if PAPER not in study.profiles:
            continue
        profile = study.profile(PAPER)
        plan = pricing.plan_profile(study, profile, pricing.check_profile(profile, {}), None)
        plans.append(plan)
        estimate = pricing.estimate_profile(plan, None, gpu)
        priced = [s for s in estimate.stages if s.gpu_hours is not None]
        largest = max(priced, key=lambda s: s.gpu_hours or 0.0, default=None)
        unpriced = [s.name for s in estimate.stages if s.gpu_hours is None]
        rows.append({
            "study": study.name,
            "trials": str(estimate.trials),
            "GPU-hours": pricing.human_hours(estimate.gpu_hours),
            "largest priced stage": (f"{largest.name} ({largest.trials} trials): "
                                     f"{pricing.human_hours(largest.gpu_hours)}"
                                     if largest is not None else "none (not training trials)"),
            "not priced": ", ".join(unpriced) or "none",
        })
    if not rows:
        return None
    table = Table(
        "paper_cost", pd.DataFrame(rows),
        f"The paper profile of each study, priced by the dry run on {gpu.device_name} "
        "(one trial at a time): trials and estimated GPU-hours. A stage the estimate cannot "
        "price (built from earlier stages' results, or check trials that train nothing) is "
        "listed, and its study's total is a lower bound (marked).",
        column_widths={"largest priced stage": 0.3, "not priced": 0.16},
    )
    return table, pricing.render_assumptions(None, gpu, plans)
