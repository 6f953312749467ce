"""``fastnet``: the network of Keller Jordan's airbench94 (CIFAR-10 to 94% in seconds).

Layout as in airbench94's make_net: a 2x2 stem conv (airbench's whitening layer, here
with plain trainable init instead of data whitening) + GELU, three conv groups, global
max pool, a bias-free linear head and a fixed output scale of 1/9.

BatchNorm follows airbench's BatchNorm class: eps 1e-12, the affine weight frozen at 1
(only the bias learns), and ``momentum=1-0.6``: airbench's hyperparameter 0.6 is the
weight kept on the running statistics, while torch's ``momentum`` is the weight given to
the new batch, so torch momentum = 0.4.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.errors import require
from harness.models import register_model
from harness.models.convnets import can_pool, positive_ints

STEM_WIDTH = 24  # airbench: 2 * 3 * whiten_kernel_size**2 with a 2x2 whitening kernel
BN_MOMENTUM = 1 - 0.6  # airbench's batchnorm_momentum 0.6, converted to torch's convention
BN_EPS = 1e-12


def _batchnorm(channels: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)
    # airbench trains only the BN bias; a frozen weight keeps its parameter layout.
    norm.weight.requires_grad_(False)
    return norm


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, 3, padding="same", bias=False)
    # airbench's Conv.reset_parameters: identity (Dirac) init on the first in_channels
    # filters, so each group starts close to passing its input through.
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: conv.weight.size(1)])
    return conv


class ConvGroup(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, pool: bool) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels)
        self.pool: nn.Module = nn.MaxPool2d(2) if pool else nn.Identity()
        self.norm1 = _batchnorm(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.norm2 = _batchnorm(out_channels)
        self.activ = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


@register_model("fastnet")
def fastnet(
    num_classes: int,
    in_shape: tuple[int, int, int],
    widths: tuple[int, ...] = (64, 256, 256),
    scale: float = 1 / 9,
) -> nn.Module:
    """airbench94's net; ``widths`` are the conv groups' channels, ``scale`` the logit factor."""
    widths = positive_ints("widths", widths)
    require(scale > 0, f"scale must be > 0, got {scale}")
    channels, height, width = in_shape
    require(min(height, width) >= 2, f"fastnet's 2x2 stem needs H, W >= 2, got {in_shape}")
    layers: list[nn.Module] = [nn.Conv2d(channels, STEM_WIDTH, 2, padding=0, bias=True), nn.GELU()]
    height, width = height - 1, width - 1
    channels = STEM_WIDTH
    for out in widths:
        pool = can_pool(height, width)
        layers.append(ConvGroup(channels, out, pool))
        if pool:
            height, width = height // 2, width // 2
        channels = out
    # airbench uses MaxPool2d(3) on its 3x3 map, i.e. a global max pool at 32x32 input.
    layers += [
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, num_classes, bias=False),
        Scale(scale),
    ]
    return nn.Sequential(*layers)
