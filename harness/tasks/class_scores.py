"""Scoring a classifier on a split: loss, accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ClassScores:
    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class


@torch.no_grad()
def score_classifier(model: nn.Module, batches, num_classes: int, autocast) -> ClassScores:
    """Score already-normalized batches, in eval mode; the loss is plain cross-entropy for
    every trial, so test losses compare across training losses."""
    was_training = model.training
    model.eval()
    confusion = None
    loss_sum = 0.0
    count = 0
    for images, labels in batches:
        with autocast():
            logits = model(images)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        count += labels.numel()
        pairs = labels * num_classes + logits.argmax(dim=1)
        counts = torch.bincount(pairs, minlength=num_classes * num_classes)
        confusion = counts if confusion is None else confusion + counts
    model.train(was_training)
    matrix = confusion.view(num_classes, num_classes).cpu()
    support = matrix.sum(dim=1).clamp(min=1)
    per_class = (matrix.diag().double() / support.double()).tolist()
    return ClassScores(
        loss=loss_sum / max(1, count),
        accuracy=float(matrix.diag().sum().item() / max(1, count)),
        per_class_accuracy=per_class,
        confusion_matrix=matrix.tolist(),
    )
