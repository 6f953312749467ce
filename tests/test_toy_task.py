"""A new kind of task is its own file: a toy regression task (an 8x8 digit image -> its value
as a number), with its own output kind, model and loss, registered from a module in a
temporary folder, runs one trial through the same training loop, writes a record with its
own metric and columns, gets its MLflow artifacts and a table, touching no core file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray")

TOY_TASK = '''
"""A toy regression task: predict a digit's value (0-9) from its image, scored by MAE."""
import csv
import math

import torch
import torch.nn.functional as F
from torch import nn

from harness.data import DeviceBatches, eval_batches, pixel_stats
from harness.loss_registry import LossFunction, register_loss
from harness.models import register_model
from harness.outputs import register_output_kind
from harness.tasks import (Evaluation, Meter, Task, TaskKind, register_task,
                           register_task_kind)

register_output_kind("scalar", ("num_outputs", "in_shape"))


@register_model("toy-regressor", output="scalar")
def toy_regressor(num_outputs, in_shape, hidden: int = 32):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), hidden), nn.ReLU(),
                         nn.Linear(hidden, num_outputs))


class SquaredError(LossFunction):
    def forward(self, outputs, targets):
        return F.mse_loss(outputs.view(-1), targets)


@register_loss("toy-mse", output="scalar")
def toy_mse():
    return SquaredError()


class SquaredErrorMeter(Meter):
    def __init__(self):
        self.total, self.seen = 0.0, 0

    def update(self, outputs, targets, loss):
        self.total += float(loss) * len(targets)
        self.seen += len(targets)

    def result(self):
        return {"train_loss": self.total / max(self.seen, 1)}

    @property
    def count(self):
        return self.seen


@register_task_kind("toy-regress")
class ToyRegressKind(TaskKind):
    """What the task is: its output, metric, defaults, option and record shape."""
    output = "scalar"
    metric = "test_mae"
    mode = "min"
    default_model = "toy-regressor"
    default_loss = "toy-mse"
    metric_order = ("train_loss", "test_loss", "test_mae")

    scale: float = 1.0  # an option: task.scale

    @classmethod
    def model_io(cls, config, image_shape, num_classes):
        return 1, image_shape

    @classmethod
    def record_columns(cls, record):
        return {"worst_error": max(record.get("worst_errors") or [float("nan")])}

    @classmethod
    def write_artifacts(cls, record, folder):
        path = folder / "worst_errors.csv"
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerows([[e] for e in record.get("worst_errors") or []])
        return [path]


@register_task(ToyRegressKind)
class ToyRegress(Task):
    """How a trial of it trains: its data, batches, loss, meter and evaluation."""

    def __init__(self, config, dataset, device):
        super().__init__(config, dataset, device)
        self.scale = self.options["scale"]
        self.num_outputs, self.in_shape = self.kind.model_io(config, dataset.image_shape, 10)
        self.mean, self.std = pixel_stats(dataset.train.images)
        self.train = DeviceBatches(dataset.train.images, dataset.train.labels.float() * self.scale,
                                   config.batch_size, config.derived_seed(), self.mean, self.std)
        self.test = dataset.test

    def __len__(self):
        return len(self.train)

    def create_loss(self):
        return toy_mse()

    def batches(self, epoch):
        return self.train.epoch(epoch)

    def meter(self):
        return SquaredErrorMeter()

    def evaluate(self, model, autocast):
        model.eval()
        errors = []
        with torch.no_grad():
            for images, values in eval_batches(self.test.images, self.test.labels.float() * self.scale,
                                               256, self.mean, self.std):
                errors.append(model(images).view(-1) - values)
        model.train()
        error = torch.cat(errors)
        return Evaluation({"test_loss": float((error ** 2).mean()), "test_mae": float(error.abs().mean())},
                          {"worst_errors": sorted(error.abs().tolist())[-3:]})
'''

TOY_STUDY = '''
"""A study of the toy task: one trial, a table of its MAE."""
import toy_regress_task  # noqa: F401  (registers the task, its model and loss)

from harness.report import Table, completed, records_frame
from harness.study import Profile, Stage, Study, register_study


def summary(records, profile):
    frame = completed(records_frame(records))
    table = frame[["config.model", "final.test_mae", "worst_error"]].rename(
        columns={"config.model": "model", "final.test_mae": "test MAE",
                 "worst_error": "worst error"})
    return [Table("toy_mae", table, caption="Test MAE of the toy regressor on digits.")]


register_study(Study(
    name="toy_regression", description="a task from outside the package",
    profiles={"smoke": Profile("smoke", "one trial", (Stage("fit", {
        "dataset": "digits", "task": "toy-regress", "device": "cpu", "epochs": 3,
        "batch_size": 64, "lr": 0.05, "optimizer": "adamw", "weight_decay": 0.0,
        "schedule": "constant"}),))},
    summary=summary))
'''


def _write_modules(folder: Path) -> None:
    (folder / "toy_regress_task.py").write_text(textwrap.dedent(TOY_TASK))
    (folder / "toy_regression_study.py").write_text(textwrap.dedent(TOY_STUDY))


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)}
    env.update(HARNESS_STUDIES="toy_regression_study",
               PYTHONPATH=os.pathsep.join([str(folder), str(REPO)]))
    return env


@pytest.mark.slow
def test_the_toy_task_trains_alone_and_learns(tmp_path):
    """`harness train` with the toy task: the same loop, the task's own metric."""
    _write_modules(tmp_path)
    out = tmp_path / "records"
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys, toy_regress_task; from harness.cli import main; sys.exit(main(sys.argv[1:]))",
         "train", "--dataset", "digits", "--set", "task=toy-regress", "--epochs", "3",
         "--set", "optimizer=adamw", "--set", "lr=0.05", "--set", "weight_decay=0",
         "--set", "schedule=constant", "--set", "device=cpu", "--out", str(out)],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(next(out.glob("*.json")).read_text())
    assert record["status"] == "completed"
    assert record["resolved_config"]["model"] == "toy-regressor"
    assert record["resolved_config"]["model.hidden"] == 32  # the default, recorded
    assert record["resolved_config"]["task.scale"] == 1.0
    history = [h["test_mae"] for h in record["history"]]
    # Predicting the mean digit (4.5) gives an MAE of about 2.5; the net must beat it.
    assert history[-1] < 2.0 and history[-1] < history[0]


@needs_ray
@pytest.mark.slow
def test_the_toy_task_runs_through_ray_mlflow_and_a_table(tmp_path):
    _write_modules(tmp_path)
    results, runs = tmp_path / "results", tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "toy_regression", "--profile", "smoke",
         "--results-dir", str(results), "--runs-dir", str(runs)],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = results / "toy_regression" / "smoke"
    record = json.loads(next((folder / "records").rglob("*.json")).read_text())
    assert record["status"] == "completed" and "test_mae" in record["final"]

    import pandas as pd

    frame = pd.read_csv(folder / "records.csv")
    # The task's metrics lead the final.* columns, and its own column is there.
    finals = [c for c in frame.columns if c.startswith("final.")]
    assert finals[:4] == ["final.epoch", "final.train_loss", "final.test_loss", "final.test_mae"]
    assert frame["worst_error"].iloc[0] == pytest.approx(max(record["worst_errors"]))
    assert "test MAE" in (folder / "toy_mae.md").read_text()

    import mlflow
    from mlflow_store import search_runs

    from harness.tracking import tracking_uri

    uri = tracking_uri(runs)
    trials = [r for r in search_runs(uri, "toy_regression") if "mlflow.parentRunId" in r.data.tags]
    assert len(trials) == 1
    assert trials[0].data.metrics["test_mae"] == pytest.approx(record["final"]["test_mae"])
    client = mlflow.MlflowClient(uri)
    files = {Path(f.path).name for f in client.list_artifacts(trials[0].info.run_id)}
    assert "worst_errors.csv" in files  # the task's artifact, beside the record
