"""A task kind: what a task is, apart from training it.

The declaration layer needs to know a task without its training code: a config names a
task, and validating it needs the task's options, the output its models must make, its
default model and loss, and its option checks; a plan needs the model's inputs and
outputs; tables, MLflow and the dry run need a record's metrics and columns. A
``TaskKind`` holds exactly that, and imports no training code, so ``harness.config`` can
look it up. The training side (``harness.tasks.Task``) names its kind.

A kind is a class registered with ``@register_task_kind(name)``. Its annotated class
attributes with defaults are the task's options (``task.<option>`` config keys), read like
model and loss options: the decorator makes the class a frozen dataclass, so its signature
is the single source of truth. It supplies:

- ``output``: what the model must output, "classes" (logits) or "image" (C channels);
  only models and losses registered with the same output fit the task;
- ``metric`` and ``mode``: the report metric (``test_acc``/max, ``test_psnr``/max): what
  tables report and Tune's progress table shows;
- ``selection_metric``: the same measure on the validation split (``val_acc``,
  ``val_psnr``), which ASHA, Optuna and every "best" choice use when the trials hold out a
  validation split (``val_size``); a stage that chooses is refused the test metric;
- ``metrics``: every metric the task reports, so a stage's named metric can be checked
  before any trial;
- ``default_model``, ``default_loss``: what a config of this task trains unless it says;
- ``check(config)`` and ``model_io(config, image_shape, num_classes)``: run at plan time,
  before any trial starts;
- the shape of its records: ``finalize`` (derived final metrics), ``metric_order`` and
  ``record_columns`` (records.csv), ``write_artifacts`` (the data files a trial's MLflow
  run keeps beside its record; data only: figures are drawn by the presentation layer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from harness.registry import OptionRegistry


class TaskKind:
    # Every kind declares these (register_task_kind checks): no task's defaults are another's.
    name: ClassVar[str] = ""
    output: ClassVar[str] = ""
    metric: ClassVar[str] = ""
    mode: ClassVar[str] = "max"
    selection_metric: ClassVar[str] = ""  # "": the task scores no validation split
    metrics: ClassVar[tuple[str, ...]] = ()  # (): not declared, so a stage's is not checked
    default_model: ClassVar[str] = ""
    default_loss: ClassVar[str] = ""
    # The final metrics records.csv shows first, in this order.
    metric_order: ClassVar[tuple[str, ...]] = ("train_loss", "test_loss")

    @classmethod
    def check(cls, config: Any) -> None:
        """Reject option values the task cannot run (ConfigError), before any trial."""

    @classmethod
    def model_io(
        cls, config: Any, image_shape: tuple[int, int, int], num_classes: int
    ) -> tuple[int, tuple[int, int, int]]:
        """(outputs, input shape) the model must have for a dataset of ``image_shape``."""
        raise NotImplementedError

    @classmethod
    def finalize(cls, final: dict[str, Any]) -> dict[str, Any]:
        """Derived final metrics (e.g. test_error from test_acc): the trial and the dry
        run's placeholder records derive them the same way."""
        return final

    @classmethod
    def record_columns(cls, record: Mapping[str, Any]) -> dict[str, Any]:
        """records.csv columns from the task's own record fields (per-class accuracy), in
        order; the generic columns (config, final metrics, data, ...) come from the core."""
        return {}

    @classmethod
    def write_artifacts(cls, record: Mapping[str, Any], folder: Path) -> list[Path]:
        """Data files a trial's MLflow run keeps beside its record (a confusion matrix)."""
        return []


K = TypeVar("K", bound=type[TaskKind])

TASK_KINDS: OptionRegistry[type[TaskKind]] = OptionRegistry("task", ())


def register_task_kind(name: str) -> Callable[[K], K]:
    """Register a kind under ``name``; its annotated attributes become its options."""

    def decorator(cls: K) -> K:
        cls.name = name
        for attr in ("output", "metric", "default_model", "default_loss"):
            if not getattr(cls, attr):
                raise ValueError(f"task {name!r} must set {attr}")
        declared = {cls.metric, cls.selection_metric} - {""}
        if cls.metrics and not declared <= set(cls.metrics):
            raise ValueError(f"task {name!r} must list its metric and selection_metric in metrics")
        kind = dataclasses.dataclass(frozen=True)(cls)
        return TASK_KINDS.register(name)(kind)

    return decorator


# The registry's own lookups, under the names the rest of the harness uses.
list_tasks = TASK_KINDS.names
task_class = TASK_KINDS.get  # the task's kind (a class: its facts are class attributes)
task_options = TASK_KINDS.options  # option -> default: the kind's annotated attributes


def record_task(record: Mapping[str, Any]) -> type[TaskKind] | None:
    """The kind of task a trial record was trained for; None for a record of another kind
    of trial (a theory check) or of a task no longer registered."""
    config = record.get("resolved_config") or record.get("config") or {}
    if "model" not in config:
        return None
    name = config.get("task", "classify")  # records made before tasks existed classified
    return TASK_KINDS.get(name) if name in TASK_KINDS else None
