"""The CIFAR-10 networks of Zhang et al., "Understanding deep learning requires rethinking
generalization" (ICLR 2017), Appendix A: ``alexnet-small`` and ``inception-small``.

Both are sized for the paper's 28x28 center/random crops of CIFAR-10:

- ``alexnet-small`` (1,387,786 parameters at 3x28x28, 10 classes): two modules of
  conv 5x5 (64) -> max-pool 3x3/2 -> local response normalization, then fully connected
  384 -> 192 -> classes, as in the paper (the TensorFlow CIFAR-10 tutorial's network,
  which swaps pool and LRN in its second module; the paper's order is kept here).
- ``inception-small`` (1,649,402 parameters at 3x28x28, 10 classes; Fig. 3): conv 3x3
  (96), Inception and Downsample modules, global mean pool, linear classifier. Every conv
  is conv (with bias) -> BatchNorm without scale/shift -> ReLU.

The MLPs of the paper (1x512 and 3x512 hidden units) are the existing ``mlp`` model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import require
from harness.models.convnets import positive_ints
from harness.models.registry import register_model

# The TensorFlow CIFAR-10 tutorial's tf.nn.lrn settings, which the paper's AlexNet uses:
#   out = x / (bias + alpha_tf * sum_{|j - c| <= depth_radius} x_j^2) ** beta
# PyTorch's LocalResponseNorm sums over ``size`` channels and divides alpha by ``size``:
#   out = x / (k + alpha_torch / size * sum x_j^2) ** beta
# so size = 2 * depth_radius + 1 and alpha_torch = alpha_tf * size (here exactly 0.001).
LRN_DEPTH_RADIUS = 4
LRN_BIAS = 1.0
LRN_ALPHA_TF = 0.001 / 9.0
LRN_BETA = 0.75
LRN_SIZE = 2 * LRN_DEPTH_RADIUS + 1
LRN_ALPHA_TORCH = LRN_ALPHA_TF * LRN_SIZE


class ChannelWindowLRN(nn.LocalResponseNorm):
    """``nn.LocalResponseNorm`` for (N, C, H, W) inputs with its channel-window sum written
    as ``size`` shifted slices added in order, instead of PyTorch's ``avg_pool3d``, whose
    CUDA backward has no deterministic implementation (``--deterministic`` would stop at
    the first backward). On the CPU the values and gradients are bit-identical to
    ``F.local_response_norm`` (avg_pool3d adds the window's values in the same order and
    divides by ``size``), so earlier records stay reproducible."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return super().forward(x)
        channels, size = x.shape[1], self.size
        squares = F.pad(x.mul(x), (0, 0, 0, 0, size // 2, (size - 1) // 2))
        window = squares[:, 0:channels]
        for offset in range(1, size):
            window = window + squares[:, offset : offset + channels]
        div = (window / size).mul(self.alpha).add(self.k).pow(self.beta)
        return x / div


def tf_local_response_norm() -> nn.LocalResponseNorm:
    """``tf.nn.lrn(depth_radius=4, bias=1.0, alpha=0.001/9, beta=0.75)`` in PyTorch terms."""
    return ChannelWindowLRN(LRN_SIZE, alpha=LRN_ALPHA_TORCH, beta=LRN_BETA, k=LRN_BIAS)


def same_output_size(size: int, stride: int) -> int:
    """Output length of a TensorFlow 'SAME' window op: ceil(size / stride), any kernel."""
    return -(-size // stride)


class MaxPoolSame(nn.Module):
    """Max pool with TensorFlow 'SAME' padding: ceil(H / stride) outputs per side.

    TF pads (out - 1) * stride + kernel - size positions, the smaller half before and the
    larger half after (28 -> 14 pads one row at the bottom only), and padded positions
    never win the max. PyTorch's symmetric ``padding=1`` gives the same sizes here but
    shifts every window by one pixel, so the padding is done by hand with -inf.
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def _pads(self, size: int) -> tuple[int, int]:
        out = same_output_size(size, self.stride)
        total = max((out - 1) * self.stride + self.kernel_size - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pads(x.shape[-2])
        left, right = self._pads(x.shape[-1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding='SAME'"


@register_model("alexnet-small")
def alexnet_small(
    num_classes: int,
    in_shape: tuple[int, int, int],
    width: int = 64,
    fc_hidden: tuple[int, ...] = (384, 192),
    lrn: bool = True,
    dropout: float = 0.0,
) -> nn.Module:
    """Zhang et al.'s small AlexNet: 2 x [conv 5x5 -> ReLU -> max-pool 3x3/2 -> LRN], FC head.

    ``dropout`` (default off, as in the paper's main runs) follows each hidden FC layer.
    'SAME' pooling maps any H to ceil(H/4) after both modules (28 -> 7, 32 -> 8, 8 -> 2),
    so every input shape works.
    """
    require(width >= 1, f"width must be >= 1, got {width}")
    fc_hidden = positive_ints("fc_hidden", fc_hidden, allow_empty=True)
    require(0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}")

    channels, height, width_px = in_shape
    layers: list[nn.Module] = []
    for _ in range(2):
        layers += [nn.Conv2d(channels, width, 5, padding="same"), nn.ReLU(), MaxPoolSame(3, 2)]
        if lrn:
            layers.append(tf_local_response_norm())
        channels = width
        height, width_px = same_output_size(height, 2), same_output_size(width_px, 2)

    # No global pooling: the head sees the flattened 64 x 7 x 7 map, as in the tutorial.
    layers.append(nn.Flatten())
    features = channels * height * width_px
    for hidden in fc_hidden:
        layers += [nn.Linear(features, hidden), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        features = hidden
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


class ConvModule(nn.Sequential):
    """Fig. 3's Conv module: conv (with bias) -> BatchNorm (no scale/shift) -> ReLU.

    The bias stays even with BatchNorm (where it is redundant) because the paper's
    parameter count, 1,649,402, includes it; without BatchNorm it is the only shift.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        padding: int | str,
        batchnorm: bool,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        ]
        if batchnorm:
            layers.append(nn.BatchNorm2d(out_channels, affine=False))
        layers.append(nn.ReLU())
        super().__init__(*layers)
        self.out_channels = out_channels


class InceptionModule(nn.Module):
    """Fig. 3's Inception(a, b): concat of a 1x1 conv (a channels) and a 3x3 conv (b)."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3: int, batchnorm: bool) -> None:
        super().__init__()
        self.branch1x1 = ConvModule(in_channels, ch1x1, 1, 1, 0, batchnorm)
        self.branch3x3 = ConvModule(in_channels, ch3x3, 3, 1, 1, batchnorm)
        self.out_channels = ch1x1 + ch3x3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x), self.branch3x3(x)], dim=1)


class DownsampleModule(nn.Module):
    """Fig. 3's Downsample(c): concat of a 3x3/2 conv (c channels) and a 3x3/2 max-pool,
    both 'valid' (no padding): H -> (H - 3) // 2 + 1, so 28 -> 13 -> 6."""

    def __init__(self, in_channels: int, ch3x3: int, batchnorm: bool) -> None:
        super().__init__()
        self.conv = ConvModule(in_channels, ch3x3, 3, 2, 0, batchnorm)
        self.pool = nn.MaxPool2d(3, stride=2)
        self.out_channels = ch3x3 + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.pool(x)], dim=1)


# Fig. 3 after the stem conv: (a, b) is Inception(a, b), (c,) is Downsample(c).
INCEPTION_SMALL_LAYOUT: tuple[tuple[int, ...], ...] = (
    (32, 32),
    (32, 48),
    (80,),
    (112, 48),
    (96, 64),
    (80, 80),
    (48, 96),
    (96,),
    (176, 160),
    (176, 160),
)
STEM_CHANNELS = 96


def _valid_down(size: int) -> int:
    return (size - 3) // 2 + 1


class InceptionSmall(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, batchnorm: bool) -> None:
        super().__init__()
        # Stride 1, padding 1: the stem keeps 28x28, and the two valid Downsample modules
        # then give 13x13 and 6x6 maps.
        self.stem = ConvModule(in_channels, STEM_CHANNELS, 3, 1, 1, batchnorm)
        channels = STEM_CHANNELS
        blocks: list[nn.Module] = []
        for spec in INCEPTION_SMALL_LAYOUT:
            block: InceptionModule | DownsampleModule
            if len(spec) == 2:
                block = InceptionModule(channels, spec[0], spec[1], batchnorm)
            else:
                block = DownsampleModule(channels, spec[0], batchnorm)
            blocks.append(block)
            channels = block.out_channels
        self.blocks = nn.Sequential(*blocks)
        # Fig. 3's mean pooling over the whole final map (6x6 at 28x28 inputs).
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.classifier(torch.flatten(self.pool(x), 1))


@register_model("inception-small")
def inception_small(
    num_classes: int,
    in_shape: tuple[int, int, int],
    batchnorm: bool = True,
) -> nn.Module:
    """Zhang et al.'s small Inception (Fig. 3); ``batchnorm=False`` drops every BatchNorm
    (the parameter count is unchanged, since BatchNorm here has no scale or shift)."""
    channels, height, width = in_shape
    # Two valid 3x3/2 downsamplings need a >= 3x3 map before the second: H >= 7.
    smallest = min(height, width)
    require(
        smallest >= 3 and _valid_down(smallest) >= 3,
        f"inception-small needs inputs of at least 7x7 (two valid 3x3 stride-2 "
        f"downsamplings), got {height}x{width}",
    )
    return InceptionSmall(channels, num_classes, batchnorm)
