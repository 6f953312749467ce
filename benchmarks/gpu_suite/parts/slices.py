"""5. slices: every registered study's profile, one trial of its first training stage, a
few epochs of about a hundred steps, torch.compile off and on (bf16 autocast and
channels-last as the engine sets them on CUDA); the deadline is checked every epoch."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from benchmarks.gpu_suite.context import Context


class _EnoughEpochs(Exception):
    pass


def _first_training_example(plan: Any) -> tuple[str, Mapping[str, Any]] | None:
    """The first training stage and its first configuration, in the study's own order."""
    for stage in plan.stages:
        if stage.trial_kind == "train" and stage.points:
            workloads = {point.workload for point in stage.points}
            first = next(w for w in plan.examples if w in workloads)
            return stage.name, plan.examples[first]
    return None


def run_slice(ctx: Context, example: Mapping[str, Any], compile_model: bool) -> dict[str, Any]:
    """A few epochs of one study trial (cut to slice_steps steps each), its reports kept."""
    from harness.config import TrialConfig
    from harness.train import train

    sizes = ctx.sizes
    values = {**example, "device": ctx.device.type, "compile": compile_model,
              "test_limit": min(example.get("test_limit") or sizes.slice_test, sizes.slice_test)}
    if example.get("imbalance", "none") == "none":
        # About slice_steps steps per epoch; a long tail is left whole (a subset small
        # enough for that would leave its rarest classes empty), the epoch count cuts it.
        limit = example.get("train_limit") or 0
        steps_images = int(example.get("batch_size", 128)) * sizes.slice_steps
        values["train_limit"] = min(limit, steps_images) if limit else steps_images
    config = TrialConfig.from_dict(values)
    epochs: list[dict[str, Any]] = []

    def report(metrics: dict[str, Any], _state: Any) -> None:
        ctx.deadline.check()  # every epoch: a slice past the part's share stops the part
        epochs.append({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        if len(epochs) >= sizes.slice_epochs:
            raise _EnoughEpochs

    began = time.perf_counter()
    status = "completed"
    try:
        record = train(config, report, dataset=ctx.data.get(config.dataset))
        status = record["status"]
        epochs = epochs or [h for h in record["history"] if isinstance(h, dict)]
    except _EnoughEpochs:
        status = f"stopped after {sizes.slice_epochs} epochs (slice)"
    precision = config.precision if config.precision != "auto" else (
        "bf16" if ctx.device.type == "cuda" else "fp32")
    return {"compile": compile_model, "status": status, "precision": precision,
            "channels_last": bool(config.channels_last and ctx.device.type == "cuda"),
            "train_limit": config.train_limit, "batch_size": config.batch_size,
            "epochs": epochs, "wall_seconds": round(time.perf_counter() - began, 2)}


def part_slices(ctx: Context) -> dict[str, Any]:
    profile_name = ctx.sizes.profile
    studies: dict[str, Any] = {}
    for name, plan in ctx.plans().items():
        entry: dict[str, Any] = {"runs": []}
        studies[name] = entry
        if plan is None:
            entry["why"] = f"no {profile_name} profile"
            continue
        if isinstance(plan, str):
            entry["why"] = f"its {profile_name} profile does not plan: {plan}"
            entry["failed"] = True
            continue
        found = _first_training_example(plan)
        if found is None:
            entry["why"] = "no training trials (check trials compute on the CPU: no GPU path)"
            continue
        entry["stage"], example = found
        entry["model"] = example.get("model")
        for compile_model in (False, True):
            if compile_model and ctx.device.type != "cuda":
                entry["runs"].append({"compile": True, "status": "skipped", "why":
                                      "torch.compile on a CPU takes minutes per model; the GPU "
                                      "run compiles"})
                continue
            need = 60.0 if compile_model else 15.0
            if ctx.device.type == "cuda" and ctx.spendable("slices") < need:
                entry["runs"].append({"compile": compile_model, "status": "skipped",
                                      "why": "time budget"})
                continue
            ctx.log(f"slice {name}/{entry['stage']} compile={compile_model}")
            try:
                entry["runs"].append(run_slice(ctx, example, compile_model))
            except Exception as error:  # noqa: BLE001 - one study's failure is its row
                entry["runs"].append({"compile": compile_model, "status": "failed",
                                      "why": f"{type(error).__name__}: {error}"})
    failed = [n for n, e in studies.items()
              if e.get("failed") or any(r["status"] == "failed" for r in e["runs"])]
    return {"_status": "failed" if failed else "ran",
            "_why": f"failed: {', '.join(failed)}" if failed else "",
            "profile": profile_name, "studies": studies}

