"""On-device batching: coverage, seeding, crop/flip geometry and normalization by hand."""

from __future__ import annotations

import pytest
import torch

from harness.data import DeviceBatches, eval_batches, normalize, pixel_stats
from harness.data.batching import random_crop, random_flip

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def indexed_images(n: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is filled with i % 256 and labelled i, so a batch shows whether pairs stay paired."""
    labels = torch.arange(n, device=device)
    images = (labels % 256).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    return images, labels


def identity_batches(images: torch.Tensor, labels: torch.Tensor, **kwargs) -> DeviceBatches:
    # mean 0, std 1/255 turns a pixel back into its uint8 value.
    return DeviceBatches(images, labels, mean=[0.0] * 3, std=[1 / 255] * 3, **kwargs)


@pytest.mark.parametrize("device", DEVICES)
def test_epoch_visits_every_image_once(device: str) -> None:
    images, labels = indexed_images(300, device)
    batches = identity_batches(images, labels, batch_size=64, seed=0)
    seen = []
    for x, y in batches.epoch(0):
        assert x.dtype == torch.float32 and x.device.type == device
        assert torch.equal(x[:, 0, 0, 0].round().long(), y % 256)  # image still matches label
        seen.append(y)
    assert len(seen) == len(batches) == 5  # 4 x 64 + 44
    everything = torch.cat(seen)
    assert torch.equal(torch.sort(everything).values, labels)
    assert not torch.equal(everything, labels)  # shuffled
    assert batches.num_images == 300


@pytest.mark.parametrize(("n", "expected"), [(10, 3), (11, 4), (12, 4), (2, 1)])
def test_only_a_single_leftover_image_is_dropped(n: int, expected: int) -> None:
    images, labels = indexed_images(n)
    batches = identity_batches(images, labels, batch_size=3, seed=0)
    sizes = [y.numel() for _, y in batches.epoch(0)]
    assert len(batches) == len(sizes) == expected
    assert min(sizes) >= 2
    assert sum(sizes) == n - (1 if n % 3 == 1 else 0)


def _epoch_labels(batches: DeviceBatches, k: int) -> torch.Tensor:
    return torch.cat([y for _, y in batches.epoch(k)])


def test_epochs_are_seeded_and_replayable() -> None:
    images, labels = indexed_images(200)
    kwargs = dict(batch_size=32, crop_padding=1, flip=True)
    a = identity_batches(images, labels, seed=7, **kwargs)
    for k in range(3):  # advancing other epochs must not change epoch 3
        list(a.epoch(k))
    fresh = identity_batches(images, labels, seed=7, **kwargs)
    for (xa, ya), (xb, yb) in zip(a.epoch(3), fresh.epoch(3), strict=True):
        assert torch.equal(ya, yb) and torch.equal(xa, xb)
    assert not torch.equal(_epoch_labels(a, 3), _epoch_labels(a, 4))
    other_seed = identity_batches(images, labels, seed=8, **kwargs)
    assert not torch.equal(_epoch_labels(a, 3), _epoch_labels(other_seed, 3))


def test_global_rng_is_not_used() -> None:
    images, labels = indexed_images(100)
    batches = identity_batches(images, labels, batch_size=16, seed=0, crop_padding=2, flip=True)
    torch.manual_seed(0)
    first = [x for x, _ in batches.epoch(1)]
    torch.manual_seed(1)
    second = [x for x, _ in batches.epoch(1)]
    assert all(torch.equal(p, q) for p, q in zip(first, second, strict=True))


def hand_image() -> torch.Tensor:
    """One 1x4x4 image with distinct values 1..16 (0 is kept for the padding)."""
    return torch.arange(1, 17, dtype=torch.uint8).view(1, 1, 4, 4)


def shifted(image: torch.Tensor, dy: int, dx: int, pad: int) -> torch.Tensor:
    """The hand-computed crop: window at (dy, dx) of the zero-padded image."""
    h, w = image.shape[-2:]
    padded = torch.zeros(1, h + 2 * pad, w + 2 * pad, dtype=image.dtype)
    padded[:, pad : pad + h, pad : pad + w] = image[0]
    return padded[:, dy : dy + h, dx : dx + w]


def test_random_crop_is_a_shift_of_the_padded_image() -> None:
    pad = 2
    batch = hand_image().expand(256, 1, 4, 4).contiguous()
    out = random_crop(batch, pad, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.dtype == torch.uint8
    offsets = []
    for crop in out:
        matches = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(crop, shifted(hand_image()[0:1], dy, dx, pad))
        ]
        assert len(matches) == 1
        offsets.append(matches[0])
    # Per-image offsets: every one of the 25 windows shows up in 256 draws.
    assert len(set(offsets)) == (2 * pad + 1) ** 2
    # A concrete case by hand: window (0, 0) puts the original top-left pixel at (2, 2).
    expected = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 2], [0, 0, 5, 6]])
    assert torch.equal(shifted(hand_image(), 0, 0, pad)[0], expected.to(torch.uint8))


def test_random_flip_flips_about_half() -> None:
    batch = hand_image().expand(200, 1, 4, 4).contiguous()
    out = random_flip(batch, torch.Generator().manual_seed(0))
    flipped = torch.tensor([[4, 3, 2, 1], [8, 7, 6, 5], [12, 11, 10, 9], [16, 15, 14, 13]])
    is_flipped = [torch.equal(im[0], flipped.to(torch.uint8)) for im in out]
    is_same = [torch.equal(im, hand_image()[0]) for im in out]
    assert all(f != s for f, s in zip(is_flipped, is_same, strict=True))
    assert 60 < sum(is_flipped) < 140


@pytest.mark.parametrize("device", DEVICES)
def test_augmented_batches_keep_shape_and_content(device: str) -> None:
    images = hand_image().expand(64, 3, 4, 4).contiguous().to(device)
    labels = torch.zeros(64, dtype=torch.int64, device=device)
    batches = identity_batches(
        images, labels, batch_size=64, seed=0, crop_padding=1, flip=True, channels_last=True
    )
    (x, _), *_ = list(batches.epoch(0))
    assert x.shape == (64, 3, 4, 4)
    assert x.is_contiguous(memory_format=torch.channels_last)
    values = x.round().to(torch.uint8).cpu()
    # Each output is some crop of the image or of its mirror image, never anything else.
    candidates = [
        shifted(src, dy, dx, 1)
        for src in (hand_image()[0:1], hand_image()[0:1].flip(-1))
        for dy in range(3)
        for dx in range(3)
    ]
    for im in values:
        assert any(torch.equal(im[0:1], c) for c in candidates)
        assert torch.equal(im[0], im[1]) and torch.equal(im[0], im[2])  # channels move together
    assert len({tuple(im.flatten().tolist()) for im in values}) > 5


def test_normalize_against_hand_computation() -> None:
    images = torch.tensor([0, 51, 255, 102], dtype=torch.uint8).view(1, 1, 2, 2).repeat(1, 2, 1, 1)
    images[0, 1] = torch.tensor([[255, 0], [0, 255]], dtype=torch.uint8)
    out = normalize(images, mean=[0.2, 0.5], std=[0.5, 0.25])
    # channel 0: (v/255 - 0.2) / 0.5; channel 1: (v/255 - 0.5) / 0.25
    expected = torch.tensor([[[-0.4, 0.0], [1.6, 0.4]], [[2.0, -2.0], [-2.0, 2.0]]])
    assert out.dtype == torch.float32
    assert torch.allclose(out[0], expected, atol=1e-6)


def test_pixel_stats_against_hand_computation() -> None:
    images = torch.zeros(2, 2, 1, 2, dtype=torch.uint8)
    images[:, 0] = 255  # channel 0 all white: mean 1, std 0
    images[0, 1] = torch.tensor([[0, 255]], dtype=torch.uint8)
    images[1, 1] = torch.tensor([[0, 255]], dtype=torch.uint8)  # channel 1: half 0, half 1
    mean, std = pixel_stats(images)
    assert mean.dtype == torch.float32
    assert torch.allclose(mean, torch.tensor([1.0, 0.5]))
    assert torch.allclose(std, torch.tensor([0.0, 0.5]))


def test_pixel_stats_chunking_matches_direct_computation() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5000, 3, 4, 4), generator=gen, dtype=torch.uint8)
    mean, std = pixel_stats(images)
    x = images.double() / 255
    assert torch.allclose(mean.double(), x.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(std.double(), x.std(dim=(0, 2, 3), unbiased=False), atol=1e-6)


def test_eval_batches_in_order_with_short_last_batch() -> None:
    images, labels = indexed_images(10)
    out = list(eval_batches(images, labels, 4, mean=[0.0] * 3, std=[1 / 255] * 3))
    assert [y.numel() for _, y in out] == [4, 4, 2]
    assert torch.equal(torch.cat([y for _, y in out]), labels)
    assert torch.equal(torch.cat([x[:, 0, 0, 0] for x, _ in out]).round().long(), labels)


def test_rejects_mismatched_inputs() -> None:
    images, labels = indexed_images(10)
    with pytest.raises(ValueError, match="uint8"):
        identity_batches(images.float(), labels, batch_size=4, seed=0)
    with pytest.raises(ValueError, match="one label per image"):
        identity_batches(images, labels[:5], batch_size=4, seed=0)
