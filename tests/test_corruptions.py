"""Zhang et al.'s input corruptions, crops and TF's per-image standardization."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.data import corruptions
from harness.data.corruptions import (
    INPUT_CORRUPTIONS,
    center_crop,
    channel_mean_std,
    corrupt_inputs,
    gaussian_images,
    per_image_standardization,
    random_crops,
    random_pixels,
    shuffled_pixels,
)
from harness.errors import ConfigError


def _images(n: int, seed: int = 0, shape: tuple[int, int, int] = (3, 8, 8)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)


def _pixel_perms(before: torch.Tensor, after: torch.Tensor) -> list[torch.Tensor]:
    """For each image, the permutation p with after[:, :, k] == before[:, :, p[k]].

    Pixels are made unique by tagging each position, so the permutation is recovered
    exactly; the check also proves all channels of a pixel moved together.
    """
    n, c, h, w = before.shape
    perms = []
    for i in range(n):
        src = before[i].reshape(c, h * w).T  # (HW, C)
        dst = after[i].reshape(c, h * w).T
        lookup = {tuple(px.tolist()): k for k, px in enumerate(src)}
        assert len(lookup) == h * w, "test images need unique pixels"
        perms.append(torch.tensor([lookup[tuple(px.tolist())] for px in dst]))
    return perms


def _unique_pixel_images(n: int, seed: int) -> torch.Tensor:
    # 8x8 images whose 64 pixels differ in channel 0 (a shuffled ramp), random elsewhere.
    images = _images(n, seed, (3, 8, 8))
    gen = torch.Generator().manual_seed(seed + 100)
    for i in range(n):
        images[i, 0] = torch.randperm(64, generator=gen).reshape(8, 8).to(torch.uint8)
    return images


# ---------------------------------------------------------------- permutations


def _assert_same_sorted_values(before: torch.Tensor, after: torch.Tensor) -> None:
    assert after.dtype == torch.uint8 and after.shape == before.shape
    flat_b = before.flatten(2).sort(dim=2).values
    flat_a = after.flatten(2).sort(dim=2).values
    assert torch.equal(flat_a, flat_b)


def test_shuffled_pixels_is_one_permutation_for_all_images() -> None:
    images = _unique_pixel_images(5, seed=1)
    out = shuffled_pixels(images, seed=7)
    _assert_same_sorted_values(images, out)
    perms = _pixel_perms(images, out)
    assert all(torch.equal(p, perms[0]) for p in perms)
    assert not torch.equal(perms[0], torch.arange(64))
    # Another split (other images, other N) gets the same permutation with the same seed.
    others = _unique_pixel_images(3, seed=2)
    assert torch.equal(_pixel_perms(others, shuffled_pixels(others, seed=7))[0], perms[0])
    assert not torch.equal(shuffled_pixels(images, seed=8), out)


def test_random_pixels_permutes_each_image_differently() -> None:
    images = _unique_pixel_images(6, seed=3)
    out = random_pixels(images, seed=7)
    _assert_same_sorted_values(images, out)
    perms = _pixel_perms(images, out)
    assert len({tuple(p.tolist()) for p in perms}) == len(perms)
    assert torch.equal(random_pixels(images, seed=7), out)
    assert not torch.equal(random_pixels(images, seed=8), out)


def test_random_pixels_does_not_depend_on_chunking_or_n(monkeypatch: pytest.MonkeyPatch) -> None:
    images = _images(10, seed=4)
    whole = random_pixels(images, seed=5)
    monkeypatch.setattr(corruptions, "_CHUNK", 3)
    assert torch.equal(random_pixels(images, seed=5), whole)
    # Image i's permutation depends only on i: a prefix of the split gets the same images.
    assert torch.equal(random_pixels(images[:4], seed=5), whole[:4])


def test_random_pixels_is_reproducible_across_runs() -> None:
    # A fixed expectation guards the "same seed, same images on any machine" promise
    # against changes in how the keys are drawn.
    image = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4)
    perm = random_pixels(image, seed=0).flatten()
    expected = torch.argsort(
        torch.rand(1, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
        dim=1,
        stable=True,
    ).flatten()
    assert torch.equal(perm.long(), expected)


# ---------------------------------------------------------------- gaussian


def test_channel_mean_std_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    images = _images(9, seed=6)
    monkeypatch.setattr(corruptions, "_CHUNK", 4)
    mean, std = channel_mean_std(images)
    as_np = images.numpy().astype(np.float64)
    assert mean.dtype == torch.float64 and mean.shape == (3,)
    np.testing.assert_allclose(mean.numpy(), as_np.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std.numpy(), as_np.std(axis=(0, 2, 3)), rtol=1e-10)


def _clipped_rounded_normal_stats(mean: float, std: float) -> tuple[float, float]:
    """Exact mean and std of round(N(mean, std)) clipped to [0, 255]."""
    cdf = [0.5 * (1 + math.erf((k + 0.5 - mean) / (std * math.sqrt(2)))) for k in range(255)]
    upper = [*cdf, 1.0]
    lower = [0.0, *cdf]
    probs = np.array(upper) - np.array(lower)
    values = np.arange(256.0)
    m = float((probs * values).sum())
    return m, float(np.sqrt((probs * (values - m) ** 2).sum()))


def test_gaussian_images_have_the_requested_stats() -> None:
    shape_only = torch.zeros(500, 3, 16, 16, dtype=torch.uint8)  # 128k samples per channel
    mean, std = (125.3, 122.9, 113.9), (63.0, 62.1, 66.7)  # about CIFAR-10's train stats
    out = gaussian_images(shape_only, seed=1, mean=mean, std=std)
    assert out.dtype == torch.uint8 and out.shape == shape_only.shape
    got_mean, got_std = channel_mean_std(out)
    # Clipping at 0 and 255 cuts ~3% of each tail and shrinks the std by ~4%: compare
    # with the exact stats of the clipped, rounded normal.
    for c in range(3):
        want_mean, want_std = _clipped_rounded_normal_stats(mean[c], std[c])
        assert got_mean[c].item() == pytest.approx(want_mean, abs=1.0)
        assert got_std[c].item() == pytest.approx(want_std, rel=0.01)
        assert want_std < 0.97 * std[c]
    assert torch.equal(gaussian_images(shape_only, seed=1, mean=mean, std=std), out)
    assert not torch.equal(gaussian_images(shape_only, seed=2, mean=mean, std=std), out)
    # A narrow distribution well inside [0, 255] keeps the requested stats.
    narrow = gaussian_images(shape_only, seed=3, mean=(100.0, 150.0, 50.0), std=(5.0, 2.0, 9.0))
    got_mean, got_std = channel_mean_std(narrow)
    np.testing.assert_allclose(got_mean.numpy(), (100.0, 150.0, 50.0), atol=0.1)
    # Rounding adds variance 1/12: sqrt(std^2 + 1/12).
    np.testing.assert_allclose(
        got_std.numpy(), np.sqrt(np.array([5.0, 2.0, 9.0]) ** 2 + 1 / 12), rtol=0.01
    )


def test_gaussian_images_clip_and_round() -> None:
    shape_only = torch.zeros(50, 2, 8, 8, dtype=torch.uint8)
    out = gaussian_images(shape_only, seed=0, mean=(0.0, 255.0), std=(100.0, 100.0))
    # Half of each channel lands beyond the range and is clipped to the bound.
    assert 0.4 < (out[:, 0] == 0).float().mean() < 0.6
    assert 0.4 < (out[:, 1] == 255).float().mean() < 0.6
    constant = gaussian_images(shape_only, seed=0, mean=(17.4, 300.0), std=(0.0, 0.0))
    assert (constant[:, 0] == 17).all() and (constant[:, 1] == 255).all()


def test_gaussian_images_do_not_depend_on_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    shape_only = torch.zeros(7, 3, 4, 4, dtype=torch.uint8)
    whole = gaussian_images(shape_only, 9, mean=(128.0,) * 3, std=(60.0,) * 3)
    monkeypatch.setattr(corruptions, "_CHUNK", 2)
    assert torch.equal(gaussian_images(shape_only, 9, mean=(128.0,) * 3, std=(60.0,) * 3), whole)


def test_gaussian_errors() -> None:
    images = _images(2)
    with pytest.raises(ConfigError, match="one value per channel"):
        gaussian_images(images, 0, mean=(1.0, 2.0), std=(1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match=">= 0"):
        gaussian_images(images, 0, mean=(1.0,) * 3, std=(1.0, -1.0, 1.0))
    with pytest.raises(ConfigError, match="both mean and std"):
        corrupt_inputs(images, "gaussian", 0, mean=(1.0,) * 3)


# ---------------------------------------------------------------- dispatch


def test_corrupt_inputs_dispatches() -> None:
    images = _images(4)
    assert corrupt_inputs(images, "none", 0) is images
    assert torch.equal(corrupt_inputs(images, "shuffled-pixels", 3), shuffled_pixels(images, 3))
    assert torch.equal(corrupt_inputs(images, "random-pixels", 3), random_pixels(images, 3))
    mean, std = channel_mean_std(images)
    assert torch.equal(corrupt_inputs(images, "gaussian", 3), gaussian_images(images, 3, mean, std))
    train_stats = ((10.0, 20.0, 30.0), (1.0, 1.0, 1.0))
    assert torch.equal(
        corrupt_inputs(images, "gaussian", 3, *train_stats),
        gaussian_images(images, 3, *train_stats),
    )
    assert set(INPUT_CORRUPTIONS) == {"none", "shuffled-pixels", "random-pixels", "gaussian"}


def test_unknown_corruption_names_valid_kinds() -> None:
    with pytest.raises(ConfigError, match="random-pixels") as info:
        corrupt_inputs(_images(1), "random_pixels", 0)
    assert "gaussian" in str(info.value) and "'random_pixels'" in str(info.value)


def test_non_uint8_images_are_rejected() -> None:
    with pytest.raises(ValueError, match="uint8"):
        shuffled_pixels(torch.zeros(1, 3, 4, 4), 0)
    with pytest.raises(ValueError, match="uint8"):
        random_pixels(torch.zeros(3, 4, 4, dtype=torch.uint8), 0)


# ---------------------------------------------------------------- crops


def test_center_crop_is_the_central_slice() -> None:
    images = torch.arange(2 * 3 * 32 * 32).reshape(2, 3, 32, 32).to(torch.uint8)
    out = center_crop(images, 28)
    assert out.shape == (2, 3, 28, 28)
    assert torch.equal(out, images[:, :, 2:30, 2:30])
    # An odd margin puts the extra pixel after the crop, as TF's crop_or_pad does.
    assert torch.equal(center_crop(images[:, :, :31, :], 28), images[:, :, 1:29, 2:30])
    assert torch.equal(center_crop(images, 32), images)


def test_random_crops_are_sub_windows() -> None:
    images = _images(64, seed=8, shape=(3, 32, 32))
    out = random_crops(images, 28, torch.Generator().manual_seed(0))
    assert out.shape == (64, 3, 28, 28) and out.dtype == torch.uint8
    offsets = []
    for i in range(images.shape[0]):
        found = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(out[i], images[i, :, dy : dy + 28, dx : dx + 28])
        ]
        assert found, f"crop {i} is not a window of its image"
        offsets.append(found[0])
    # Offsets cover [0, 4] on both axes, both extremes included.
    assert {dy for dy, _ in offsets} == set(range(5))
    assert {dx for _, dx in offsets} == set(range(5))
    again = random_crops(images, 28, torch.Generator().manual_seed(0))
    assert torch.equal(again, out)
    assert torch.equal(random_crops(images, 32, torch.Generator()), images)


def test_crop_errors() -> None:
    images = _images(2, shape=(3, 32, 24))
    with pytest.raises(ConfigError, match="a 28x28 crop is larger than the 32x24 images"):
        center_crop(images, 28)
    with pytest.raises(ConfigError, match="larger than"):
        random_crops(images, 33, torch.Generator())
    with pytest.raises(ConfigError, match="positive integer"):
        center_crop(images, 0)


# ---------------------------------------------------------------- standardization


def _tf_per_image_standardization(image: np.ndarray) -> np.ndarray:
    """TF's documented formula for one image: (x - mean) / max(stddev, 1/sqrt(N))."""
    num_elements = image.size
    adjusted_stddev = max(image.std(), 1.0 / np.sqrt(num_elements))
    return (image - image.mean()) / adjusted_stddev


def test_per_image_standardization_matches_tensorflow_formula() -> None:
    images = _images(4, seed=9, shape=(3, 28, 28)).to(torch.float64)
    images[1] = 7.0  # constant image: std 0, so the 1/sqrt(N) floor divides
    images[2] = 0.0
    images[2, 0, 0, 0] = 1.0  # std ~0.02 < 1/sqrt(2352) ~0.0206: the floor again
    out = per_image_standardization(images)
    expected = np.stack([_tf_per_image_standardization(im) for im in images.numpy()])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert (out[1] == 0).all()
    assert out[2, 0, 0, 0].item() == pytest.approx((1 - 1 / 2352) * np.sqrt(2352))
    np.testing.assert_allclose(out[0].mean().item(), 0.0, atol=1e-12)
    np.testing.assert_allclose(out[0].std(correction=0).item(), 1.0, rtol=1e-12)


def test_per_image_standardization_dtypes() -> None:
    images = _images(2, seed=10)
    as_float = per_image_standardization(images.float())
    assert as_float.dtype == torch.float32
    # Integer inputs are cast without rescaling, as TF does.
    assert torch.equal(per_image_standardization(images), as_float)
    half = per_image_standardization(images.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), as_float, atol=0.02, rtol=0.01)
