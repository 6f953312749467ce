"""Trial records on disk: one JSON file per trial, written atomically, read and checked
by one reader (``read_record`` / ``load_records``) with one schema version."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import DataError
from harness.files import write_json_atomic

# Bump when a record's layout changes incompatibly; readers reject other versions.
RECORD_SCHEMA_VERSION = 1

PathLike = str | Path
# Statuses of trials that ran to their own end: all epochs, or a task's early stop
# ("fitted": a random-label run that reached 100% training accuracy). Tables use these;
# stopped (ASHA), diverged and failed trials are reported apart.
FINISHED_STATUSES = ("completed", "fitted")


def is_finished(record: Mapping[str, Any]) -> bool:
    """The one definition of a trial that ran to its own end (tables count only these)."""
    return record.get("status") in FINISHED_STATUSES


def finished(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if is_finished(r)]


def resolved_config(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A record's whole config, every model, loss and task option with its default: the
    record's own ``resolved_config``; for a training record written before records carried
    it, resolved again from its ``config`` (the defaults are the code's, so this needs no
    training); a record of another kind of trial (a theory check) keeps its ``config``."""
    if "resolved_config" in record:
        return record["resolved_config"]
    config = record["config"]
    if "model" not in config:  # not a training trial's config
        return config
    from harness.config import TrialConfig
    from harness.errors import ConfigError

    try:
        return TrialConfig.from_dict(config).resolved_dict()
    except ConfigError:  # a model or option since renamed: the config as it was written
        return config


def record_filename(record: Mapping[str, Any]) -> str:
    config = record["config"]
    name = "-".join(str(config[k]) for k in ("dataset", "model", "loss") if k in config)
    name = name or str(config.get("claim", "trial"))
    return f"{name}-{record['config_hash']}-r{config.get('repeat', 0)}.json"


def _json_safe(value: Any) -> Any:
    # JSON has no NaN or inf; a diverged trial's loss is written as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_record(record: Mapping[str, Any], out_dir: str | Path) -> Path:
    return write_json_atomic(Path(out_dir) / record_filename(record), _json_safe(dict(record)))


def annotate(record: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Add where a trial ran (study, stage, trial id, variant label, restore epoch) to its
    record; fields given as None are left out."""
    record.update({k: v for k, v in fields.items() if v is not None})
    return record


def check_record(record: Any, where: str) -> None:
    if not isinstance(record, Mapping):
        raise DataError(f"{where}: a trial record must be a JSON object")
    version = record.get("schema_version")
    if version != RECORD_SCHEMA_VERSION:
        raise DataError(
            f"{where}: schema_version {version!r} is not supported (expected {RECORD_SCHEMA_VERSION})"
        )
    if not isinstance(record.get("config"), Mapping) or "status" not in record:
        raise DataError(f"{where}: a trial record needs a 'config' object and a 'status'")


def read_record(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read trial record {path}: {exc}") from exc
    check_record(record, str(path))
    return record


def load_records(folder_or_files: PathLike | Iterable[PathLike]) -> list[dict[str, Any]]:
    """Read trial records from a folder (every ``*.json`` below it) or from a list of files.

    Files are read in sorted path order; a file that is not a trial record of this schema
    is an error naming that file, because silently skipping it would drop a trial from a
    table.
    """
    if isinstance(folder_or_files, str | Path):
        root = Path(folder_or_files)
        if root.is_dir():
            paths = sorted(root.rglob("*.json"))
            if not paths:
                raise DataError(f"no trial records (*.json) under {root}; run the study first")
        elif root.is_file():
            paths = [root]
        else:
            raise DataError(f"no such records folder or file: {root}")
    else:
        paths = sorted(Path(p) for p in folder_or_files)
    return [read_record(path) for path in paths]
