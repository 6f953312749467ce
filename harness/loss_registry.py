"""The loss registry: factories ``fn(class_counts, **options) -> LossFunction`` for losses
on class logits, ``fn(**options)`` for losses on images. Its own module so the class
losses (harness.losses) and the pixel losses (harness.pixel_losses) both register here
without importing each other."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from harness.errors import ConfigError, require
from harness.outputs import CLASSES, output_kind
from harness.registry import OptionRegistry

MIN_PRIOR = 1e-12  # stands in for the prior of a class with no training examples


class LossFunction(nn.Module):
    """A training loss: ``forward(outputs, targets)`` returns the scalar batch mean."""

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Called at the start of every epoch (0-based); schedules such as DRW use it."""

    def set_progress(self, fraction: float) -> None:
        """Called before every step with the fraction of training done, in [0, 1);
        annealed losses (Noise2Noise's L0) use it."""


LossFactory = Callable[..., LossFunction]

# What the loss scores is a model output kind (harness.outputs): class logits against
# labels (the factory takes the training split's class counts first), an image against a
# target image (no class counts), or a kind a task registers with its own leading arguments.
LOSSES: OptionRegistry[LossFactory] = OptionRegistry("loss", CLASSES.loss_leading)


def register_loss(name: str, output: str = "classes") -> Callable[[LossFactory], LossFactory]:
    """Register a factory ``fn(class_counts, **options)`` (``output="classes"``) or
    ``fn(**options)`` (``output="image"``); every option needs a default."""
    return LOSSES.register(name, fixed=output_kind(output).loss_leading, output=output)


# The registry's own lookups, under the names the rest of the harness uses.
list_losses = LOSSES.names
loss_options = LOSSES.options  # option -> default (RegistryError for an unknown name)
loss_output = LOSSES.output  # "classes" or "image": the model output the loss scores


def create_loss(name: str, class_counts: Sequence[int] | None = None, **options: Any) -> LossFunction:
    """Build loss ``name``; a class loss gets the training split's ``class_counts``."""
    if loss_output(name) == "classes":
        if class_counts is None:
            raise ConfigError(f"loss {name!r} needs the training split's class counts")
        return LOSSES.create(name, check_class_counts(class_counts), **options)
    return LOSSES.create(name, **options)


# --- helpers --------------------------------------------------------------------------


def check_class_counts(class_counts: Sequence[int]) -> list[int]:
    counts = [int(c) for c in class_counts]
    require(len(counts) >= 1, "class_counts must not be empty")
    require(all(c >= 0 for c in counts), f"class_counts must be >= 0, got {counts}")
    require(sum(counts) > 0, "class_counts must contain at least one example")
    return counts
