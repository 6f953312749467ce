"""Each study's per-stage table for the paper, read from its records: how many trials and
seeds each stage ran, its recipe (epochs, batch, optimizer, learning rates, schedule) and
the data it trained, chose and was scored on (train / validation / test images), so the
setup says what each stage did rather than one line for the whole study."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.report.tables import Table

MAX_LISTED = 3  # more distinct values than this read as a range


def stage_frame(records: Sequence[Mapping[str, Any]], order: Sequence[str] = ()) -> pd.DataFrame:
    """One row per stage: those in ``order`` (the profile's) first, in it, then any other
    in the order the records first name them."""
    stages: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        if "model" in (record.get("config") or {}):
            stages.setdefault(str(record.get("stage")), []).append(record)
    rows = []
    ranked = sorted(stages, key=lambda s: (order.index(s) if s in order else len(order),
                                           list(stages).index(s)))
    for stage in ranked:
        group = stages[stage]
        configs = [r["config"] for r in group]
        data = [r.get("data") or {} for r in group]
        finished = sum(r.get("status") in ("completed", "fitted") for r in group)
        rows.append({
            "stage": stage,
            "trials": f"{len(group)} ({finished} to the end)" if finished != len(group) else str(len(group)),
            "seeds per config": _listed(sorted({_seeds_per_config(group)})),
            "epochs": _listed(sorted({c.get("epochs") for c in configs})),
            "batch": _listed(sorted({c.get("batch_size") for c in configs})),
            "optimizer": _listed(sorted({str(c.get("optimizer", "sgd")) for c in configs})),
            "lr": _listed(sorted({float(c.get("lr", 0)) for c in configs})),
            "schedule": _listed(sorted({str(c.get("schedule", "cosine")) for c in configs})),
            "train / val / test images": _sizes(data),
        })
    return pd.DataFrame(rows)


def stages_table(records: Sequence[Mapping[str, Any]], caption_data: str,
                 order: Sequence[str] = ()) -> Table:
    return Table(
        "stages", stage_frame(records, order),
        f"What each stage ran on {caption_data}, read from its records: trials (those "
        "stopped early by successive halving included), seeds per configuration, recipe, and "
        "the images each trial trained on, chose on (validation: held out of the training "
        "split; 0 when the stage chose nothing) and was scored on (test).",
    )


def _seeds_per_config(group: Sequence[Mapping[str, Any]]) -> int:
    per_config: dict[str, int] = {}
    for record in group:
        key = str(record.get("config_hash"))
        per_config[key] = per_config.get(key, 0) + 1
    return max(per_config.values())


def _sizes(data: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for key in ("train_size", "val_size", "test_size"):
        values = sorted({int(d.get(key) or 0) for d in data})
        parts.append(_listed(values, integers=True))
    return " / ".join(parts)


def _listed(values: Sequence[Any], integers: bool = False) -> str:
    def text(value: Any) -> str:
        if integers or (isinstance(value, int) and not isinstance(value, bool)):
            return f"{int(value):,}"
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value)

    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) <= MAX_LISTED:
        return ", ".join(text(v) for v in values)
    return f"{text(values[0])} to {text(values[-1])} ({len(values)} values)"
