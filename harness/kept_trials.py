"""What a resumed stage keeps: the trials whose own record says they finished.

Tune's experiment snapshot is written every so often, so a run killed or stopped by a
signal can have trials that finished after the last snapshot, and ``Tuner.restore``
would train them again (at paper scale, hours). The harness writes each trial's record to
``runs/records/<study>/<profile>/<stage>/`` the moment Tune reports it finished, so on
``--resume`` those records decide: a trial of the restored experiment (or of one drawn
again) whose identity matches a kept record is not trained; it hands Tune that record as
its result straight away (``harness.trainable``), and the stage's records are the kept
ones, byte for byte.

A trial's identity is what its config means, not Tune's trial id (an experiment restored
from an older snapshot draws its late trials again under new ids): the config hash, the
repeat, the variant label and, in a deterministic stage, its place in the draw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import DataError

# Statuses a trial reaches by itself and keeps: training it again would change nothing.
# "failed" (and "running": cut short) trials run again, from their checkpoints.
KEPT_STATUSES = ("completed", "fitted", "diverged", "stopped")


def identity(config_hash: Any, repeat: Any, label: Any, trial_index: Any) -> str:
    return f"{config_hash}|r{repeat or 0}|{label or ''}|{'' if trial_index is None else trial_index}"


def record_identity(record: Mapping[str, Any]) -> str:
    return identity(record.get("config_hash"), (record.get("config") or {}).get("repeat"),
                    record.get("label"), record.get("trial_index"))


def spec_identity(spec: Any) -> str:
    """The identity of a trial about to run (a ``harness.expansion.TrialSpec``)."""
    return identity(spec.config.config_hash(), getattr(spec.config, "repeat", 0), spec.label,
                    spec.trial_index)


def load_kept(folder: Path) -> dict[str, dict[str, Any]]:
    """identity -> record, for every finished record in a stage's records folder. A file
    that is not a whole record (a crash mid-write leaves none: writes are atomic; one
    edited by hand may) is not kept: its trial runs again."""
    from harness.records import read_record

    kept: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return kept
    for path in sorted(folder.rglob("*.json")):
        if path.name.startswith("."):
            continue
        with contextlib.suppress(DataError):
            record = read_record(path)
            if record.get("status") in KEPT_STATUSES:
                kept[record_identity(record)] = record
    return kept
