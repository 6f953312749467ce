"""Model registry: factories ``fn(num_classes, in_shape, **options) -> nn.Module``.

Every option of a factory is a keyword with a default; the default's type is what the
config validator coerces command-line strings to, so defaults are int/float/bool/str or
tuples of ints. ``model_options`` reads them from the factory signature, so the
signature is the single source of truth for what a model accepts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from harness.errors import ConfigError
from harness.registry import Registry, reject_unknown_options

ModelFactory = Callable[..., nn.Module]

MODELS: Registry[ModelFactory] = Registry("model")

# The two leading parameters of every factory; everything after them is an option.
_FIXED_PARAMETERS = ("num_classes", "in_shape")


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory under ``name``; every option must have a default."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        _check_factory_signature(name, factory)
        return MODELS.register(name)(factory)

    return decorator


def list_models() -> list[str]:
    return MODELS.names()


def model_options(name: str) -> dict[str, Any]:
    """Option -> default for model ``name`` (RegistryError if the name is unknown)."""
    factory = MODELS.get(name)
    return {
        p.name: p.default
        for p in inspect.signature(factory).parameters.values()
        if p.name not in _FIXED_PARAMETERS
    }


def create_model(
    name: str, num_classes: int, in_shape: tuple[int, int, int], **options: Any
) -> nn.Module:
    """Build model ``name`` for ``num_classes`` classes and (C, H, W) inputs."""
    factory = MODELS.get(name)
    reject_unknown_options("model", name, options, model_options(name))
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    shape = tuple(in_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise ConfigError(f"in_shape must be (C, H, W) of positive integers, got {in_shape!r}")
    return factory(num_classes, shape, **_normalize(options))


def _normalize(options: Mapping[str, Any]) -> dict[str, Any]:
    # Configs round-trip through JSON/CSV, which turn tuples into lists.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def _check_factory_signature(name: str, factory: ModelFactory) -> None:
    params = list(inspect.signature(factory).parameters.values())
    if [p.name for p in params[:2]] != list(_FIXED_PARAMETERS):
        raise ValueError(f"model factory {name!r} must start with (num_classes, in_shape)")
    missing = [p.name for p in params[2:] if p.default is inspect.Parameter.empty]
    if missing:
        raise ValueError(f"model factory {name!r}: options without defaults: {missing}")


# Importing the model modules fills the registry; they import register_model from here,
# so these imports must come after it is defined.
from harness.models import convnets, fastnet, mlp, resnet  # noqa: E402, F401
from harness.models.complexity import count_macs, count_parameters  # noqa: E402

__all__ = [
    "MODELS",
    "count_macs",
    "count_parameters",
    "create_model",
    "list_models",
    "model_options",
    "register_model",
]
