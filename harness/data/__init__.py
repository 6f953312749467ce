"""Datasets as uint8 tensors, seeded split transforms and on-device batching."""

from harness.data.batching import DeviceBatches, eval_batches, normalize, pixel_stats
from harness.data.cache import resolve_cache_dir
from harness.data.sources import (
    dataset_facts,
    list_datasets,
    load_dataset,
    register_dataset,
    resolve_data_root,
)
from harness.data.transforms import (
    corrupt_labels,
    long_tail_counts,
    long_tail_indices,
    subset_indices,
)
from harness.data.types import ImageDataset, ImageSplit

# Datasets registered outside sources.py: scikit-learn's sample photographs.
from harness.data import photos  # noqa: E402, F401  isort: skip

__all__ = [
    "DeviceBatches",
    "ImageDataset",
    "ImageSplit",
    "corrupt_labels",
    "dataset_facts",
    "eval_batches",
    "list_datasets",
    "load_dataset",
    "long_tail_counts",
    "long_tail_indices",
    "normalize",
    "pixel_stats",
    "register_dataset",
    "resolve_cache_dir",
    "resolve_data_root",
    "subset_indices",
]
