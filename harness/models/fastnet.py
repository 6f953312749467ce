"""``fastnet``: the network of Keller Jordan's airbench94 (CIFAR-10 to 94% in seconds).

Layout as in airbench94's make_net: a 2x2 stem conv + GELU, three conv groups, global
max pool, a bias-free linear head and a fixed output scale of 1/9.

The stem is airbench's patch-whitening layer with ``whiten=true``: its weights are frozen
and set by ``init_from_data(images)`` (the task calls it with training images before the
first step) to the eigenvectors of the 2x2 patch covariance scaled by
1 / sqrt(eigenvalue + whiten_eps), each filter beside its negative (so 2 x C x 2 x 2
filters: 24 for RGB). Without it the stem is a plain trainable conv (24 filters).
``whiten_bias_epochs`` > 0 trains the stem's bias only in the first that many epochs
(airbench: 3); the training loop calls ``set_epoch(epoch)`` before each epoch.

BatchNorm follows airbench's BatchNorm class: eps 1e-12, the affine weight frozen at 1
(only the bias learns), and ``momentum=1-0.6``: airbench's hyperparameter 0.6 is the
weight kept on the running statistics, while torch's ``momentum`` is the weight given to
the new batch, so torch momentum = 0.4.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.errors import require
from harness.models.convnets import can_pool, positive_ints
from harness.models.registry import register_model

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


class FastNet(nn.Sequential):
    """airbench94's net as a Sequential (parameter names 0.weight, 2.conv1.weight, ...),
    with the data-dependent stem initialization and the stem-bias freezing hooks."""

    def __init__(self, *layers: nn.Module, whiten: bool = False, whiten_eps: float = 5e-4,
                 whiten_bias_epochs: int = 0) -> None:
        super().__init__(*layers)
        self.whiten = whiten
        self.whiten_eps = whiten_eps
        self.whiten_bias_epochs = whiten_bias_epochs
        self.stem_bias_frozen = False
        # Frozen, the bias's gradient is dropped as soon as it is accumulated: the optimizer
        # skips a parameter without one (no step, no momentum, no weight decay), as it would
        # with requires_grad=False. Toggling requires_grad instead would make torch.compile
        # build a new training graph at the epoch it changes.
        self.stem.bias.register_post_accumulate_grad_hook(self._drop_frozen_bias_grad)

    def _drop_frozen_bias_grad(self, bias: torch.Tensor) -> None:
        if self.stem_bias_frozen:
            bias.grad = None

    @property
    def stem(self) -> nn.Conv2d:
        return self[0]

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """Set the whitening stem from normalized training images (N, C, H, W); a no-op
        without ``whiten``."""
        if not self.whiten:
            return
        weight = whitening_weights(images, self.stem.kernel_size, self.whiten_eps)
        self.stem.weight.copy_(weight.to(self.stem.weight))

    def set_epoch(self, epoch: int) -> None:
        """Freeze the stem's bias from epoch ``whiten_bias_epochs`` on (0 = never)."""
        if self.whiten_bias_epochs > 0:
            self.stem_bias_frozen = epoch >= self.whiten_bias_epochs


def patch_covariance(images: torch.Tensor, kernel_size: tuple[int, int],
                     chunk: int = 512) -> torch.Tensor:
    """E[p p^T] over every kh x kw patch p (flattened channel-major, as airbench's
    get_patches) of ``images``, uncentred as in airbench, accumulated in float64 over
    chunks of images."""
    kh, kw = kernel_size
    dim = images.shape[1] * kh * kw
    total = torch.zeros(dim, dim, dtype=torch.float64, device=images.device)
    count = 0
    for part in images.split(chunk):
        patches = part.float().unfold(2, kh, 1).unfold(3, kw, 1)  # N, C, H', W', kh, kw
        flat = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, dim).double()
        total += flat.T @ flat
        count += flat.shape[0]
    return total / max(1, count)


def whitening_weights(images: torch.Tensor, kernel_size: tuple[int, int],
                      eps: float) -> torch.Tensor:
    """airbench's init_whitening_conv: eigenvectors of the patch covariance, largest
    eigenvalue first, each divided by sqrt(eigenvalue + eps), then the same filters
    negated: a (2 C kh kw, C, kh, kw) float32 weight."""
    kh, kw = kernel_size
    channels = images.shape[1]
    covariance = patch_covariance(images, (kh, kw))
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    eigenvalues, rows = eigenvalues.flip(0), eigenvectors.T.flip(0)
    scaled = rows / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]
    filters = scaled.reshape(-1, channels, kh, kw)
    return torch.cat((filters, -filters)).float()


class GlobalMaxPool(nn.Module):
    """The spatial maximum of each channel, (N, C, H, W) -> (N, C, 1, 1), as ``amax``:
    ``nn.AdaptiveMaxPool2d(1)`` gives the same values, but its CUDA backward has no
    deterministic implementation. Without ties among a channel's maxima (GELU outputs
    have none in practice) the gradients are the same too: amax splits a tied maximum's
    gradient evenly where the pool gives it all to one position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3), keepdim=True)


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
    whiten: bool = False,
    whiten_eps: float = 5e-4,
    whiten_bias_epochs: int = 0,
) -> nn.Module:
    """airbench94's net; ``widths`` are the conv groups' channels, ``scale`` the logit
    factor; ``whiten`` makes the stem airbench's frozen patch-whitening layer."""
    widths = positive_ints("widths", widths)
    require(scale > 0, f"scale must be > 0, got {scale}")
    require(whiten_eps > 0, f"whiten_eps must be > 0, got {whiten_eps}")
    require(whiten_bias_epochs >= 0,
            f"whiten_bias_epochs must be >= 0 (0 = the stem bias always trains), got {whiten_bias_epochs}")
    channels, height, width = in_shape
    require(min(height, width) >= 2, f"fastnet's 2x2 stem needs H, W >= 2, got {in_shape}")
    # Whitening makes one filter per eigenvector of the C x 2 x 2 patches, and its negative.
    stem_width = 2 * channels * 2 * 2 if whiten else STEM_WIDTH
    stem = nn.Conv2d(channels, stem_width, 2, padding=0, bias=True)
    if whiten:
        # airbench: the whitening weights are fixed; its bias starts at zero.
        stem.weight.requires_grad_(False)
        with torch.no_grad():
            stem.bias.zero_()
    layers: list[nn.Module] = [stem, nn.GELU()]
    height, width = height - 1, width - 1
    channels = stem_width
    for out in widths:
        pool = can_pool(height, width)
        layers.append(ConvGroup(channels, out, pool))
        if pool:
            height, width = height // 2, width // 2
        channels = out
    # airbench uses MaxPool2d(3) on its 3x3 map, i.e. a global max pool at 32x32 input.
    layers += [
        GlobalMaxPool(),
        nn.Flatten(),
        nn.Linear(channels, num_classes, bias=False),
        Scale(scale),
    ]
    return FastNet(*layers, whiten=whiten, whiten_eps=whiten_eps,
                   whiten_bias_epochs=whiten_bias_epochs)
