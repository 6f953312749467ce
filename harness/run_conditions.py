"""What a trial's numbers depend on beyond its config: the device kind, the precision,
deterministic kernels, torch.compile and where random draws were made (a record's
``environment``, written by ``harness.train``). Two trials of one config and seed agree
bit for bit only under the same conditions, so a table that pools trials run under
different ones must say so (``describe_conditions``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

CONDITION_KEYS = ("device_kind", "precision", "deterministic", "compiled", "random_draws")


def conditions(record: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The record's conditions, or None for a record made before they were recorded."""
    environment = record.get("environment") or {}
    if "device_kind" not in environment:
        return None
    return tuple(environment.get(key) for key in CONDITION_KEYS)


def _phrase(condition: tuple[Any, ...]) -> str:
    device, precision, deterministic, compiled, draws = condition
    return (f"{device}, {precision}, {'deterministic' if deterministic else 'nondeterministic'} "
            f"kernels, {'compiled' if compiled else 'eager'}, random draws on {draws}")


def describe_conditions(records: Iterable[Mapping[str, Any]]) -> str | None:
    """One phrase for the conditions of ``records`` ("cpu, float32, ..."), or, when they
    differ, "mixed: " and each one with its number of trials; None when no record says."""
    counts = Counter(c for c in map(conditions, records) if c is not None)
    if not counts:
        return None
    if len(counts) == 1:
        return _phrase(next(iter(counts)))
    parts = [f"{_phrase(c)} ({n} trials)" for c, n in sorted(counts.items(), key=str)]
    return "mixed, and pooled in the tables: " + "; ".join(parts)
