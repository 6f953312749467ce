"""The write-up's ConvNet (``seed-convnet`` and its two depth readings) and the vanilla CNN.

Also holds the small layer helpers the other model modules share.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from harness.errors import require
from harness.models.registry import register_model

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


def make_activation(name: str) -> nn.Module:
    require(
        name in ACTIVATIONS, f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}"
    )
    return ACTIVATIONS[name]()


def can_pool(height: int, width: int) -> bool:
    """A 2x2 max pool only runs while both sides are >= 2, so no map shrinks below 1x1."""
    return height >= 2 and width >= 2


def positive_ints(key: str, values: tuple[int, ...], allow_empty: bool = False) -> tuple[int, ...]:
    values = tuple(values)
    require(allow_empty or len(values) > 0, f"{key} must not be empty")
    require(
        all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values),
        f"{key} must be positive integers, got {values!r}",
    )
    return values


@register_model("seed-convnet")
def seed_convnet(
    num_classes: int,
    in_shape: tuple[int, int, int],
    blocks: int = 3,
    convs_per_block: int = 2,
    base_width: int = 128,
    width_growth: float = 2.0,
    max_width: int = 512,
    kernel_size: int = 3,
    activation: str = "gelu",
    dropout: float = 0.1,
    batchnorm: bool = True,
    fc_hidden: tuple[int, ...] = (512, 256),
) -> nn.Module:
    """The write-up's ConvNet with its depth as a searchable option."""
    require(blocks >= 1, f"blocks must be >= 1, got {blocks}")
    require(convs_per_block >= 1, f"convs_per_block must be >= 1, got {convs_per_block}")
    require(base_width >= 1 and max_width >= 1, "base_width and max_width must be >= 1")
    require(width_growth > 0, f"width_growth must be > 0, got {width_growth}")
    require(kernel_size >= 1, f"kernel_size must be >= 1, got {kernel_size}")
    require(0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}")
    fc_hidden = positive_ints("fc_hidden", fc_hidden, allow_empty=True)
    make_activation(activation)  # validate before building anything

    channels, height, width = in_shape
    layers: list[nn.Module] = []
    for b in range(blocks):
        out = max(1, min(max_width, round(base_width * width_growth**b)))
        for _ in range(convs_per_block):
            # padding="same" keeps H, W for any kernel size (stride 1), as the write-up's
            # 3x3/padding-1 convs do.
            layers.append(nn.Conv2d(channels, out, kernel_size, padding="same"))
            layers.append(make_activation(activation))
            channels = out
        # The write-up's order: pool, then batch norm, then dropout after every block.
        if can_pool(height, width):
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        if batchnorm:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(nn.Dropout(dropout))

    # The head flattens the final map (no global pooling), like the assignment's CNN;
    # the flattened size is known here because in_shape is.
    layers.append(nn.Flatten())
    features = channels * height * width
    for hidden in fc_hidden:
        layers += [nn.Linear(features, hidden), make_activation(activation), nn.Dropout(dropout)]
        features = hidden
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


def _depth_preset(blocks: int, convs_per_block: int) -> Callable[..., nn.Module]:
    """seed-convnet with its depth fixed by the name: every other option, same defaults."""

    def factory(num_classes: int, in_shape: tuple[int, int, int], **options: Any) -> nn.Module:
        return seed_convnet(
            num_classes, in_shape, blocks=blocks, convs_per_block=convs_per_block, **options
        )

    # model_options reads the signature, so publish seed-convnet's minus the depth options.
    signature = inspect.signature(seed_convnet)
    kept = [p for p in signature.parameters.values() if p.name not in _DEPTH_OPTIONS]
    factory.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    factory.__doc__ = f"seed-convnet with {blocks} blocks x {convs_per_block} convs."
    return factory


_DEPTH_OPTIONS = ("blocks", "convs_per_block")

# The write-up says both "6 total conv" and "4 sets of 2 conv layers": one preset per
# reading (3 blocks: 128, 256, 512 channels; 4 blocks: 128, 256, 512, 512).
register_model("seed-convnet-6conv")(_depth_preset(3, 2))
register_model("seed-convnet-8conv")(_depth_preset(4, 2))


@register_model("vanilla-cnn")
def vanilla_cnn(
    num_classes: int,
    in_shape: tuple[int, int, int],
    filters: int = 32,
    kernel_size: int = 7,
) -> nn.Module:
    """The assignment's baseline: one valid conv, ReLU, 2x2 max pool, linear classifier."""
    channels, height, width = in_shape
    require(filters >= 1, f"filters must be >= 1, got {filters}")
    require(
        1 <= kernel_size <= min(height, width),
        f"kernel_size must be in [1, {min(height, width)}] for inputs {in_shape}, got {kernel_size}",
    )
    height, width = height - kernel_size + 1, width - kernel_size + 1
    layers: list[nn.Module] = [nn.Conv2d(channels, filters, kernel_size), nn.ReLU()]
    if can_pool(height, width):
        layers.append(nn.MaxPool2d(2))
        height, width = height // 2, width // 2
    layers += [nn.Flatten(), nn.Linear(filters * height * width, num_classes)]
    return nn.Sequential(*layers)
