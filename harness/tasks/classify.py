"""Classification: labels in, class logits out; accuracy, per-class accuracy, confusion.

The training split is the trial's (subset, long tail, label noise, input corruption: see
``harness.trial_data``); batches are cut on the device by ``DeviceBatches`` (crops,
flips, per-channel or per-image normalization as the config says). Options:

- ``train_eval``: score the whole (possibly corrupted) training split in eval mode after
  every epoch, with the same code as the test split: the *true* training accuracy
  (``true_train_acc``), not the running mean over augmented batches (``train_acc``);
- ``stop_at_train_acc``: end the trial with status ``fitted`` once the true training
  accuracy reaches this value (turns ``train_eval`` on), so a random-label run stops when
  it has memorized its labels instead of training on;
- ``logit_adjust_tau``: post-hoc logit adjustment (Menon et al., ICLR 2021, Sec. 4.1): the
  test split is scored on ``logits - tau * log(prior)``, with the prior from the trial's
  training class counts, so a model trained with plain CE predicts as if trained for the
  balanced error. 0 (the default) scores the logits as they are;
- ``tta``: test-time augmentation (airbench94's tta_level) of the last epoch's test
  score: 0 none, 1 the mean of the image's and its mirror's logits, 2 that half-and-half
  with the mean over two one-pixel translations (up-left, down-right of a reflect-padded
  copy), each with its mirror: 6 views weighted 1/4, 1/4 and 1/8 x 4. As in airbench,
  earlier epochs are scored plain (so every trial's curve compares at every epoch, and a
  CPU run does not pay 6 test passes per epoch); the last epoch reports the TTA score as
  ``test_acc``/``test_loss`` and the plain one as ``test_acc_plain``/``test_loss_plain``.

With a validation split (``val_size``) every epoch also scores it, plain (no TTA, no
logit adjustment: what a stage chooses on is the model as trained): ``val_acc``,
``val_loss``.

Before training, ``prepare_model`` hands a model with an ``init_from_data(images)`` hook
(fastnet's whitening stem) up to ``WHITEN_SAMPLE`` normalized training images, drawn
from the trial's seed (the JPEG copy is stored class by class, so not the first ones).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.data import DeviceBatches, eval_batches, pixel_stats
from harness.losses import LossFunction, create_loss, log_prior
from harness.task_kinds.classify import ClassifyKind
from harness.tasks.base import Autocast, Evaluation, Meter, Task, register_task
from harness.tasks.class_scores import score_classifier
from harness.trial_data import prepare_trial_data

# Time-to-fit thresholds on the true training accuracy (Zhang et al. report 100%).
FIT_THRESHOLDS = (1.0, 0.99)
WHITEN_SAMPLE = 5000  # training images a data-dependent init sees (airbench: 5,000)


def mirror_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # Averaged in float32: bf16 logits (autocast) would round the mean to 8 bits.
    return 0.5 * model(x).float() + 0.5 * model(x.flip(-1)).float()


def laid_out_like(view: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``view`` copied dense in ``x``'s memory format: a strided view would be a new
    input signature (a recompile under torch.compile) and a slower kernel."""
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return view.contiguous(memory_format=torch.channels_last if channels_last
                           else torch.contiguous_format)


def tta_logits(model: nn.Module, x: torch.Tensor, level: int) -> torch.Tensor:
    """airbench94's infer(): logits averaged over the test-time views of ``level``
    (in float32)."""
    if level == 0:
        return model(x)
    logits = mirror_logits(model, x)
    if level == 1:
        return logits
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = [laid_out_like(padded[..., 0:h, 0:w], x),
               laid_out_like(padded[..., 2 : h + 2, 2 : w + 2], x)]
    translated = torch.stack([mirror_logits(model, view) for view in shifted]).mean(0)
    return 0.5 * logits + 0.5 * translated


class TTAClassifier(nn.Module):
    """A classifier whose forward is ``tta_logits`` at a fixed level."""

    def __init__(self, model: nn.Module, level: int) -> None:
        super().__init__()
        self.model = model
        self.level = level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tta_logits(self.model, x, self.level)


class PosthocAdjusted(nn.Module):
    """A classifier whose logits are shifted by a fixed per-class offset at scoring time
    (post-hoc logit adjustment: ``offset = -tau * log(prior)``)."""

    def __init__(self, model: nn.Module, offset: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("offset", offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.offset.to(x.device)


class ClassificationMeter(Meter):
    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.seen = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        self.loss_sum += loss * targets.numel()
        self.correct += (outputs.argmax(dim=1) == targets).sum()
        self.seen += targets.numel()

    def result(self) -> dict[str, float]:
        return {
            "train_loss": self.loss_sum.item() / max(1, self.seen),
            "train_acc": self.correct.item() / max(1, self.seen),
        }

    @property
    def count(self) -> int:
        return self.seen


def fit_key(threshold: float) -> str:
    return f"{round(threshold * 100):d}"


@register_task(ClassifyKind)
class Classify(Task):
    def __init__(self, config: Any, dataset: Any, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        self.data = prepare_trial_data(dataset, config)
        self.num_outputs, self.in_shape = self.kind.model_io(
            config, dataset.image_shape, dataset.num_classes
        )
        self.stop_at_train_acc = self.options["stop_at_train_acc"]
        self.tta = self.options["tta"]
        self.logit_adjust_tau = self.options["logit_adjust_tau"]
        self.epoch = -1  # the epoch whose batches were cut last: evaluate() scores it
        self.train_eval = self.options["train_eval"] or self.stop_at_train_acc is not None
        self.channels_last = config.channels_last and device.type == "cuda"
        self.mean, self.std = pixel_stats(self.data.train.images)
        self.train_images = self.data.train.images.to(device)
        self.train_labels = self.data.train.labels.to(device)
        self.per_image = config.normalization == "per-image"
        self.train_batches = DeviceBatches(
            self.train_images, self.train_labels, config.batch_size, config.derived_seed(),
            self.mean, self.std, crop_padding=config.crop_padding, flip=config.flip,
            channels_last=self.channels_last, crop_size=config.crop_size,
            random_crop=config.random_crop, per_image=self.per_image,
            pad_mode=config.pad_mode, flip_mode=config.flip_mode, drop_last=config.drop_last,
        )
        self.test_images = self.data.test.images.to(device)
        self.test_labels = self.data.test.labels.to(device)
        val = self.data.val
        self.val_images = val.images.to(device) if val is not None else None
        self.val_labels = val.labels.to(device) if val is not None else None

    def __len__(self) -> int:
        return len(self.train_batches)

    def prepare_model(self, model: nn.Module) -> None:
        """Give a model with an ``init_from_data`` hook a seeded sample of normalized
        training images (what its batches look like, before augmentation)."""
        init = getattr(model, "init_from_data", None)
        if init is None:
            return
        count = self.train_images.shape[0]
        gen = torch.Generator().manual_seed(self.config.derived_seed())
        pick = torch.randperm(count, generator=gen)[:WHITEN_SAMPLE].sort().values
        batch = next(eval_batches(
            self.train_images[pick.to(self.device)], self.train_labels[pick.to(self.device)],
            len(pick), self.mean, self.std, self.channels_last, self.config.crop_size,
            self.per_image,
        ))
        init(batch[0])

    def create_loss(self) -> LossFunction:
        return create_loss(self.config.loss, self.data.class_counts, **self.config.loss_options)

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.epoch = epoch
        return self.train_batches.epoch(epoch)

    def meter(self) -> Meter:
        return ClassificationMeter(self.device)

    def _score(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
               autocast: Autocast, tta: int = 0):
        batches = eval_batches(
            images, labels, self.config.eval_batch_size, self.mean, self.std,
            self.channels_last, self.config.crop_size, self.per_image,
        )
        if tta:
            # The wrapper takes the model's mode, so scoring restores that mode, not train.
            model = TTAClassifier(model, tta).train(model.training)
        if self.logit_adjust_tau and images is self.test_images:
            offset = -self.logit_adjust_tau * log_prior(self.data.class_counts)
            model = PosthocAdjusted(model, offset).train(model.training)
        return score_classifier(model, batches, self.dataset.num_classes, autocast)

    def evaluate(self, model: torch.nn.Module, autocast: Autocast) -> Evaluation:
        test = self._score(model, self.test_images, self.test_labels, autocast)
        metrics = {"test_loss": test.loss, "test_acc": test.accuracy}
        if self.tta and self.epoch == self.config.epochs - 1:
            # The test split only: the true training accuracy measures fit as it is.
            metrics = {"test_loss_plain": test.loss, "test_acc_plain": test.accuracy}
            test = self._score(model, self.test_images, self.test_labels, autocast, self.tta)
            metrics = {"test_loss": test.loss, "test_acc": test.accuracy, **metrics}
        if self.val_images is not None:
            val = self._score(model, self.val_images, self.val_labels, autocast)
            metrics |= {"val_loss": val.loss, "val_acc": val.accuracy}
        if self.train_eval:
            # stop_at_train_acc ends a trial on this score: judged on float32 logits, not
            # on bf16 ones whose rounding flips near-tied predictions.
            exact = contextlib.nullcontext if self.stop_at_train_acc is not None else autocast
            train = self._score(model, self.train_images, self.train_labels, exact)
            metrics |= {"true_train_loss": train.loss, "true_train_acc": train.accuracy}
        extras = {
            "per_class_accuracy": test.per_class_accuracy,
            "confusion_matrix": test.confusion_matrix,
        }
        return Evaluation(metrics, extras)

    def stop_status(self, metrics: Mapping[str, float]) -> str | None:
        if self.stop_at_train_acc is None:
            return None
        return "fitted" if metrics["true_train_acc"] >= self.stop_at_train_acc else None

    def record_fields(self) -> dict[str, Any]:
        return {
            # Filled from the latest evaluation; None until the first epoch is scored.
            "per_class_accuracy": None,
            "confusion_matrix": None,
            "class_names": list(self.dataset.classes),
            "train_class_counts": self.data.class_counts,
            "data": {
                "train_size": len(self.data.train),
                "val_size": len(self.data.val) if self.data.val is not None else 0,
                "val_class_counts": self.data.val_class_counts(self.dataset.num_classes),
                "test_size": len(self.data.test),
                "label_noise_realized": self.data.label_noise_realized,
            },
        }

    def summarize(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """Time to fit: the first epoch (and optimizer step, counted at the epoch's end)
        whose true training accuracy reached each threshold; None if it never did."""
        if not self.train_eval:
            return {}
        steps = len(self)
        fit: dict[str, Any] = {}
        for threshold in FIT_THRESHOLDS:
            hit = next((h for h in history if h.get("true_train_acc", -1.0) >= threshold), None)
            key = fit_key(threshold)
            fit[f"epoch_{key}"] = hit["epoch"] if hit else None
            fit[f"step_{key}"] = hit["epoch"] * steps if hit else None
        return {"time_to_fit": fit}
