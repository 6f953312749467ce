"""The in-memory form every dataset takes: uint8 images and one target per image (an
int64 class label, or a float target for a task that regresses)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ImageSplit:
    images: torch.Tensor  # uint8, (N, C, H, W)
    # One target per image: an int64 class label (N,), or a task's float target (N, ...),
    # e.g. a regression value; what a target means is the task's business.
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        kind_ok = self.labels.dtype == torch.int64 or self.labels.is_floating_point()
        if not kind_ok or self.labels.ndim < 1 or self.labels.shape[0] != self.images.shape[0]:
            raise ValueError("labels must be int64 class labels or float targets, one per image")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor) -> ImageSplit:
        return ImageSplit(self.images[indices], self.labels[indices])


@dataclass(frozen=True)
class ImageDataset:
    name: str  # registry name, e.g. "cifar10"
    source: str  # what was actually read, e.g. "cifar10" or "cifar10-jpeg-q75"
    sha256: str  # of the source file(s) read
    classes: tuple[str, ...]
    train: ImageSplit
    test: ImageSplit

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return int(c), int(h), int(w)
