"""A trial's outcome in words, for the MLflow runs table's ``outcome`` tag column.

The record's ``status`` says how a trial ended (completed, stopped, diverged, failed,
fitted), but "stopped" does not say who stopped it, and a trial that completed at chance
level reads like any other. The outcome says both: "stopped early by halving at epoch 1",
"diverged at epoch 3", "failed", "completed, at chance (test_acc 0.10)".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

HALVING_SCHEDULERS = ("asha", "synchronous-halving")  # harness.halving.scheduler_name's
# A classifier within a quarter of chance level (1/classes) has learned next to nothing:
# at 10 classes, an accuracy of 0.125 or less. A heuristic flag, not a test.
CHANCE_MARGIN = 1.25
CHANCE_METRICS = ("val_acc", "test_acc")  # the first one a record holds is judged


def last_epoch(record: Mapping[str, Any]) -> int | None:
    """The last epoch the trial's history reached (None without a history)."""
    epochs = [entry.get("epoch") for entry in record.get("history") or []]
    epochs = [epoch for epoch in epochs if isinstance(epoch, int)]
    return max(epochs) if epochs else None


def at_chance(record: Mapping[str, Any]) -> str | None:
    """"<metric> <value>" when a classifier's final accuracy is within CHANCE_MARGIN of
    chance (1/classes), else None (not a classifier, or no final accuracy)."""
    classes = len(record.get("class_names") or [])
    final = record.get("final") or {}
    if classes < 2:
        return None
    for metric in CHANCE_METRICS:
        value = final.get(metric)
        if isinstance(value, int | float) and math.isfinite(value):
            return f"{metric} {value:.2f}" if value <= CHANCE_MARGIN / classes else None
    return None


def trial_outcome(record: Mapping[str, Any]) -> str:
    """How the trial ended, in a few words."""
    status = str(record.get("status"))
    epoch = last_epoch(record)
    at = f" at epoch {epoch}" if epoch is not None else ""
    if status == "stopped":
        by = " by halving" if record.get("scheduler") in HALVING_SCHEDULERS else ""
        return f"stopped early{by}{at}"
    if status == "diverged":
        return f"diverged{at}"
    if status == "fitted":
        return f"fitted (reached its train-accuracy target){at}"
    if status in ("completed", "failed"):
        chance = at_chance(record) if status == "completed" else None
        return f"{status}, at chance ({chance})" if chance else status
    return status
