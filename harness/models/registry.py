"""The model registry: ``register_model`` and the lookups. The model modules import it
from here, and ``harness.models`` imports them, so the package and its models import one
way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from harness.errors import ConfigError
from harness.outputs import CLASSES, output_kind
from harness.registry import OptionRegistry

ModelFactory = Callable[..., nn.Module]

MODELS: OptionRegistry[ModelFactory] = OptionRegistry("model", CLASSES.model_leading)


def register_model(name: str, output: str = "classes") -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory under ``name``; every option must have a default. A classifier
    starts with (num_classes, in_shape), an image-to-image model with (out_channels,
    in_shape); another output kind (harness.outputs) names its own leading arguments."""
    return MODELS.register(name, fixed=output_kind(output).model_leading, output=output)


# The registry's own lookups, under the names the rest of the harness uses.
list_models = MODELS.names
model_options = MODELS.options  # option -> default (RegistryError for an unknown name)
model_output = MODELS.output  # "classes" or "image"


def create_model(
    name: str, num_outputs: int, in_shape: tuple[int, int, int], **options: Any
) -> nn.Module:
    """Build model ``name`` with ``num_outputs`` classes (or output channels) for (C, H, W)
    inputs."""
    MODELS.get(name)
    if not isinstance(num_outputs, int) or num_outputs < 1:
        raise ConfigError(f"the number of outputs must be a positive integer, got {num_outputs!r}")
    shape = tuple(in_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise ConfigError(f"in_shape must be (C, H, W) of positive integers, got {in_shape!r}")
    return MODELS.create(name, num_outputs, shape, **options)
