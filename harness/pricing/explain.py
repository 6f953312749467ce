"""The dry run's account of itself: the rate each model is priced at and how that rate was
found (``render_model_rates``), and what the estimate counts (``render_counted``)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.pricing.estimate import EVAL_SPEEDUP
from harness.pricing.overheads import describe_overheads, launch_bound_rate
from harness.pricing.stages import ProfilePlan
from harness.pricing.tables import ThroughputTable
from harness.pricing.workload import Workload

HOW = {"measured": "measured", "MACs": "scaled by MACs", "launches": "launch-bound floor",
       "fastest": "capped at the fastest measured"}


def _rate_cell(table: ThroughputTable | None, plan_macs: int | None, ops: int | None,
               workload: Workload) -> str:
    if table is None:
        return "—"
    found = table.rate_detail(workload, plan_macs, ops)
    if found is None:
        return "not priced"
    rate, how = found
    origin = table.rates[workload].origin if how == "measured" else ""
    label = {"anchor": "the anchor", "file": "GPU suite", "cache": "cached",
             "timed": "timed"}.get(origin, HOW[how])
    return f"{rate:,.0f} ({label})"


def render_model_rates(plans: Sequence[ProfilePlan], local: ThroughputTable | None,
                       gpu: ThroughputTable | None) -> str:
    """One row per distinct workload of the plans: its MACs, a GPU step's launch floor,
    and the images/s each table prices it at, with how that rate was found."""
    rows: dict[Workload, tuple[int | None, int | None]] = {}
    for plan in plans:
        for stage in plan.stages:
            for point in stage.points:
                w = point.workload
                rows.setdefault(w, (plan.macs.get(w), plan.forward_ops.get(w)))
    gpu_name = gpu.device_name if gpu is not None else "GPU"
    lines = ["Rates per model (images/s of training; evaluation at "
             f"{EVAL_SPEEDUP:g}x these):", "",
             f"| workload | MMACs / image | forward ops | launch floor, GPU | this machine | "
             f"{gpu_name} |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for w, (macs, ops) in sorted(rows.items(), key=lambda item: item[0].describe()):
        floor = launch_bound_rate(w.batch_size, ops)
        cells = [w.describe(), f"{macs / 1e6:,.1f}" if macs else "—", str(ops or "—"),
                 f"{floor:,.0f}" if floor else "—", _rate_cell(local, macs, ops, w),
                 _rate_cell(gpu, macs, ops, w)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_counted() -> str:
    """What a trial's estimated seconds are made of, as bullet lines."""
    lines = [
        "- What a trial's estimate counts: its training images x epochs (x train_fraction of "
        f"the last); every evaluation pass at {EVAL_SPEEDUP:g}x the training speed: the test "
        "and validation splits each epoch, the whole training split each epoch when the "
        "task scores it (task.train_eval, task.stop_at_train_acc), the photographs each epoch "
        "(denoising, task.eval_photos), TTA's extra views of the test split at the last "
        "epoch (task.tta: 2 or 6 views)",
    ]
    lines += [f"  - {line}" for line in describe_overheads()]
    lines.append("  - not counted: Ray's own start (once per run) and MLflow logging after "
                 "the stage; trials sharing a GPU are counted one at a time")
    return "\n".join(lines)
