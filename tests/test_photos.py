"""The bundled-photos dataset: shapes, determinism, crops taken from china.jpg, hash."""

from __future__ import annotations

from pathlib import Path

import torch

import harness.data.photos  # noqa: F401
from harness.data import list_datasets, load_dataset
from harness.data.photos import CROP_COUNT, crop_offsets, photos_sha256, random_crops, sample_photos


def test_sample_photos_are_the_two_bundled_images() -> None:
    photos = sample_photos()
    assert sorted(photos) == ["china", "flower"]
    for image in photos.values():
        assert image.dtype == torch.uint8 and image.shape == (3, 427, 640)
    assert not torch.equal(photos["china"], photos["flower"])
    # Copies: a caller's edit does not leak into the cache.
    photos["china"].zero_()
    assert sample_photos()["china"].float().mean() > 10


def test_dataset_shapes_and_metadata(tmp_path: Path) -> None:
    assert "photos" in list_datasets()
    ds = load_dataset("photos", tmp_path / "unused")
    assert ds.name == "photos" and ds.source == "sklearn-sample-photos"
    assert ds.classes == ("photo",) and ds.num_classes == 1
    assert ds.train.images.shape == (CROP_COUNT, 3, 32, 32) and ds.train.images.dtype == torch.uint8
    assert ds.test.images.shape == (1, 3, 427, 640)
    assert torch.equal(ds.test.images[0], sample_photos()["flower"])
    assert torch.equal(ds.train.labels, torch.zeros(CROP_COUNT, dtype=torch.int64))
    assert torch.equal(ds.test.labels, torch.zeros(1, dtype=torch.int64))
    assert ds.image_shape == (3, 32, 32)


def test_dataset_is_deterministic(tmp_path: Path) -> None:
    a, b = load_dataset("photos", tmp_path), load_dataset("photos", tmp_path)
    assert torch.equal(a.train.images, b.train.images)
    assert a.sha256 == b.sha256 == photos_sha256()
    assert len(a.sha256) == 64
    # Crops are spread over the photo, not one window repeated.
    assert len({tuple(o) for o in crop_offsets(427, 640).tolist()}) > CROP_COUNT * 0.99


def test_crops_are_windows_of_china(tmp_path: Path) -> None:
    china = sample_photos()["china"]
    crops = load_dataset("photos", tmp_path).train.images
    offsets = crop_offsets(427, 640)
    for i in (0, 1, CROP_COUNT - 1):
        r, c = offsets[i].tolist()
        assert torch.equal(crops[i], china[:, r : r + 32, c : c + 32])
    # Without the offsets: search the photo for crop 7 (candidates where its top-left
    # pixel matches, then the whole window).
    crop = crops[7]
    top_left = (china[:, :-31, :-31] == crop[:, :1, :1]).all(dim=0)
    found = [
        (r, c)
        for r, c in top_left.nonzero().tolist()
        if torch.equal(china[:, r : r + 32, c : c + 32], crop)
    ]
    assert found and tuple(offsets[7].tolist()) in found


def test_random_crops_by_hand() -> None:
    image = torch.arange(2 * 6 * 7, dtype=torch.uint8).reshape(2, 6, 7)
    offsets = torch.tensor([[0, 0], [3, 4], [1, 2]])
    crops = random_crops(image, offsets, size=3)
    assert crops.shape == (3, 2, 3, 3)
    assert torch.equal(crops[1], image[:, 3:6, 4:7])
    assert torch.equal(crops[2], image[:, 1:4, 2:5])
    assert crop_offsets(6, 7, count=50, size=3).max(dim=0).values.tolist() <= [3, 4]
