"""Timed throughput kept in ``runs/pricing/``, one file per device and torch version, so a
second dry run does not time the same workloads again."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from harness.errors import HarnessError
from harness.pricing.tables import Rate, ThroughputTable, load_table, table_json
from harness.pricing.workload import Workload


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())[:60]


def cache_path(runs_dir: Path, device_name: str) -> Path:
    import torch

    return Path(runs_dir) / "pricing" / f"throughput-{_slug(device_name)}-torch{torch.__version__}.json"


def read_cache(path: Path | None, name: str) -> dict[Workload, Rate]:
    if path is None or not path.is_file():
        return {}
    try:
        table = load_table(path, origin="cache")
    except HarnessError:
        return {}  # a stale or broken cache is re-timed, not an error
    return dict(table.rates) if table.device_name == name else {}


def write_cache(path: Path | None, device_type: str, name: str,
                 timed: Mapping[Workload, Rate]) -> None:
    if path is None or not timed:
        return
    import torch

    from harness.files import write_json_atomic

    merged = {**read_cache(path, name), **timed}
    table = ThroughputTable(device_type, name, merged, cpus=os.cpu_count() or 1,
                            torch=torch.__version__, date=time.strftime("%Y-%m-%d"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, table_json(table))
    except OSError:
        pass  # the cache only saves time
