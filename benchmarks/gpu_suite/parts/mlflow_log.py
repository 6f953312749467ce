"""6. mlflow: the figures and files logged as one MLflow run, when MLflow imports."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from benchmarks.gpu_suite.config import EXPERIMENT, SkipPart
from benchmarks.gpu_suite.context import Context


def _numbers(prefix: str, value: Any) -> Iterator[tuple[str, float]]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float) and math.isfinite(value):
        yield prefix, float(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numbers(f"{prefix}.{key}" if prefix else str(key), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(f"{prefix}.{index}", item)


def part_mlflow(ctx: Context) -> dict[str, Any]:
    if not ctx.modules["mlflow"]["ok"]:
        raise SkipPart(f"MLflow not importable ({ctx.modules['mlflow']['why']})")
    import mlflow

    from harness.layout import resolve_runs_dir
    from harness.tracking import ARTIFACTS_DIR, quiet_mlflow, tracking_uri

    quiet_mlflow()
    uri = ctx.args.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri(
        resolve_runs_dir(None))
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        # As harness.tracking does: a SQLite store keeps artifacts beside its database
        # file, not in whatever folder the suite ran from.
        location = None
        if uri.startswith("sqlite:///"):
            database = Path(uri.removeprefix("sqlite:///")).resolve()
            location = (database.parent / ARTIFACTS_DIR / EXPERIMENT).as_uri()
        mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(EXPERIMENT)
    metrics = {}
    for part, entry in ctx.state["parts"].items():
        for key, value in _numbers(part, entry.get("figures", {})):
            # MLflow keys allow letters, digits and _-. /; the figures' keys are such.
            metrics[key[:250]] = value
    with mlflow.start_run(run_name=ctx.out.name) as run:
        mlflow.log_params({"device": ctx.state["suite"]["device_name"],
                           "torch": torch.__version__, "tiny": ctx.args.tiny})
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(ctx.out))
    return {"tracking_uri": uri, "run_id": run.info.run_id, "metrics": len(metrics)}

