"""CIFAR ResNet (He et al., 2016, Sec. 4.2) as in the LDAM-DRW code (Cao et al., 2019).

Three stages of n basic blocks (depth = 6n + 2) at widths w, 2w, 4w with option-A
shortcuts: the identity, subsampled and zero-padded in channels, so shortcuts add no
parameters. resnet32 (n = 5, w = 16) has 464,154 parameters for 10 classes.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import require
from harness.models.registry import register_model


class PadShortcut(nn.Module):
    """Option A: take every ``stride``-th pixel and zero-pad the new channels."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        extra = planes - in_planes
        # LDAM-DRW pads planes//4 on each side (planes = 2 * in_planes); splitting the
        # difference is the same there and also right for odd widths.
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = PadShortcut(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class NormedLinear(nn.Module):
    """Cosine classifier of the LDAM-DRW code (``use_norm``): logits in [-1, 1].

    As in kaidic/LDAM-DRW models/resnet_cifar.py: the weight is (in, out), drawn
    uniform(-1, 1) and renormalized to unit-norm columns, and it is not a ``nn.Linear``, so
    the Kaiming init applied to linear layers leaves it alone (a Kaiming-normal head starts
    with column norms of 1.2-1.5, halving the head's early effective learning rate).
    LDAM's scale s = 30 assumes these normalized logits; with a plain linear head the
    scaled logits are far larger than in the paper.
    """

    counts_as_linear = True  # harness.models.complexity counts its MACs like a Linear's

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        weight = torch.empty(in_features, out_features).uniform_(-1, 1)
        self.weight = nn.Parameter(weight.renorm_(2, 1, 1e-5).mul_(1e5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Always float32: under bf16 autocast the cosines would carry 8 bits of mantissa
        # into LDAM's scale of 30 (logit steps of ~0.1).
        # The meta device (the dry run counts MACs there) has no autocast to turn off.
        off = (contextlib.nullcontext() if x.device.type == "meta"
               else torch.autocast(x.device.type, enabled=False))
        with off:
            return F.normalize(x.float(), dim=1).mm(F.normalize(self.weight.float(), dim=0))


class CifarResNet(nn.Module):
    def __init__(
        self,
        blocks_per_stage: int,
        base_width: int,
        in_channels: int,
        num_classes: int,
        normed_head: bool,
    ) -> None:
        super().__init__()
        widths = (base_width, 2 * base_width, 4 * base_width)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages: list[nn.Module] = []
        in_planes = widths[0]
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            blocks: list[nn.Module] = []
            for j in range(blocks_per_stage):
                blocks.append(BasicBlock(in_planes, planes, stride if j == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        # A stride-2, padding-1 conv maps 1x1 to 1x1, so tiny inputs never vanish; the
        # adaptive pool replaces the original avg_pool2d(out, out.size(3)).
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = (
            NormedLinear(widths[2], num_classes)
            if normed_head
            else nn.Linear(widths[2], num_classes)
        )
        for m in self.modules():
            # LDAM-DRW's _weights_init: Kaiming normal (fan_in) on conv and linear weights
            # (not on NormedLinear, which keeps its own init).
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(torch.flatten(self.pool(out), 1))


@register_model("resnet32")
def resnet32(
    num_classes: int,
    in_shape: tuple[int, int, int],
    depth: int = 32,
    base_width: int = 16,
    normed_head: bool = False,
) -> nn.Module:
    """CIFAR ResNet-``depth``; ``normed_head`` is LDAM-DRW's cosine classifier (use_norm)."""
    require(
        depth >= 8 and (depth - 2) % 6 == 0,
        f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110), got {depth}",
    )
    require(base_width >= 1, f"base_width must be >= 1, got {base_width}")
    return CifarResNet((depth - 2) // 6, base_width, in_shape[0], num_classes, normed_head)
