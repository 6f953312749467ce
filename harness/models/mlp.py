"""``mlp``: a fully connected baseline on flattened images."""

from __future__ import annotations

import math

from torch import nn

from harness.errors import require
from harness.models.convnets import make_activation, positive_ints
from harness.models.registry import register_model


@register_model("mlp")
def mlp(
    num_classes: int,
    in_shape: tuple[int, int, int],
    hidden: tuple[int, ...] = (256, 256),
    activation: str = "relu",
    dropout: float = 0.0,
) -> nn.Module:
    """Flatten, then Linear + activation (+ dropout) per hidden size, then the classifier."""
    hidden = positive_ints("hidden", hidden, allow_empty=True)
    require(0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}")
    make_activation(activation)  # validate even when hidden is empty
    layers: list[nn.Module] = [nn.Flatten()]
    features = math.prod(in_shape)
    for size in hidden:
        layers += [nn.Linear(features, size), make_activation(activation)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        features = size
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)
