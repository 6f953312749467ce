"""The classify kind: labels in, class logits out; scored by accuracy. Its options (what
they do is described with the training side, ``harness.tasks.classify``):
``train_eval``, ``stop_at_train_acc``, ``tta`` and ``logit_adjust_tau``."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import require
from harness.task_kinds.kind import TaskKind, register_task_kind

TTA_LEVELS = (0, 1, 2)


@register_task_kind("classify")
class ClassifyKind(TaskKind):
    output = "classes"
    metric = "test_acc"
    mode = "max"
    selection_metric = "val_acc"
    metrics = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
               "test_error", "test_loss_plain", "test_acc_plain", "true_train_loss",
               "true_train_acc")
    default_model = "mlp"
    default_loss = "ce"
    metric_order = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
                    "test_error")

    # The options (task.<name>): see harness.tasks.classify.
    train_eval: bool = False
    stop_at_train_acc: float | None = None
    tta: int = 0
    logit_adjust_tau: float = 0.0

    @classmethod
    def check(cls, config: Any) -> None:
        options = config.resolved_options("task")
        stop = options["stop_at_train_acc"]
        require(
            stop is None or (isinstance(stop, int | float) and 0 < stop <= 1),
            f"task.stop_at_train_acc must be in (0, 1] (or none), got {stop!r}",
        )
        require(math.isfinite(options["logit_adjust_tau"]) and options["logit_adjust_tau"] >= 0,
                f"task.logit_adjust_tau must be a number >= 0 (0 = off), got {options['logit_adjust_tau']!r}")
        tta = options["tta"]
        require(tta in TTA_LEVELS,
                f"task.tta must be 0 (none), 1 (mirror) or 2 (mirror + translate), got {tta!r}")

    @classmethod
    def model_io(
        cls, config: Any, image_shape: tuple[int, int, int], num_classes: int
    ) -> tuple[int, tuple[int, int, int]]:
        channels, height, width = image_shape
        crop = config.crop_size
        require(
            crop <= min(height, width),
            f"crop_size {crop} is larger than the {height}x{width} images of {config.dataset}",
        )
        return num_classes, (channels, crop, crop) if crop else image_shape

    @classmethod
    def finalize(cls, final: dict[str, Any]) -> dict[str, Any]:
        if "test_acc" in final:
            final["test_error"] = 1.0 - final["test_acc"]
        return final

    @classmethod
    def record_columns(cls, record: Mapping[str, Any]) -> dict[str, Any]:
        return {f"per_class.{i}": acc for i, acc in enumerate(record.get("per_class_accuracy") or [])}

    @classmethod
    def write_artifacts(cls, record: Mapping[str, Any], folder: Path) -> list[Path]:
        """per_class_accuracy.csv (with each class's training count) and
        confusion_matrix.csv (rows: true class, columns: predicted class)."""
        paths = []
        names = record.get("class_names") or []
        per_class = record.get("per_class_accuracy")
        if per_class:
            counts = record.get("train_class_counts") or []
            rows = [[i, names[i] if i < len(names) else i, accuracy,
                     counts[i] if i < len(counts) else None]
                    for i, accuracy in enumerate(per_class)]
            paths.append(_write_csv(folder / "per_class_accuracy.csv",
                                    ["class", "name", "test_accuracy", "train_count"], rows))
        matrix = record.get("confusion_matrix")
        if matrix:
            labels = [str(n) for n in names] or [str(i) for i in range(len(matrix))]
            rows = [[label, *row] for label, row in zip(labels, matrix, strict=False)]
            paths.append(_write_csv(folder / "confusion_matrix.csv", ["true \\ predicted", *labels],
                                    rows))
        return paths


def _write_csv(path: Path, header: list[Any], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
