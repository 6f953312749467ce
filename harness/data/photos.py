"""``photos``: scikit-learn's two bundled photographs, an offline denoising dataset.

``sklearn.datasets.load_sample_images()`` ships china.jpg and flower.jpg (427x640 RGB),
so this works on any machine with scikit-learn. Train is a fixed set of random 32x32
crops of china.jpg (seeded, so the dataset is a function of the bundled file alone); test
is flower.jpg whole, for evaluating a denoiser on a full photograph (it pads to the
model's multiple). Labels are all 0: restoration has no classes.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import torch

from harness.data.sources import register_dataset
from harness.data.types import ImageDataset, ImageSplit

PHOTO_NAMES = ("china", "flower")
TRAIN_PHOTO = "china"
TEST_PHOTO = "flower"
CROP_SIZE = 32
CROP_COUNT = 4096
CROP_SEED = 0


@functools.cache
def _load() -> tuple[dict[str, torch.Tensor], str]:
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    photos: dict[str, torch.Tensor] = {}
    digest = hashlib.sha256()
    for filename, image in zip(bunch.filenames, bunch.images, strict=True):
        name = Path(filename).stem
        # The files, not the decoded pixels, identify the source (as the CIFAR archive's
        # hash does); the name is hashed too so the two cannot swap unnoticed.
        digest.update(name.encode() + b"\0" + Path(filename).read_bytes())
        photos[name] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    if tuple(sorted(photos)) != PHOTO_NAMES:
        raise RuntimeError(
            f"scikit-learn's sample images are {sorted(photos)}, expected {PHOTO_NAMES}"
        )
    return photos, digest.hexdigest()


def sample_photos() -> dict[str, torch.Tensor]:
    """Name -> uint8 (3, 427, 640) photo; decoded once per process, copies returned so a
    caller's in-place edit cannot change what the next caller sees."""
    return {name: image.clone() for name, image in _load()[0].items()}


def photos_sha256() -> str:
    """sha256 of the two bundled JPEG files (with their names), in name order."""
    return _load()[1]


def crop_offsets(
    height: int, width: int, count: int = CROP_COUNT, size: int = CROP_SIZE, seed: int = CROP_SEED
) -> torch.Tensor:
    """(count, 2) top-left (row, column) offsets of ``size`` crops, uniform over the photo."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, height - size + 1, (count,), generator=g)
    cols = torch.randint(0, width - size + 1, (count,), generator=g)
    return torch.stack([rows, cols], dim=1)


def random_crops(image: torch.Tensor, offsets: torch.Tensor, size: int = CROP_SIZE) -> torch.Tensor:
    """(count, C, size, size) windows of a (C, H, W) image at ``offsets``."""
    # unfold views every window at once; indexing it copies only the chosen ones.
    windows = image.unfold(1, size, 1).unfold(2, size, 1)  # (C, H', W', size, size)
    picked = windows[:, offsets[:, 0], offsets[:, 1]]  # (C, count, size, size)
    return picked.permute(1, 0, 2, 3).contiguous()


@register_dataset("photos", image_shape=(3, 32, 32), num_classes=1)
def load_photos(data_root: Path) -> ImageDataset:
    """4,096 seeded 32x32 crops of china.jpg (train) and flower.jpg whole (test).

    The data root is unused.
    """
    photos = sample_photos()
    train_photo, test_photo = photos[TRAIN_PHOTO], photos[TEST_PHOTO]
    offsets = crop_offsets(train_photo.shape[1], train_photo.shape[2])
    train = random_crops(train_photo, offsets)
    test = test_photo.unsqueeze(0).contiguous()
    return ImageDataset(
        name="photos",
        source="sklearn-sample-photos",
        sha256=photos_sha256(),
        classes=("photo",),
        train=ImageSplit(train, torch.zeros(len(train), dtype=torch.int64)),
        test=ImageSplit(test, torch.zeros(1, dtype=torch.int64)),
    )
