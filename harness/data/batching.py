"""Batches cut from uint8 tensors that already sit on the training device.

No DataLoader, no worker processes, no PIL: shuffling, random crops and flips are batched
tensor ops on the data's device, so a CIFAR-10 epoch costs a few kernel launches per batch
and the same code runs on CPU and CUDA. Images stay uint8 until a batch is cut (4x less
memory than float), then are normalized to float32.

Every random choice (the order, crop offsets, flips) is drawn from a CPU generator and
then moved to the data's device (a few index tensors per batch): a CPU and a GPU trial of
one config see the same batches, which is what the records' ``random_draws: "cpu"`` says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import torch

from harness.data.corruptions import (
    center_crop,
    channel_mean_std,
    per_image_standardization,
    random_crops,
)
from harness.data.draws import draw_on, to_device


def pixel_stats(images_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of uint8 (N, C, H, W) images, in [0, 1] units,
    as float32 CPU tensors of shape (C,) (from ``channel_mean_std``'s float64 sums)."""
    mean, std = channel_mean_std(images_uint8)
    return (mean / 255.0).float(), (std / 255.0).float()


def _channel_tensor(values: torch.Tensor | Sequence[float], device: torch.device) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float32).to(device).view(1, -1, 1, 1)


def normalize(
    images_uint8: torch.Tensor,
    mean: torch.Tensor | Sequence[float],
    std: torch.Tensor | Sequence[float],
) -> torch.Tensor:
    """(x / 255 - mean) / std per channel, as float32 on the images' device."""
    device = images_uint8.device
    x = images_uint8.to(torch.float32) / 255.0
    return (x - _channel_tensor(mean, device)) / _channel_tensor(std, device)


def epoch_seed(seed: int, epoch_index: int) -> int:
    """A 63-bit seed for one epoch, a hash of (seed, epoch) so nearby pairs don't collide.

    Seeding each epoch afresh lets a resumed run replay epoch k without saved RNG state.
    """
    digest = hashlib.sha256(f"harness-epoch:{int(seed)}:{int(epoch_index)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def random_crop(
    images: torch.Tensor, padding: int, generator: torch.Generator, pad_mode: str = "zeros"
) -> torch.Tensor:
    """Crop each image at its own random offset from a copy padded by ``padding``: with
    zeros, or (``pad_mode="reflect"``) with the image reflected at its border (torch's
    "reflect": the edge pixel is not repeated), as airbench's translate augmentation.

    Gathers through per-image row/column index grids: one indexing op for the whole batch.
    Both modes draw the same offsets from ``generator`` (a CPU one in the harness; the
    offsets move to the images' device).
    """
    if padding <= 0:
        return images
    if pad_mode not in ("zeros", "reflect"):
        raise ValueError(f"pad_mode must be zeros or reflect, got {pad_mode!r}")
    b, c, h, w = images.shape
    device = images.device
    dy = to_device(draw_on(generator, torch.randint, 0, 2 * padding + 1, (b,)), device)
    dx = to_device(draw_on(generator, torch.randint, 0, 2 * padding + 1, (b,)), device)
    rows = dy[:, None] + torch.arange(h, device=device)  # (B, H)
    cols = dx[:, None] + torch.arange(w, device=device)  # (B, W)
    batch_idx = torch.arange(b, device=device)[:, None, None, None]
    chan_idx = torch.arange(c, device=device)[None, :, None, None]
    if pad_mode == "reflect":
        if padding >= min(h, w):
            raise ValueError(f"reflect padding {padding} needs images larger than {padding}, got {h}x{w}")
        # Index into the unpadded image: position p of the padded copy is p - padding,
        # reflected back inside [0, n - 1].
        rows, cols = _reflect(rows - padding, h), _reflect(cols - padding, w)
        return images[batch_idx, chan_idx, rows[:, None, :, None], cols[:, None, None, :]]
    padded = images.new_zeros((b, c, h + 2 * padding, w + 2 * padding))
    padded[:, :, padding : padding + h, padding : padding + w] = images
    return padded[batch_idx, chan_idx, rows[:, None, :, None], cols[:, None, None, :]]


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Reflect indices in [-(size - 1), 2(size - 1)] into [0, size - 1], as F.pad's reflect."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    mask = to_device(draw_on(generator, torch.rand, images.shape[0]) < 0.5, images.device)
    return torch.where(mask[:, None, None, None], images.flip(3), images)


def flip_seed(seed: int) -> int:
    """The seed of a trial's alternating-flip pattern (which images start mirrored)."""
    digest = hashlib.sha256(f"harness-flip:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _to_float(
    images_uint8: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    channels_last: bool,
    per_image: bool = False,
) -> torch.Tensor:
    if per_image:
        # Zhang et al.'s preprocessing (TensorFlow's per_image_standardization): each image
        # to zero mean and unit variance over all its pixels, dataset statistics unused.
        x = per_image_standardization(images_uint8.to(torch.float32) / 255.0)
    else:
        x = (images_uint8.to(torch.float32) / 255.0 - mean) / std
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


class DeviceBatches:
    """Shuffled, augmented training batches of uint8 images held on one device.

    ``epoch(k)`` shuffles with a CPU generator seeded from (seed, k);
    the last batch is dropped only when it holds a single image (BatchNorm can't train on 1).
    ``crop_size`` cuts a centre (or, with ``random_crop``, a random) square first; then
    come pad-and-crop (``crop_padding``, padded with zeros or reflected per ``pad_mode``),
    flip and normalization (per channel, or per image with ``per_image``).

    ``flip_mode="random"`` mirrors each image with probability 1/2 every epoch;
    ``"alternate"`` is airbench's scheme: a fixed random half of the images (drawn once
    from the seed) is mirrored in even epochs, and exactly the other half in odd epochs,
    so every image is seen both ways every two epochs. ``drop_last`` drops a short last
    batch (airbench does); otherwise only a last batch of one image is dropped.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        seed: int,
        mean: torch.Tensor | Sequence[float],
        std: torch.Tensor | Sequence[float],
        crop_padding: int = 0,
        flip: bool = False,
        channels_last: bool = False,
        crop_size: int = 0,
        random_crop: bool = False,
        per_image: bool = False,
        pad_mode: str = "zeros",
        flip_mode: str = "random",
        drop_last: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("DeviceBatches expects uint8 images of shape (N, C, H, W)")
        if labels.shape != (images.shape[0],):
            raise ValueError("labels must hold one label per image")
        if labels.device != images.device:
            raise ValueError(f"images on {images.device} but labels on {labels.device}")
        if images.shape[0] < 2:
            raise ValueError("training needs at least 2 images")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {crop_padding}")
        if pad_mode not in ("zeros", "reflect"):
            raise ValueError(f"pad_mode must be zeros or reflect, got {pad_mode!r}")
        if flip_mode not in ("random", "alternate"):
            raise ValueError(f"flip_mode must be random or alternate, got {flip_mode!r}")
        if drop_last and images.shape[0] < batch_size:
            raise ValueError(
                f"drop_last with batch_size {batch_size} leaves no batch of "
                f"{images.shape[0]} training images"
            )
        self.images = images
        self.labels = labels
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.device = images.device
        self.mean = _channel_tensor(mean, self.device)
        self.std = _channel_tensor(std, self.device)
        self.crop_padding = int(crop_padding)
        self.flip = bool(flip)
        self.channels_last = bool(channels_last)
        self.crop_size = int(crop_size)
        self.random_crop = bool(random_crop)
        self.per_image = bool(per_image)
        self.pad_mode = pad_mode
        self.flip_mode = flip_mode
        self.drop_last = bool(drop_last)
        self.flip_start: torch.Tensor | None = None
        if self.flip and flip_mode == "alternate":
            gen = torch.Generator().manual_seed(flip_seed(self.seed))
            self.flip_start = to_device(torch.rand(self.num_images, generator=gen) < 0.5,
                                        self.device)

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    def __len__(self) -> int:
        full, rest = divmod(self.num_images, self.batch_size)
        return full + (1 if rest >= 2 and not self.drop_last else 0)

    def epoch(self, epoch_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (float32 images, int64 labels) batches for epoch ``epoch_index``."""
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, epoch_index))
        order = to_device(torch.randperm(self.num_images, generator=gen), self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.images[idx]
            # Augment in uint8: 4x less memory traffic than on floats, same result.
            if self.crop_size:
                x = (random_crops(x, self.crop_size, gen) if self.random_crop
                     else center_crop(x, self.crop_size))
            if self.crop_padding:
                x = random_crop(x, self.crop_padding, gen, self.pad_mode)
            if self.flip_start is not None:
                mirrored = self.flip_start[idx] ^ bool(epoch_index % 2)
                x = torch.where(mirrored[:, None, None, None], x.flip(3), x)
            elif self.flip:
                x = random_flip(x, gen)
            yield (
                _to_float(x, self.mean, self.std, self.channels_last, self.per_image),
                self.labels[idx],
            )


def eval_batches(
    images_uint8: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    mean: torch.Tensor | Sequence[float],
    std: torch.Tensor | Sequence[float],
    channels_last: bool = False,
    crop_size: int = 0,
    per_image: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalized batches in order, without augmentation (a centre crop when ``crop_size``);
    the last batch may be short."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    mean_t = _channel_tensor(mean, images_uint8.device)
    std_t = _channel_tensor(std, images_uint8.device)
    for start in range(0, images_uint8.shape[0], batch_size):
        x = images_uint8[start : start + batch_size]
        if crop_size:
            x = center_crop(x, crop_size)
        yield _to_float(x, mean_t, std_t, channels_last, per_image), labels[start : start + batch_size]
