"""Trial records on disk: one JSON file per trial, written atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from harness.files import write_json_atomic


def record_filename(record: dict[str, Any]) -> str:
    config = record["config"]
    return f"{config['dataset']}-{config['model']}-{config['loss']}-{record['config_hash']}-r{config['repeat']}.json"


def _json_safe(value: Any) -> Any:
    # JSON has no NaN or inf; a diverged trial's loss is written as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_record(record: dict[str, Any], out_dir: str | Path) -> Path:
    return write_json_atomic(Path(out_dir) / record_filename(record), _json_safe(record))


def read_record(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
