"""Seeded, pure transforms of a training split: long-tail subsampling, label noise, subsets.

Every function draws from its own CPU ``torch.Generator`` seeded with ``seed`` and never
touches the global RNG, so the result depends only on the arguments: the same data seed
picks the same images on any machine and any device, and nothing else in a trial can
shift it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from harness.errors import ConfigError

PROFILES = ("exp", "step")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def long_tail_counts(
    n_max: int, num_classes: int, imbalance_factor: float, profile: str = "exp"
) -> list[int]:
    """Images kept per class for a long-tailed split; class 0 is the most frequent.

    ``exp``: n_i = floor(n_max * (1/IF)^(i/(C-1))), written exactly as in the LDAM-DRW
    code (Cao et al. 2019) so that IF=100 on CIFAR-10 gives its published
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50].
    ``step``: the last C//2 classes keep floor(n_max/IF), the others n_max.
    """
    if n_max < 1 or num_classes < 1:
        raise ConfigError(
            f"long-tail needs n_max >= 1 and num_classes >= 1, got {n_max}, {num_classes}"
        )
    if not math.isfinite(imbalance_factor) or imbalance_factor < 1:
        raise ConfigError(f"imbalance_factor must be a finite number >= 1, got {imbalance_factor}")
    if profile == "exp":
        if num_classes == 1:
            return [n_max]
        counts = [
            int(n_max * (1.0 / imbalance_factor) ** (i / (num_classes - 1.0)))
            for i in range(num_classes)
        ]
    elif profile == "step":
        minority = math.floor(n_max / imbalance_factor)
        n_major = num_classes - num_classes // 2
        counts = [n_max] * n_major + [minority] * (num_classes // 2)
    else:
        raise ConfigError(
            f"unknown imbalance profile {profile!r}; choose one of: {', '.join(PROFILES)}"
        )
    if min(counts) < 1:
        # A class with no training images is almost surely a mistake in the factor.
        raise ConfigError(
            f"imbalance_factor {imbalance_factor} leaves a class with no images "
            f"(n_max={n_max}); use a factor <= {n_max}"
        )
    return counts


def long_tail_indices(labels: torch.Tensor, counts: Sequence[int], seed: int) -> torch.Tensor:
    """Indices (int64, sorted ascending) keeping ``counts[c]`` random images of each class c.

    Each class gets its own random order drawn from the seed, independent of ``counts``, and
    keeps a prefix of it: for one seed a milder imbalance keeps a superset of the images a
    harsher one keeps, so runs across imbalance factors differ only in the factor.
    """
    cpu_labels = labels.detach().to("cpu", torch.int64)
    if cpu_labels.numel() and (cpu_labels.min() < 0 or cpu_labels.max() >= len(counts)):
        raise ValueError(f"labels must lie in [0, {len(counts)}) to match counts")
    gen = _generator(seed)
    kept = []
    for cls, count in enumerate(counts):
        members = torch.nonzero(cpu_labels == cls).flatten()
        if count > members.numel():
            raise ConfigError(f"class {cls} has {members.numel()} images, cannot keep {count}")
        order = torch.randperm(members.numel(), generator=gen)
        kept.append(members[order[:count]])
    indices = torch.cat(kept) if kept else torch.empty(0, dtype=torch.int64)
    return torch.sort(indices).values.to(labels.device)


def corrupt_labels(
    labels: torch.Tensor, num_classes: int, p: float, seed: int
) -> tuple[torch.Tensor, float]:
    """Replace each label, with probability p, by a class drawn uniformly from all classes.

    The draw may return the original class, so the realized fraction of changed labels is
    about p * (1 - 1/C); it is returned so records show the noise actually applied. Both
    random tensors are always drawn, so one seed corrupts nested sets as p grows.
    """
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"label noise p must be in [0, 1], got {p}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    cpu_labels = labels.detach().to("cpu", torch.int64)
    gen = _generator(seed)
    flip = torch.rand(cpu_labels.shape, generator=gen) < p
    random_classes = torch.randint(0, num_classes, cpu_labels.shape, generator=gen)
    noisy = torch.where(flip, random_classes, cpu_labels)
    changed = float((noisy != cpu_labels).float().mean()) if noisy.numel() else 0.0
    return noisy.to(labels.device), changed


def subset_indices(n: int, limit: int, seed: int) -> torch.Tensor:
    """A seeded random subset of ``limit`` of ``range(n)`` (int64, sorted); all if limit >= n."""
    if limit < 1:
        raise ConfigError(f"subset limit must be >= 1, got {limit}")
    if limit >= n:
        return torch.arange(n, dtype=torch.int64)
    chosen = torch.randperm(n, generator=_generator(seed))[:limit]
    return torch.sort(chosen).values
