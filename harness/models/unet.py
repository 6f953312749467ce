"""``unet``: the Noise2Noise denoiser (Lehtinen et al., ICML 2018), an image-to-image model.

The default is the network of NVlabs/noise2noise ``network.py`` (``autoencoder``) layer for
layer: 3x3 convs with bias, LeakyReLU 0.1, no normalization, 2x2 max pools, nearest-neighbour
2x upsampling, skip concatenation (the input image itself is the top-level skip) and a
linear 3x3 output conv. Its layer list, for ``depth`` pooling levels (5 there)::

    enc_conv0, enc_conv1 (F)            pool1 -> skip
    enc_conv2 .. enc_conv{depth-1} (F)  pool  -> skip     (one conv per level)
    enc_conv{depth} (F)                 pool{depth}
    enc_conv{depth+1} (F)                                 (the bottleneck)
    per level, deepest first: up, concat skip, dec_conv (D), dec_convb (D)
    up, concat input, dec_conv1a (head), dec_conv1b (head / 2), dec_conv1 (out, linear)

with F = ``features`` (48), D = ``decoder_features`` (96 = 2F) and head = ``head_features``
(64). With the defaults and 3 channels in and out that is 991,203 parameters, as in N2N.

Initialization follows their ``get_weight``: weights ~ N(0, gain^2 / fan_in) with gain
sqrt(2) (He init for ReLU, kept as is although the slope is 0.1) and gain 1 for the
linear output conv, biases zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import require
from harness.models.registry import register_model


def _conv(in_channels: int, out_channels: int, gain: float) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
    fan_in = in_channels * 9
    nn.init.normal_(conv.weight, 0.0, gain / math.sqrt(fan_in))
    nn.init.zeros_(conv.bias)
    return conv


class UNet(nn.Module):
    """N2N's U-Net; H and W of the input must be multiples of 2**depth."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        features: int,
        depth: int,
        decoder_features: int,
        head_features: int,
        negative_slope: float,
    ) -> None:
        super().__init__()
        self.depth = depth
        self.negative_slope = negative_slope
        hidden = math.sqrt(2.0)
        # encoder[0] is enc_conv0 + enc_conv1 (full resolution); encoder[k] for k >= 1 is
        # enc_conv{k+1}, the one conv at 1/2**k resolution before the next pool.
        self.encoder = nn.ModuleList(
            [
                nn.ModuleList(
                    [_conv(in_channels, features, hidden), _conv(features, features, hidden)]
                )
            ]
        )
        for _ in range(1, depth):
            self.encoder.append(nn.ModuleList([_conv(features, features, hidden)]))
        self.bottleneck = _conv(features, features, hidden)
        # decoder[i] works at 1/2**(depth-1-i) resolution, deepest first; each concatenates
        # the matching pooled encoder map (F channels) with the upsampled map.
        self.decoder = nn.ModuleList()
        below = features
        for _ in range(depth - 1):
            self.decoder.append(
                nn.ModuleList(
                    [
                        _conv(below + features, decoder_features, hidden),
                        _conv(decoder_features, decoder_features, hidden),
                    ]
                )
            )
            below = decoder_features
        half = head_features // 2
        self.head = nn.ModuleList(
            [_conv(below + in_channels, head_features, hidden), _conv(head_features, half, hidden)]
        )
        self.output = _conv(half, out_channels, 1.0)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiple = 2**self.depth
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            # Without this the concat fails later with a size mismatch that names no cause.
            raise ValueError(
                f"U-Net of depth {self.depth} needs H and W that are multiples of {multiple}, "
                f"got {tuple(x.shape[-2:])}; pad the image first"
            )
        skips = [x]
        n = x
        for level in self.encoder:
            for conv in level:
                n = self._act(conv(n))
            n = F.max_pool2d(n, 2)
            skips.append(n)
        skips.pop()  # the deepest pooled map feeds the bottleneck, not a skip
        n = self._act(self.bottleneck(n))
        for level in self.decoder:
            n = torch.cat([F.interpolate(n, scale_factor=2, mode="nearest"), skips.pop()], dim=1)
            for conv in level:
                n = self._act(conv(n))
        n = torch.cat([F.interpolate(n, scale_factor=2, mode="nearest"), skips.pop()], dim=1)
        for conv in self.head:
            n = self._act(conv(n))
        return self.output(n)


@register_model("unet", output="image")
def unet(
    out_channels: int,
    in_shape: tuple[int, int, int],
    features: int = 48,
    depth: int = 5,
    decoder_features: int = 0,
    head_features: int = 64,
    negative_slope: float = 0.1,
) -> nn.Module:
    """Noise2Noise's U-Net. ``decoder_features`` 0 means 2 * ``features`` (N2N's 96);
    ``head_features`` is dec_conv1a's width, dec_conv1b gets half of it (N2N: 64, 32)."""
    require(features >= 1, f"features must be >= 1, got {features}")
    require(depth >= 1, f"depth (the number of pooling levels) must be >= 1, got {depth}")
    require(
        decoder_features >= 0,
        f"decoder_features must be >= 0 (0 = 2 * features), got {decoder_features}",
    )
    require(head_features >= 2, f"head_features must be >= 2, got {head_features}")
    require(negative_slope >= 0, f"negative_slope must be >= 0, got {negative_slope}")
    channels, height, width = in_shape
    multiple = 2**depth
    require(
        height % multiple == 0 and width % multiple == 0,
        f"image too small or not divisible for the U-Net's depth: depth {depth} pools "
        f"{depth} times, so H and W must be multiples of 2**{depth} = {multiple}; "
        f"got {height}x{width}. Lower model.depth or use larger images",
    )
    return UNet(
        channels,
        out_channels,
        features,
        depth,
        decoder_features or 2 * features,
        head_features,
        negative_slope,
    )
