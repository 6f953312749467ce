"""Tasks: what a trial learns. The training loop in ``harness.train`` knows the optimizer,
the schedule, checkpoints, divergence and timing; a task knows everything else.

A task is a class registered with ``@register_task(name)`` whose ``__init__(config,
dataset, device, **options)`` prepares the trial's data on the device; its keyword
options (``task.<option>`` config keys) are read from that signature like model and loss
options. It supplies:

- ``output``: what the model must output, "classes" (logits) or "image" (C channels);
  only models and losses registered with the same output fit the task;
- ``metric`` and ``mode``: the report metric (``test_acc``/max, ``test_psnr``/max): what
  tables report and Tune's progress table shows;
- ``selection_metric``: the same measure on the validation split (``val_acc``,
  ``val_psnr``), which ASHA, Optuna and every "best" choice use when the trials hold out a
  validation split (``val_size``); a stage that chooses is refused the test metric;
- ``metrics``: every metric the task reports, so a stage's named metric can be checked
  before any trial;
- ``batches(epoch)``: the training (input, target) batches, built on the device;
- ``meter()``: per-step training statistics turned into the epoch's train metrics;
- ``evaluate(model, autocast)``: the epoch's evaluation metrics and the record's extras;
- ``prepare_model(model)``: data-dependent initialization before the first step;
- ``stop_status(metrics)``: a status that ends the trial early (e.g. "fitted"), or None;
- ``record_fields()``: what the record keeps about the data the task trained on.

Class-level checks (``check``, ``model_io``) run at plan time, before any trial starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from harness.registry import OptionRegistry

Autocast = Callable[[], Any]


@dataclass(frozen=True)
class Evaluation:
    """One epoch's evaluation: scalar metrics (history, Tune, MLflow) and record extras."""

    metrics: dict[str, float]
    extras: dict[str, Any] = field(default_factory=dict)


class Meter:
    """Accumulates one epoch's training statistics without a host sync per step."""

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        raise NotImplementedError

    def result(self) -> dict[str, float]:
        """The epoch's train metrics; ``train_loss`` first (divergence is judged on it)."""
        raise NotImplementedError

    @property
    def count(self) -> int:
        """Training examples seen this epoch."""
        raise NotImplementedError


class Task:
    # Every task declares these (register_task checks): no task's defaults are another's.
    name: ClassVar[str] = ""
    output: ClassVar[str] = ""
    metric: ClassVar[str] = ""
    mode: ClassVar[str] = "max"
    selection_metric: ClassVar[str] = ""  # "": the task scores no validation split
    metrics: ClassVar[tuple[str, ...]] = ()  # (): not declared, so a stage's is not checked
    default_model: ClassVar[str] = ""
    default_loss: ClassVar[str] = ""

    # Set by __init__: the model's output size and input shape, and steps per epoch.
    num_outputs: int
    in_shape: tuple[int, int, int]

    @classmethod
    def check(cls, config: Any) -> None:
        """Reject option values the task cannot run (ConfigError), before any trial."""

    @classmethod
    def model_io(
        cls, config: Any, image_shape: tuple[int, int, int], num_classes: int
    ) -> tuple[int, tuple[int, int, int]]:
        """(outputs, input shape) the model must have for a dataset of ``image_shape``."""
        raise NotImplementedError

    def __len__(self) -> int:
        """Optimizer steps per epoch."""
        raise NotImplementedError

    def create_loss(self) -> nn.Module:
        raise NotImplementedError

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def meter(self) -> Meter:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, autocast: Autocast) -> Evaluation:
        raise NotImplementedError

    def prepare_model(self, model: nn.Module) -> None:
        """Called once before the first step of a fresh trial (not on resume): a task may
        initialize the model from its training data (fastnet's patch whitening)."""

    def stop_status(self, metrics: Mapping[str, float]) -> str | None:
        return None

    def record_fields(self) -> dict[str, Any]:
        return {}

    @classmethod
    def finalize(cls, final: dict[str, Any]) -> dict[str, Any]:
        """Derived final metrics (e.g. test_error from test_acc). A class method: it needs
        no trial, so the dry run's placeholder records derive them the same way."""
        return final

    # How a record of this task reads as a row of records.csv and as an MLflow run. Class
    # methods: they read records, so tables and tracking need no trial.
    metric_order: ClassVar[tuple[str, ...]] = ("train_loss", "test_loss")  # first columns

    @classmethod
    def record_columns(cls, record: Mapping[str, Any]) -> dict[str, Any]:
        """records.csv columns from the task's own record fields (per-class accuracy), in
        order; the generic columns (config, final metrics, data, ...) come from the core."""
        return {}

    @classmethod
    def write_artifacts(cls, record: Mapping[str, Any], folder: Path) -> list[Path]:
        """Files a trial's MLflow run keeps beside its record (a confusion matrix)."""
        return []

    def summarize(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """Record fields computed from the whole history (e.g. time to fit)."""
        return {}


TASKS: OptionRegistry[type[Task]] = OptionRegistry("task", ("config", "dataset", "device"))


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    def decorator(cls: type[Task]) -> type[Task]:
        cls.name = name
        for attr in ("output", "metric", "default_model", "default_loss"):
            if not getattr(cls, attr):
                raise ValueError(f"task {name!r} must set {attr}")
        declared = {cls.metric, cls.selection_metric} - {""}
        if cls.metrics and not declared <= set(cls.metrics):
            raise ValueError(f"task {name!r} must list its metric and selection_metric in metrics")
        return TASKS.register(name)(cls)

    return decorator


# The registry's own lookups, under the names the rest of the harness uses.
list_tasks = TASKS.names
task_class = TASKS.get
task_options = TASKS.options  # option -> default: the task's __init__ signature


def record_task(record: Mapping[str, Any]) -> type[Task] | None:
    """The task a trial record was trained for; None for a record of another kind of trial
    (a theory check) or of a task no longer registered."""
    config = record.get("resolved_config") or record.get("config") or {}
    if "model" not in config:
        return None
    name = config.get("task", "classify")  # records made before tasks existed classified
    return TASKS.get(name) if name in TASKS else None


def create_task(config: Any, dataset: Any, device: torch.device) -> Task:
    return TASKS.create(config.task, config, dataset, device, **config.task_options)


# Importing the task modules fills the registry.
from harness.tasks import classify, denoise  # noqa: E402, F401

__all__ = [
    "Evaluation",
    "Meter",
    "TASKS",
    "Task",
    "create_task",
    "list_tasks",
    "record_task",
    "register_task",
    "task_class",
    "task_options",
]
