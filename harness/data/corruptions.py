"""Input corruptions and preprocessing of Zhang et al., "Understanding deep learning requires
rethinking generalization" (ICLR 2017), Sec. 2 and Appendix A.

Corruptions of uint8 (N, C, H, W) images, each a pure function of (images, seed):

- ``shuffled-pixels``: one random permutation of pixel positions, the same for every
  image, train and test alike (a fixed seed gives the same permutation for any N).
- ``random-pixels``: an independent random permutation per image.
- ``gaussian``: each image replaced by Gaussian noise with the (train split's) per-channel
  mean and std.

Randomness comes from a CPU ``torch.Generator`` seeded with ``seed`` (never the global
RNG) and draws are made in float64 on the CPU, so a seed gives the same images on any
machine and for any device the images live on. Use different seeds for the train and
the test split of the per-image corruptions: a draw depends only on the image's position,
so one seed would give test image i the noise (or permutation) of train image i.

Preprocessing as in the TensorFlow CIFAR-10 tutorial the paper builds on: 28x28 center
crops (evaluation) or random crops (training), then ``per_image_standardization``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from harness.data.draws import draw_on, to_device
from harness.errors import ConfigError

INPUT_CORRUPTIONS = ("none", "shuffled-pixels", "random-pixels", "gaussian")

# Images per chunk: bounds the float64 keys/noise held at once (4096 CIFAR images of
# 3x32x32 are ~100 MB of float64). Results do not depend on it: draws are sequential.
_CHUNK = 4096

ChannelValues = torch.Tensor | Sequence[float]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def _check_images(images: torch.Tensor, what: str) -> None:
    # A programming error, not a user's configuration: ValueError, as in batching.py.
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            f"{what} expects uint8 images of shape (N, C, H, W), "
            f"got {images.dtype} of shape {tuple(images.shape)}"
        )


def shuffled_pixels(images: torch.Tensor, seed: int) -> torch.Tensor:
    """Apply one seeded permutation of the H*W pixel positions to every image.

    All channels of a pixel move together. The permutation depends only on (seed, H, W),
    so the train and test splits corrupted with the same seed share it, as in the paper.
    """
    _check_images(images, "shuffled_pixels")
    n, c, h, w = images.shape
    perm = torch.randperm(h * w, generator=_generator(seed)).to(images.device)
    return images.reshape(n, c, h * w)[:, :, perm].reshape(n, c, h, w)


def random_pixels(images: torch.Tensor, seed: int) -> torch.Tensor:
    """Apply an independent seeded permutation of pixel positions to each image.

    Each image's permutation is the argsort of H*W uniform float64 keys; keys are drawn
    image after image from one generator, so image i's permutation does not depend on N
    or on the chunking. The stable sort makes (vanishingly rare) tied keys deterministic.
    """
    _check_images(images, "random_pixels")
    n, c, h, w = images.shape
    gen = _generator(seed)
    flat = images.reshape(n, c, h * w)
    out = torch.empty_like(flat)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        keys = torch.rand(stop - start, h * w, generator=gen, dtype=torch.float64)
        order = torch.argsort(keys, dim=1, stable=True).to(images.device)
        index = order[:, None, :].expand(-1, c, -1)
        out[start:stop] = torch.gather(flat[start:stop], 2, index)
    return out.reshape(n, c, h, w)


def channel_mean_std(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population std of uint8 images in pixel units (0..255).

    float64 sums over chunks (float32 sums over CIFAR-10's 51M pixels per channel lose
    digits); returned as float64 CPU tensors of shape (C,).
    """
    _check_images(images, "channel_mean_std")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("channel_mean_std needs at least one image")
    total = torch.zeros(c, dtype=torch.float64, device=images.device)
    total_sq = torch.zeros_like(total)
    for start in range(0, n, _CHUNK):
        chunk = images[start : start + _CHUNK].to(torch.float64)
        total += chunk.sum(dim=(0, 2, 3))
        total_sq += chunk.square().sum(dim=(0, 2, 3))
    count = n * h * w
    mean = total / count
    var = (total_sq / count - mean.square()).clamp_min(0.0)
    return mean.cpu(), var.sqrt().cpu()


def _channel_values(values: ChannelValues, channels: int, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(values, dtype=torch.float64).detach().cpu().flatten()
    if tensor.numel() == 1:
        tensor = tensor.expand(channels)
    if tensor.numel() != channels:
        raise ConfigError(
            f"gaussian {name} needs one value per channel ({channels}), got {tensor.numel()}"
        )
    if not torch.isfinite(tensor).all():
        raise ConfigError(f"gaussian {name} must be finite, got {tensor.tolist()}")
    return tensor


def gaussian_images(
    images: torch.Tensor, seed: int, mean: ChannelValues, std: ChannelValues
) -> torch.Tensor:
    """Replace each image by N(mean_c, std_c) noise per channel, rounded and clipped to uint8.

    ``mean`` and ``std`` are in pixel units (0..255), one per channel (or one for all);
    pass the train split's ``channel_mean_std`` for both splits. Only the shape and device
    of ``images`` are used. Normals come from the Box-Muller transform of float64 uniforms
    drawn image after image, so image i's noise does not depend on N or on the chunking.
    """
    _check_images(images, "gaussian_images")
    n, c, h, w = images.shape
    mean_t = _channel_values(mean, c, "mean").view(1, c, 1, 1)
    std_t = _channel_values(std, c, "std").view(1, c, 1, 1)
    if (std_t < 0).any():
        raise ConfigError(f"gaussian std must be >= 0, got {std_t.flatten().tolist()}")
    gen = _generator(seed)
    out = torch.empty_like(images)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        uniforms = torch.rand(stop - start, 2, c, h, w, generator=gen, dtype=torch.float64)
        # 1 - u lies in (0, 1], so the log is finite.
        radius = torch.sqrt(-2.0 * torch.log1p(-uniforms[:, 0]))
        normal = radius * torch.cos(2.0 * math.pi * uniforms[:, 1])
        pixels = (normal * std_t + mean_t).round().clamp(0.0, 255.0)
        out[start:stop] = pixels.to(torch.uint8).to(images.device)
    return out


def corrupt_inputs(
    images: torch.Tensor,
    kind: str,
    seed: int,
    mean: ChannelValues | None = None,
    std: ChannelValues | None = None,
) -> torch.Tensor:
    """Apply input corruption ``kind`` (one of ``INPUT_CORRUPTIONS``) to uint8 images.

    "none" returns ``images`` itself (no copy). "gaussian" uses ``mean`` and ``std`` (pixel
    units); when both are None it uses the images' own ``channel_mean_std``, which is right
    for the train split only: corrupt the test split with the train split's stats.
    """
    if kind not in INPUT_CORRUPTIONS:
        raise ConfigError(
            f"unknown input corruption {kind!r}; choose one of: {', '.join(INPUT_CORRUPTIONS)}"
        )
    if kind == "none":
        _check_images(images, "corrupt_inputs")
        return images
    if kind == "shuffled-pixels":
        return shuffled_pixels(images, seed)
    if kind == "random-pixels":
        return random_pixels(images, seed)
    if (mean is None) != (std is None):
        raise ConfigError("gaussian inputs need both mean and std, or neither (own stats)")
    if mean is None or std is None:
        mean, std = channel_mean_std(images)
    return gaussian_images(images, seed, mean, std)


def _check_crop(images: torch.Tensor, size: int, what: str) -> None:
    _check_images(images, what)
    h, w = images.shape[-2:]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError(f"crop size must be a positive integer, got {size!r}")
    if size > h or size > w:
        raise ConfigError(f"a {size}x{size} crop is larger than the {h}x{w} images")


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size window of every image.

    The offset is (H - size) // 2, as in TF's resize_image_with_crop_or_pad (32 -> 28 cuts
    2 pixels on each side).
    """
    _check_crop(images, size, "center_crop")
    h, w = images.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return images[:, :, top : top + size, left : left + size]


def random_crops(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A size x size window of each image at its own random offset in [0, H - size] x
    [0, W - size], without padding (TF's random_crop, batched).

    The offsets are drawn on ``generator``'s device (a CPU one in the harness, so every
    device crops alike) and moved to the images'. One indexing op through per-image
    row/column grids crops the whole batch.
    """
    _check_crop(images, size, "random_crops")
    b, c, h, w = images.shape
    device = images.device
    dy = to_device(draw_on(generator, torch.randint, 0, h - size + 1, (b,)), device)
    dx = to_device(draw_on(generator, torch.randint, 0, w - size + 1, (b,)), device)
    steps = torch.arange(size, device=device)
    rows = dy[:, None] + steps  # (B, size)
    cols = dx[:, None] + steps  # (B, size)
    batch_idx = torch.arange(b, device=device)[:, None, None, None]
    chan_idx = torch.arange(c, device=device)[None, :, None, None]
    return images[batch_idx, chan_idx, rows[:, None, :, None], cols[:, None, None, :]]


def per_image_standardization(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's ``tf.image.per_image_standardization`` on a batch (N, C, H, W).

    Each image becomes (x - mean) / max(std, 1 / sqrt(C*H*W)), with the mean and the
    population std over all its pixels and channels; the floor keeps constant images
    finite (they map to zeros). Like TF, integer inputs are cast to float32 without
    rescaling: the paper's pipeline standardizes 0..255 pixel values, and the floor
    makes the result depend on that scale for near-constant images. Half-precision inputs
    are computed in float32 and returned in their own dtype.
    """
    if x.ndim != 4:
        raise ValueError(f"per_image_standardization expects (N, C, H, W), got {tuple(x.shape)}")
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    values = x.to(dtype)
    num_elements = math.prod(x.shape[1:])
    mean = values.mean(dim=(1, 2, 3), keepdim=True)
    std = values.std(dim=(1, 2, 3), correction=0, keepdim=True)
    adjusted = std.clamp_min(1.0 / math.sqrt(num_elements))
    out = (values - mean) / adjusted
    return out.to(x.dtype) if x.is_floating_point() else out
