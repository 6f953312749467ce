"""A dataset's class counts, test size and image shape, without preparing any data:
CIFAR-10's are known, the embedded datasets load in a moment. The plan checks a
validation split against them; the pricing counts a trial's images from them."""

from __future__ import annotations

from dataclasses import dataclass

# Train-split class counts and test size of datasets too big to load for a dry run.
KNOWN_COUNTS: dict[str, tuple[tuple[int, ...], int]] = {"cifar10": ((5000,) * 10, 10000)}


@dataclass(frozen=True)
class DatasetCounts:
    train: tuple[int, ...]  # per class
    test: int
    image_shape: tuple[int, int, int]


_COUNTS: dict[tuple[str, str | None], DatasetCounts] = {}


def dataset_counts(name: str, data_root: str | None = None) -> DatasetCounts:
    """Class counts and shape of a dataset: from KNOWN_COUNTS (CIFAR-10 is not read for a
    dry run), else by loading it (the embedded datasets load in a moment)."""
    key = (name, data_root)
    if key not in _COUNTS:
        from harness.data import dataset_facts

        facts = dataset_facts(name)
        if name in KNOWN_COUNTS and facts.get("image_shape"):
            train, test = KNOWN_COUNTS[name]
            _COUNTS[key] = DatasetCounts(tuple(train), test, tuple(facts["image_shape"]))
        else:
            import torch

            from harness.data import load_dataset

            data = load_dataset(name, data_root)
            counts = torch.bincount(data.train.labels, minlength=data.num_classes).tolist()
            _COUNTS[key] = DatasetCounts(tuple(counts), len(data.test), data.image_shape)
    return _COUNTS[key]
