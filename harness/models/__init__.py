"""Model registry: factories ``fn(num_classes | out_channels, in_shape, **options) -> nn.Module``.

Every option of a factory is a keyword with a default; the default's type is what the
config validator coerces command-line strings to, so defaults are int/float/bool/str or
tuples of ints. ``model_options`` reads them from the factory signature, so the
signature is the single source of truth for what a model accepts.
"""

from __future__ import annotations

# Importing the model modules fills the registry (harness.models.registry, which they import).
from harness.models import convnets, fastnet, mlp, resnet, unet, zhang  # noqa: F401
from harness.models.complexity import count_macs, count_parameters
from harness.models.registry import (
    MODELS,
    ModelFactory,
    create_model,
    list_models,
    model_options,
    model_output,
    register_model,
)

__all__ = [
    "MODELS",
    "ModelFactory",
    "count_macs",
    "count_parameters",
    "create_model",
    "list_models",
    "model_options",
    "model_output",
    "register_model",
]
