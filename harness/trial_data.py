"""The splits a trial actually uses: validation hold-out, subset, long tail, label noise
and input corruption applied.

The validation split (``val_size`` images, 0: none) never comes from the test split:
- without a long tail it is a stratified hold-out of the whole training split, drawn
  before the subset, so a subset (``train_limit``) is drawn from the images left and a
  trial with a subset trains on as many images as without validation;
- with a long tail the training set stays exactly the one without validation (the
  published long-tailed set), and the validation images are drawn class-balanced from the
  training-split images the tail (and subset) left out. A class with fewer of those than
  its share gives all it has: at imbalance factor 100 on all of CIFAR-10 the head class
  keeps all its 5,000 images and has none left, and the record's
  ``data.val_class_counts`` says so.
Validation labels are the true labels (label noise corrupts training labels only); input
corruptions apply to it as to the test split.

Every transform draws from the trial's data seed (``TrialConfig.trial_data_seed``, recorded
as ``data.data_seed``), not from the training seed: ``data_seed`` itself, so repeats of one
cell train on the same data and differ only in initialization and order, or with
``data_seed_per_repeat`` ``data_seed + repeat``, so each repeat draws its own data and the
arms of one repeat share it.
Input corruptions (Zhang et al.) change the test split too: shuffled pixels use one
permutation for both splits; random pixels and Gaussian images draw each split from its
own stream, Gaussian images with the training split's channel statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from harness.data import corrupt_labels, long_tail_counts, long_tail_indices, subset_indices
from harness.data.corruptions import channel_mean_std, corrupt_inputs
from harness.data.types import ImageDataset, ImageSplit
from harness.errors import require

if TYPE_CHECKING:  # for the hints only: harness.config reaches this module through the tasks
    from harness.config import TrialConfig

# Offsets keep the transforms' random streams apart under one data_seed.
_SUBSET_STREAM, _LONG_TAIL_STREAM, _NOISE_STREAM, _TEST_SUBSET_STREAM = 0, 1, 2, 3
_TRAIN_INPUT_STREAM, _TEST_INPUT_STREAM = 4, 5
_VALIDATION_STREAM, _VALIDATION_INPUT_STREAM = 6, 7


@dataclass(frozen=True)
class TrialData:
    train: ImageSplit
    test: ImageSplit
    class_counts: list[int]
    label_noise_realized: float | None
    val: ImageSplit | None = None  # None: the config asks for no validation split

    def val_class_counts(self, num_classes: int) -> list[int] | None:
        if self.val is None:
            return None
        return torch.bincount(self.val.labels, minlength=num_classes).tolist()


def _stream_seed(data_seed: int, stream: int) -> int:
    return data_seed * 1000 + stream


def long_tail_kept(present: Sequence[float], config: TrialConfig) -> list[float]:
    """Images per class the long tail keeps of those ``present``: the tail's shape scaled
    from the most populous class, each class capped at what it has (datasets that are not
    exactly balanced, such as digits, can't give n_max to every class). ``present`` may
    be expected counts (floats), as the dry run's pricing passes."""
    n_max = max(1, int(round(max(present))))
    counts = long_tail_counts(n_max, len(present), config.imbalance_factor, config.imbalance)
    return [min(n, available) for n, available in zip(counts, present, strict=True)]


def expected_train_size(class_counts: Sequence[int], config: TrialConfig) -> int:
    """Training images a trial of ``config`` gets from a training split of ``class_counts``
    (subset, then long tail), without the data: the subset is counted at the expected class
    shares, not the seeded draw ``prepare_trial_data`` makes. Label noise and input
    corruption change no counts."""
    per_class = [float(c) for c in class_counts]
    total = sum(per_class)
    if config.val_size and config.imbalance == "none":
        # The hold-out comes out of the pool first (at the class shares it is stratified by).
        per_class = [c * (total - config.val_size) / total for c in per_class]
        total = sum(per_class)
    if config.train_limit and config.train_limit < total:
        per_class = [c * config.train_limit / total for c in per_class]
    if config.imbalance != "none":
        per_class = long_tail_kept(per_class, config)
    return int(round(sum(per_class)))


def test_size(available: int, config: TrialConfig) -> int:
    """Test images a trial scores after every epoch: the test subset, or the whole split."""
    return min(config.test_limit, available) if config.test_limit else available


def prepare_trial_data(dataset: ImageDataset, config: TrialConfig) -> TrialData:
    data_seed = config.trial_data_seed()  # data_seed, or per repeat its own
    full = dataset.train
    pool = torch.arange(len(full), dtype=torch.int64)  # indices into the training split
    val_indices = None
    if config.val_size and config.imbalance == "none":
        val_indices, pool = stratified_holdout(
            full.labels, config.val_size, dataset.num_classes,
            _stream_seed(data_seed, _VALIDATION_STREAM),
        )
    if config.train_limit and config.train_limit < len(pool):
        pool = pool[subset_indices(len(pool), config.train_limit,
                                   _stream_seed(data_seed, _SUBSET_STREAM))]
    if config.imbalance != "none":
        labels = full.labels[pool]
        present = torch.bincount(labels, minlength=dataset.num_classes).tolist()
        counts = long_tail_kept(present, config)
        pool = pool[long_tail_indices(labels, counts, _stream_seed(data_seed, _LONG_TAIL_STREAM))]
        if config.val_size:
            val_indices = balanced_from_unused(
                full.labels, pool, config.val_size, dataset.num_classes,
                _stream_seed(data_seed, _VALIDATION_STREAM),
            )
    train = full if len(pool) == len(full) else full.subset(pool)
    val = full.subset(val_indices) if val_indices is not None else None
    realized = None
    if config.label_noise > 0:
        noisy, realized = corrupt_labels(
            train.labels, dataset.num_classes, config.label_noise,
            _stream_seed(data_seed, _NOISE_STREAM),
        )
        train = ImageSplit(train.images, noisy)
    test = dataset.test
    if len(test) > test_size(len(test), config):
        # A fixed test subset (data_seed) keeps CPU profiles fast; the paper profile uses all.
        test = test.subset(
            subset_indices(len(test), config.test_limit, _stream_seed(data_seed, _TEST_SUBSET_STREAM))
        )
    if config.input_corruption != "none":
        train, test, val = _corrupt_inputs(train, test, val, config)
    class_counts = torch.bincount(train.labels, minlength=dataset.num_classes).tolist()
    return TrialData(train=train, test=test, class_counts=class_counts,
                     label_noise_realized=realized, val=val)


def validation_pool(class_counts: Sequence[int], config: TrialConfig) -> int:
    """Training-split images the validation split of ``config`` may be drawn from: the whole
    split without a long tail (the hold-out comes first), else the images the trial's
    long-tailed training set leaves out (expected counts, as the plan checks it)."""
    total = sum(class_counts)
    if config.imbalance == "none":
        return total
    return total - expected_train_size(class_counts, config.replace(val_size=0))


def check_validation_size(class_counts: Sequence[int], config: TrialConfig) -> None:
    """ConfigError unless the validation split fits the pool and leaves images to train on."""
    if not config.val_size:
        return
    pool = validation_pool(class_counts, config)
    room = pool - 1 if config.imbalance == "none" else pool
    require(
        config.val_size <= room,
        f"val_size {config.val_size} is larger than the {room:,} training-split images "
        f"{config.dataset} can give a validation split here"
        + (" (the images the long tail leaves out)" if config.imbalance != "none" else
           " (one must be left to train on)")
        + "; choose a smaller val_size",
    )
    if config.imbalance == "none" and config.train_limit:
        left = sum(class_counts) - config.val_size
        require(
            config.train_limit <= left,
            f"train_limit {config.train_limit} is more than the {left:,} training images "
            f"left after the validation hold-out of {config.val_size}; lower one of them",
        )


def stratified_holdout(labels: torch.Tensor, size: int, num_classes: int,
                       seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(held-out, rest) sorted indices: ``size`` images, each class's share proportional to
    its count (largest remainders round it to ``size``), each class's images from its own
    seeded random order."""
    cpu = labels.detach().to("cpu", torch.int64)
    counts = torch.bincount(cpu, minlength=num_classes).tolist()
    require(0 < size < len(cpu),
            f"val_size {size} must leave training images: the training split has {len(cpu)}")
    exact = [size * c / len(cpu) for c in counts]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(num_classes), key=lambda c: (-(exact[c] - shares[c]), c))
    for cls in by_remainder[: size - sum(shares)]:
        shares[cls] += 1
    held = _per_class_draw(cpu, shares, torch.ones(len(cpu), dtype=torch.bool), seed)
    rest = torch.ones(len(cpu), dtype=torch.bool)
    rest[held] = False
    return held, torch.nonzero(rest).flatten()


def balanced_from_unused(labels: torch.Tensor, used: torch.Tensor, size: int,
                         num_classes: int, seed: int) -> torch.Tensor:
    """``size`` sorted indices of images not in ``used``, an equal share per class (the
    first ``size % num_classes`` classes one more), a class short of images giving all it
    has."""
    cpu = labels.detach().to("cpu", torch.int64)
    unused = torch.ones(len(cpu), dtype=torch.bool)
    unused[used.to("cpu")] = False
    require(size <= int(unused.sum()),
            f"val_size {size} is larger than the {int(unused.sum()):,} training-split images "
            "the long-tailed training set leaves out; choose a smaller val_size")
    base, extra = divmod(size, num_classes)
    shares = [base + (1 if c < extra else 0) for c in range(num_classes)]
    return _per_class_draw(cpu, shares, unused, seed)


def _per_class_draw(labels: torch.Tensor, shares: Sequence[int], allowed: torch.Tensor,
                    seed: int) -> torch.Tensor:
    """Sorted indices: up to ``shares[c]`` allowed images of each class c, each class in its
    own random order from one seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for cls, share in enumerate(shares):
        members = torch.nonzero((labels == cls) & allowed).flatten()
        order = torch.randperm(members.numel(), generator=gen)
        picked.append(members[order[:share]])
    return torch.sort(torch.cat(picked)).values


def _corrupt_inputs(
    train: ImageSplit, test: ImageSplit, val: ImageSplit | None, config: TrialConfig
) -> tuple[ImageSplit, ImageSplit, ImageSplit | None]:
    kind = config.input_corruption
    data_seed = config.trial_data_seed()
    train_seed = _stream_seed(data_seed, _TRAIN_INPUT_STREAM)
    # One permutation for every split is what makes shuffled pixels learnable at all.
    shared = kind == "shuffled-pixels"
    test_seed = train_seed if shared else _stream_seed(data_seed, _TEST_INPUT_STREAM)
    val_seed = train_seed if shared else _stream_seed(data_seed, _VALIDATION_INPUT_STREAM)
    mean, std = channel_mean_std(train.images) if kind == "gaussian" else (None, None)

    def corrupted(split: ImageSplit, seed: int) -> ImageSplit:
        return ImageSplit(corrupt_inputs(split.images, kind, seed, mean, std), split.labels)

    return (corrupted(train, train_seed), corrupted(test, test_seed),
            corrupted(val, val_seed) if val is not None else None)
