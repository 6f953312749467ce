"""The training side of a task: what a trial learns. The training loop in ``harness.train``
knows the optimizer, the schedule, checkpoints, divergence and timing; a task knows
everything else about one trial.

A task is a class registered with ``@register_task(Kind)``, naming its kind (a
``harness.task_kinds.TaskKind``: the options, metrics, checks and record shape that need no
training). Its ``__init__(config, dataset, device)`` prepares the trial's data on the
device; its options are ``self.options`` (the config's ``task.<option>`` values, defaults
filled from the kind). It supplies:

- ``__len__``: optimizer steps per epoch; ``num_outputs`` and ``in_shape``: the model's
  (from the kind's ``model_io``);
- ``create_loss()``: the trial's loss;
- ``batches(epoch)``: the training (input, target) batches, built on the device;
- ``meter()``: per-step training statistics turned into the epoch's train metrics;
- ``evaluate(model, autocast)``: the epoch's evaluation metrics and the record's extras;
- ``prepare_model(model)``: data-dependent initialization before the first step;
- ``stop_status(metrics)``: a status that ends the trial early (e.g. "fitted"), or None;
- ``record_fields()`` and ``summarize(history)``: what the record keeps about the data
  the task trained on and about its whole history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from harness.registry import Registry
from harness.task_kinds import TaskKind

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
    kind: ClassVar[type[TaskKind]]  # set by register_task

    # Set by __init__: the model's output size and input shape.
    num_outputs: int
    in_shape: tuple[int, int, int]

    def __init__(self, config: Any, dataset: Any, device: torch.device) -> None:
        self.config = config
        self.dataset = dataset
        self.device = device
        self.options: dict[str, Any] = config.resolved_options("task")

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

    def summarize(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """Record fields computed from the whole history (e.g. time to fit)."""
        return {}


T = TypeVar("T", bound=type[Task])

TRAINERS: Registry[type[Task]] = Registry("task")


def register_task(kind: type[TaskKind]) -> Callable[[T], T]:
    """Register the class that trains tasks of ``kind`` (registered with
    ``register_task_kind``)."""

    def decorator(cls: T) -> T:
        if not (isinstance(kind, type) and issubclass(kind, TaskKind) and kind.name):
            raise ValueError(f"register_task({kind!r}) needs a kind registered with "
                             "register_task_kind")
        cls.kind = kind
        return TRAINERS.register(kind.name)(cls)

    return decorator


def create_task(config: Any, dataset: Any, device: torch.device) -> Task:
    """The training task of ``config.task``, its data prepared on ``device``."""
    return TRAINERS.get(config.task)(config, dataset, device)
