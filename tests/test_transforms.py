"""Long-tail counts and indices, label noise and subsets: exact numbers and seeding."""

from __future__ import annotations

import pytest
import torch

from harness.data import corrupt_labels, long_tail_counts, long_tail_indices, subset_indices
from harness.errors import ConfigError

LDAM_CIFAR10_IF100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def cifar_like_labels(per_class: int = 5000, num_classes: int = 10) -> torch.Tensor:
    # Interleaved, like a shuffled dataset, so indices of a class aren't a contiguous block.
    return torch.arange(per_class * num_classes) % num_classes


def test_exp_profile_matches_ldam_drw_numbers() -> None:
    counts = long_tail_counts(5000, 10, 100.0)
    assert counts == LDAM_CIFAR10_IF100
    assert sum(counts) == 12406


def test_exp_profile_other_factors() -> None:
    assert long_tail_counts(5000, 10, 1.0) == [5000] * 10
    counts = long_tail_counts(5000, 10, 10.0)
    assert counts[0] == 5000 and counts[-1] == 500
    assert counts == sorted(counts, reverse=True)
    assert long_tail_counts(500, 100, 100.0)[-1] == 5
    assert long_tail_counts(7, 1, 100.0) == [7]


def test_step_profile() -> None:
    assert long_tail_counts(5000, 10, 100.0, "step") == [5000] * 5 + [50] * 5
    assert long_tail_counts(5000, 10, 1.0, "step") == [5000] * 10
    # Odd class count: the last C//2 classes are cut, the majority keeps the middle one.
    assert long_tail_counts(100, 5, 3.0, "step") == [100, 100, 100, 33, 33]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((5000, 10, 0.5, "exp"), "imbalance_factor"),
        ((5000, 10, 100.0, "zipf"), "unknown imbalance profile"),
        ((10, 10, 100.0, "exp"), "no images"),
        ((0, 10, 2.0, "exp"), "n_max"),
    ],
)
def test_long_tail_counts_rejects_bad_values(args: tuple, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        long_tail_counts(*args)


def test_long_tail_indices_keep_exact_counts_and_are_seeded() -> None:
    labels = cifar_like_labels()
    idx = long_tail_indices(labels, LDAM_CIFAR10_IF100, seed=0)
    assert idx.dtype == torch.int64
    assert torch.equal(idx, torch.sort(idx).values)
    assert idx.unique().numel() == idx.numel() == 12406
    assert torch.bincount(labels[idx], minlength=10).tolist() == LDAM_CIFAR10_IF100
    assert torch.equal(idx, long_tail_indices(labels, LDAM_CIFAR10_IF100, seed=0))
    assert not torch.equal(idx, long_tail_indices(labels, LDAM_CIFAR10_IF100, seed=1))


def test_long_tail_indices_nest_across_factors() -> None:
    labels = cifar_like_labels(per_class=200)
    harsh = set(long_tail_indices(labels, long_tail_counts(200, 10, 50.0), seed=3).tolist())
    mild = set(long_tail_indices(labels, long_tail_counts(200, 10, 5.0), seed=3).tolist())
    assert harsh < mild


def test_long_tail_indices_leave_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    long_tail_indices(cifar_like_labels(100), [100, 50, 10, 5, 5, 5, 5, 5, 5, 1], seed=9)
    corrupt_labels(cifar_like_labels(100), 10, 0.5, seed=9)
    subset_indices(1000, 10, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_long_tail_indices_reject_too_many() -> None:
    with pytest.raises(ConfigError, match="class 1 has 5 images"):
        long_tail_indices(torch.arange(10) % 2, [5, 6], seed=0)


def test_corrupt_labels_p0_and_p1() -> None:
    labels = cifar_like_labels()
    same, frac = corrupt_labels(labels, 10, 0.0, seed=0)
    assert torch.equal(same, labels) and frac == 0.0
    noisy, frac = corrupt_labels(labels, 10, 1.0, seed=0)
    # p=1 draws every label afresh: about 1 - 1/C of them change.
    assert frac == pytest.approx(0.9, abs=0.01)
    assert frac == pytest.approx(float((noisy != labels).float().mean()))
    assert torch.bincount(noisy, minlength=10).min() > 4500  # uniform over classes


@pytest.mark.parametrize("p", [0.2, 0.4, 0.8])
def test_corrupt_labels_realized_fraction(p: float) -> None:
    labels = cifar_like_labels()
    noisy, frac = corrupt_labels(labels, 10, p, seed=1)
    assert noisy.dtype == torch.int64 and noisy.shape == labels.shape
    assert int(noisy.min()) >= 0 and int(noisy.max()) <= 9
    # sd of the fraction on 50k labels is < 0.003; 0.01 is > 3 sd.
    assert frac == pytest.approx(p * 0.9, abs=0.01)


def test_corrupt_labels_is_seeded_and_pure() -> None:
    labels = cifar_like_labels(1000)
    before = labels.clone()
    a, fa = corrupt_labels(labels, 10, 0.3, seed=5)
    b, fb = corrupt_labels(labels, 10, 0.3, seed=5)
    c, _ = corrupt_labels(labels, 10, 0.3, seed=6)
    assert torch.equal(a, b) and fa == fb
    assert not torch.equal(a, c)
    assert torch.equal(labels, before)  # input untouched


def test_corrupt_labels_nest_as_p_grows() -> None:
    labels = cifar_like_labels(1000)
    low, _ = corrupt_labels(labels, 10, 0.2, seed=2)
    high, _ = corrupt_labels(labels, 10, 0.6, seed=2)
    changed_low = low != labels
    assert torch.equal(high[changed_low], low[changed_low])


def test_corrupt_labels_rejects_bad_p() -> None:
    with pytest.raises(ConfigError, match="label noise"):
        corrupt_labels(torch.zeros(3, dtype=torch.int64), 10, 1.5, seed=0)


def test_subset_indices() -> None:
    idx = subset_indices(50000, 1000, seed=0)
    assert idx.dtype == torch.int64 and idx.numel() == 1000
    assert idx.unique().numel() == 1000
    assert torch.equal(idx, torch.sort(idx).values)
    assert int(idx.min()) >= 0 and int(idx.max()) < 50000
    assert torch.equal(idx, subset_indices(50000, 1000, seed=0))
    assert not torch.equal(idx, subset_indices(50000, 1000, seed=1))
    assert torch.equal(subset_indices(10, 20, seed=0), torch.arange(10))
    with pytest.raises(ConfigError):
        subset_indices(10, 0, seed=0)
