"""The splits a trial actually uses: subset, long tail, label noise and input corruption
applied.

Every transform draws from ``data_seed`` (recorded), not from the training seed, so
repeats of one cell train on the same data and differ only in initialization and order.
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

if TYPE_CHECKING:  # for the hints only: harness.config reaches this module through the tasks
    from harness.config import TrialConfig

# Offsets keep the transforms' random streams apart under one data_seed.
_SUBSET_STREAM, _LONG_TAIL_STREAM, _NOISE_STREAM, _TEST_SUBSET_STREAM = 0, 1, 2, 3
_TRAIN_INPUT_STREAM, _TEST_INPUT_STREAM = 4, 5


@dataclass(frozen=True)
class TrialData:
    train: ImageSplit
    test: ImageSplit
    class_counts: list[int]
    label_noise_realized: float | None


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
    if config.train_limit and config.train_limit < total:
        per_class = [c * config.train_limit / total for c in per_class]
    if config.imbalance != "none":
        per_class = long_tail_kept(per_class, config)
    return int(round(sum(per_class)))


def test_size(available: int, config: TrialConfig) -> int:
    """Test images a trial scores after every epoch: the test subset, or the whole split."""
    return min(config.test_limit, available) if config.test_limit else available


def prepare_trial_data(dataset: ImageDataset, config: TrialConfig) -> TrialData:
    train = dataset.train
    if config.train_limit and config.train_limit < len(train):
        train = train.subset(
            subset_indices(len(train), config.train_limit, _stream_seed(config.data_seed, _SUBSET_STREAM))
        )
    if config.imbalance != "none":
        present = torch.bincount(train.labels, minlength=dataset.num_classes).tolist()
        counts = long_tail_kept(present, config)
        train = train.subset(
            long_tail_indices(train.labels, counts, _stream_seed(config.data_seed, _LONG_TAIL_STREAM))
        )
    realized = None
    if config.label_noise > 0:
        noisy, realized = corrupt_labels(
            train.labels, dataset.num_classes, config.label_noise,
            _stream_seed(config.data_seed, _NOISE_STREAM),
        )
        train = ImageSplit(train.images, noisy)
    test = dataset.test
    if len(test) > test_size(len(test), config):
        # A fixed test subset (data_seed) keeps CPU profiles fast; the paper profile uses all.
        test = test.subset(
            subset_indices(len(test), config.test_limit, _stream_seed(config.data_seed, _TEST_SUBSET_STREAM))
        )
    if config.input_corruption != "none":
        train, test = _corrupt_inputs(train, test, config)
    class_counts = torch.bincount(train.labels, minlength=dataset.num_classes).tolist()
    return TrialData(train=train, test=test, class_counts=class_counts, label_noise_realized=realized)


def _corrupt_inputs(train: ImageSplit, test: ImageSplit, config: TrialConfig) -> tuple[ImageSplit, ImageSplit]:
    kind = config.input_corruption
    train_seed = _stream_seed(config.data_seed, _TRAIN_INPUT_STREAM)
    # One permutation for both splits is what makes shuffled pixels learnable at all.
    test_seed = train_seed if kind == "shuffled-pixels" else _stream_seed(
        config.data_seed, _TEST_INPUT_STREAM
    )
    mean, std = channel_mean_std(train.images) if kind == "gaussian" else (None, None)
    return (
        ImageSplit(corrupt_inputs(train.images, kind, train_seed, mean, std), train.labels),
        ImageSplit(corrupt_inputs(test.images, kind, test_seed, mean, std), test.labels),
    )
