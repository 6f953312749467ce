"""Images a trial trains on and scores per epoch, from a dataset's class counts: no data
is prepared for a dry run (CIFAR-10's counts are known; the embedded datasets load in a
moment), the arithmetic is ``harness.trial_data``'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.dataset_counts import KNOWN_COUNTS, DatasetCounts, dataset_counts

__all__ = ["KNOWN_COUNTS", "DatasetCounts", "EvalExtras", "dataset_counts", "eval_extras",
           "evaluated_images", "train_images"]


def train_images(config: Any, counts: DatasetCounts) -> int:
    """Training images per epoch after the subset (expected class shares) and long tail:
    ``harness.trial_data``'s count, which prepares them."""
    from harness.trial_data import expected_train_size

    return expected_train_size(counts.train, config)


def evaluated_images(config: Any, counts: DatasetCounts) -> int:
    """Images scored after every epoch: the test subset (or the whole split) and the
    validation split."""
    from harness.trial_data import test_size

    return test_size(counts.test, config) + config.val_size


# scikit-learn's two sample photographs (harness.data.photos), each 427 x 640: a denoising
# trial scores both whole after every epoch unless the dataset is the photos themselves.
PHOTO_PIXELS = 2 * 427 * 640
# Views TTA scores the test split with at the last epoch, per task.tta level
# (harness.tasks.classify.tta_logits): none, image + mirror, those and two translations' pairs.
TTA_VIEWS = {0: 0, 1: 2, 2: 6}


@dataclass(frozen=True)
class EvalExtras:
    """Evaluation beyond the test and validation splits, in images of the trial's shape."""

    train_eval: int = 0  # per epoch: the whole training split scored (train_eval, stop_at_...)
    tta: int = 0  # once, at the last epoch: the test split's extra TTA views
    photos: int = 0  # per epoch: the photographs, as pixel-equivalent training images


def eval_extras(config: Any, counts: DatasetCounts) -> EvalExtras:
    """What a trial scores besides its test and validation splits, from its task options."""
    from harness.trial_data import test_size

    try:
        options = config.resolved_options("task")
    except Exception:  # noqa: BLE001 - a task without options scores no extras
        options = dict(getattr(config, "task_options", {}) or {})
    train_eval = bool(options.get("train_eval")) or options.get("stop_at_train_acc") is not None
    views = TTA_VIEWS.get(int(options.get("tta") or 0), 0)
    photos = 0
    if options.get("eval_photos") and config.dataset != "photos":
        height, width = counts.image_shape[-2:]
        photos = PHOTO_PIXELS // max(1, height * width)
    return EvalExtras(train_images(config, counts) if train_eval else 0,
                      views * test_size(counts.test, config), photos)
