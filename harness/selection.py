"""Choosing among trials on the validation split, never the test split.

A stage whose space is built from earlier records (re-run the top five of a search, carry
the best class-balanced setting) ranks those records here: by their task's selection metric
(``val_acc``, ``val_psnr``), which a trial reports when it holds out a validation split
(``val_size``). A record without it cannot be chosen on, and says which stage to give one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from harness.errors import ConfigError


def selection_metric(record: Mapping[str, Any]) -> tuple[str, str]:
    """(metric, mode) the record's task chooses on: its validation metric and direction."""
    from harness.tasks import record_task

    task = record_task(record)
    if task is None or not task.selection_metric:
        raise ConfigError(
            f"a record of stage {record.get('stage')!r} comes from a trial that scores no "
            "validation split, so it cannot be chosen on"
        )
    return task.selection_metric, task.mode


def selection_score(record: Mapping[str, Any]) -> float:
    """The record's final validation metric, signed so that higher is better."""
    metric, mode = selection_metric(record)
    value = (record.get("final") or {}).get(metric)
    if value is None or not math.isfinite(float(value)):
        raise ConfigError(
            f"trial {record.get('trial_id')!r} of stage {record.get('stage')!r} has no final "
            f"{metric}: that stage held out no validation split, and a choice among its "
            "trials needs one (set val_size in its space); the test split is never chosen on"
        )
    return float(value) if mode == "max" else -float(value)


def best_first(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Records from best to worst validation score; equal scores by config hash, so the
    order is a function of the records alone."""
    return sorted(records, key=lambda r: (-selection_score(r), str(r.get("config_hash"))))


def mean_selection_score(records: Iterable[Mapping[str, Any]]) -> float:
    """The mean validation score (higher is better) of one setting's seeds."""
    scores = [selection_score(r) for r in records]
    if not scores:
        raise ConfigError("no records to average a validation score over")
    return sum(scores) / len(scores)
