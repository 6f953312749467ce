"""A trial's outcome in words, for the MLflow runs table's ``outcome`` tag column.

The record's ``status`` says how a trial ended (completed, stopped, diverged, failed,
fitted), but "stopped" does not say who stopped it, and a trial that completed at chance
level reads like any other. The outcome says both: "stopped by halving", "diverged",
"failed", "at chance", "completed".
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
    """How the trial ended, in a word or three (a narrow table column: the epoch it
    stopped at is the last step of its metrics)."""
    status = str(record.get("status"))
    if status == "stopped":
        halving = record.get("scheduler") in HALVING_SCHEDULERS
        return "stopped by halving" if halving else "stopped early"
    if status == "fitted":
        return "fitted (train target)"
    if status == "completed" and at_chance(record):
        return "at chance"
    return status  # completed, diverged, failed
