"""The dry run's printed output: a Markdown table per profile and the assumptions under it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.pricing.estimate import ProfileEstimate, Total
from harness.pricing.stages import ProfilePlan
from harness.pricing.tables import ANCHOR_SOURCE, ThroughputTable
from harness.pricing.timing import BUDGET_ENV, budget_seconds


def human_seconds(seconds: float | Total | None) -> str:
    if isinstance(seconds, Total):
        return _bound(seconds, human_seconds)
    if seconds is None:
        return "—"
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _bound(total: Total, show: Callable[[float | None], str]) -> str:
    # A total missing some stages is at least what the priced ones add up to.
    return show(total.value) if total.complete or total.value is None else f"≥ {show(total.value)}"


def human_hours(hours: float | Total | None) -> str:
    if isinstance(hours, Total):
        return _bound(hours, human_hours)
    if hours is None:
        return "—"
    return f"{hours:.3f}" if hours < 0.1 else f"{hours:.2f}" if hours < 10 else f"{hours:.1f}" \
        if hours < 100 else f"{hours:,.0f}"


def _images(images: tuple[int, int] | None) -> str:
    if images is None:
        return "—"
    low, high = images
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def device_label(table: ThroughputTable | None) -> str:
    if table is None:
        return "this machine"
    return "this GPU" if table.device == "cuda" else "this CPU"


def render_estimate(estimate: ProfileEstimate) -> str:
    """A Markdown table per profile (pastes into a README), with the assumptions under it."""
    plan, local, gpu = estimate.plan, estimate.local, estimate.gpu
    gpu_name = gpu.device_name if gpu is not None else "one GPU"
    lines = [
        f"{plan.study} / {plan.profile}: {plan.description}",
        "",
        f"| stage | trials | epochs | images / epoch | est. time, {device_label(local)} "
        f"| est. GPU-h, {gpu_name} | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in estimate.stages:
        epochs = f"≤ {s.epochs}" if s.upper_bound else str(s.epochs)
        lines.append(
            f"| {s.name} | {s.trials if s.trials is not None else '?'} | "
            f"{epochs if s.trials is not None else '?'} | {_images(s.images)} | "
            f"{_mark(s.scaled, human_seconds(s.seconds))} | "
            f"{_mark(s.gpu_scaled, human_hours(s.gpu_hours))} | {'; '.join(s.notes)} |")
    trials = f"{estimate.trials}" + (" + ?" if estimate.unknown_trials else "")
    seconds = _mark(any(s.scaled for s in estimate.stages), human_seconds(estimate.seconds))
    hours = _mark(any(s.gpu_scaled for s in estimate.stages), human_hours(estimate.gpu_hours))
    lines.append(f"| **total** | **{trials}** | | | **{seconds}** | **{hours}** | |")
    return "\n".join(lines)


def _mark(scaled: bool, text: str) -> str:
    """"~" before a figure that rests partly on MACs scaling rather than timing."""
    return f"~{text}" if scaled and text != "—" else text


def render_assumptions(local: ThroughputTable | None, gpu: ThroughputTable | None,
                       plans: Sequence[ProfilePlan]) -> str:
    workloads = {p.workload for plan in plans for s in plan.stages for p in s.points}
    lines = []
    if local is not None:
        timed = sum(1 for w in workloads if w in local.rates and local.rates[w].origin == "timed")
        cached = sum(1 for w in workloads if w in local.rates and local.rates[w].origin == "cache")
        filed = sum(1 for w in workloads if w in local.rates and local.rates[w].origin == "file")
        rest = len(workloads) - timed - cached - filed
        lines.append(
            f"- This machine: {local.device_name} (torch {local.torch}); of {len(workloads)} "
            f"workloads {timed} timed now, {cached} from the cache, {filed} from the GPU suite, "
            f"{rest} " + ("scaled by MACs (~)" if local.rates else "not priced")
            + f" (timing stops after {BUDGET_ENV}={budget_seconds():g} s). Timing: the engine "
            "on synthetic data, one warm-up epoch and one timed epoch of a few steps.")
    if gpu is not None and gpu.source == ANCHOR_SOURCE:
        lines.append(f"- GPU-hours: {ANCHOR_SOURCE}; a rough guide until the GPU suite "
                     "(python -m benchmarks.gpu_suite) has run on a GPU (it writes "
                     "results/gpu/<card>-<date>/throughput.json, which replaces it).")
    elif gpu is not None:
        lines.append(f"- GPU figures: {gpu.source} ({gpu.device_name}, torch {gpu.torch}, "
                     f"{gpu.date}); workloads it lacks are scaled by MACs and held to their "
                     "launch-bound floor (~).")
        sharing = (gpu.sharing or {}).get("speedup")
        if sharing:
            best = max(sharing.items(), key=lambda kv: float(kv[1]))
            lines.append(f"- Trials sharing the card (gpus_per_trial < 1) went {float(best[1]):.1f}x "
                         f"faster in aggregate at {best[0]} per card ({gpu.sharing.get('model')}, "
                         "GPU suite); GPU-hours above are one trial at a time.")
    else:
        lines.append("- GPU-hours: no GPU figures yet; run the GPU suite (python -m "
                     "benchmarks.gpu_suite) on a GPU (it writes "
                     "results/gpu/<card>-<date>/throughput.json).")
    lines += [
        "- On a CPU as many trials at once as Ray places (CPUs / cpus_per_trial, each timed "
        "with that many threads), on a GPU one at a time.",
        "- ≤: ASHA stage, every trial counted at its full epochs (an upper bound); so are "
        "tasks that stop early (e.g. task.stop_at_train_acc).",
        "- A stage built from earlier stages' records is resolved with placeholder records: "
        "its trial count and models are the study's own, the configurations it picks stand-ins.",
    ]
    return "\n".join(lines)
