"""Throughput tables: images/s per ``Workload`` on one machine, their JSON file (what the
GPU suite writes and the dry run reads), and the H100 anchor used until a GPU suite ran."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.pricing.overheads import launch_bound_rate
from harness.pricing.workload import Workload, _frozen, macs_of

THROUGHPUT_SCHEMA = "harness-throughput/1"


@dataclass(frozen=True)
class Rate:
    images_per_second: float
    macs_per_image: int | None = None
    origin: str = "timed"  # "timed" here now, "cache" (runs/pricing), "file" (GPU suite)


@dataclass(frozen=True)
class ThroughputTable:
    device: str  # "cpu" | "cuda"
    device_name: str
    rates: Mapping[Workload, Rate]
    source: str = "timed on this machine"
    cpus: int = 1  # logical CPUs: how many CPU trials Ray runs at once
    torch: str = ""
    date: str = ""
    sharing: Mapping[str, Any] | None = None  # the GPU suite's trials-per-card figures

    def rate(self, workload: Workload, macs: int | None,
             forward_ops: int | None = None) -> tuple[float, bool] | None:
        """(images/s, scaled) for a workload: measured, else scaled by MACs per image
        from the median MAC throughput of the measured ones, else None. On a GPU a scaled
        rate is also held to the step's launch-bound floor (``forward_ops``: see
        harness.pricing.overheads)."""
        found = self.rate_detail(workload, macs, forward_ops)
        return None if found is None else (found[0], found[1] != "measured")

    def rate_detail(self, workload: Workload, macs: int | None,
                    forward_ops: int | None = None) -> tuple[float, str] | None:
        """(images/s, how): "measured" (timed, cached, a suite's file or the anchor itself),
        "MACs" (scaled by MACs per image), "launches" (a GPU step's launch floor binds) or
        "fastest" (capped at the fastest measured workload)."""
        if workload in self.rates:
            return self.rates[workload].images_per_second, "measured"
        anchors = [r.images_per_second * r.macs_per_image for r in self.rates.values()
                   if r.macs_per_image and r.images_per_second > 0]
        if not anchors or not macs:
            return None
        candidates = [(statistics.median(anchors) / macs, "MACs")]
        if self.device == "cuda":
            floor = launch_bound_rate(workload.batch_size, forward_ops)
            if floor is not None:
                candidates.append((floor, "launches"))
        # Small models are bound by per-step overheads, not MACs: never faster than the
        # fastest workload actually measured either.
        candidates.append((max(r.images_per_second for r in self.rates.values()), "fastest"))
        return min(candidates, key=lambda item: item[0])


def table_json(table: ThroughputTable, **extra: Any) -> dict[str, Any]:
    return {
        "schema": THROUGHPUT_SCHEMA, "device": table.device, "device_name": table.device_name,
        "cpus": table.cpus, "torch": table.torch, "date": table.date,
        "method": "harness.pricing.time_workload: the engine on synthetic data, one warm-up "
                  "epoch then one timed epoch",
        "workloads": [{"workload": w.to_json(), "images_per_second": round(r.images_per_second, 2),
                       "macs_per_image": r.macs_per_image}
                      for w, r in sorted(table.rates.items(), key=lambda item: item[0].key())],
        **({"sharing": dict(table.sharing)} if table.sharing else {}),
        **extra,
    }


def load_table(path: Path, origin: str = "file") -> ThroughputTable:
    try:
        data = json.loads(Path(path).read_text())
        if data.get("schema") != THROUGHPUT_SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}, expected {THROUGHPUT_SCHEMA!r}")
        rates = {Workload.from_json(e["workload"]): Rate(float(e["images_per_second"]),
                                                         e.get("macs_per_image"), origin)
                 for e in data["workloads"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HarnessError(f"cannot read the throughput table {path}: {error}") from None
    return ThroughputTable(data["device"], data["device_name"], rates, str(path),
                           int(data.get("cpus", 1)), data.get("torch", ""), data.get("date", ""),
                           data.get("sharing"))


def find_gpu_table(results_dir: Path) -> Path | None:
    """The newest ``results/gpu/*/throughput.json`` a GPU suite wrote (by its date)."""
    found = []
    for path in sorted((Path(results_dir) / "gpu").glob("*/throughput.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("schema") == THROUGHPUT_SCHEMA and data.get("device") == "cuda":
            found.append((str(data.get("date", "")), str(path), path))
    return max(found)[2] if found else None


# The project's design notes (DESIGN.md, beside the issues, not in this checkout): "Measured
# on an H100 here, one airbench-style net at batch 512: ... the same net with its data
# resident on the GPU trained at 139k images/s". Until the GPU suite has run on a card, GPU
# time is estimated from this one figure, every other model scaled by its MACs per image and
# held to its launch-bound floor (harness.pricing.overheads).
ANCHOR_IMAGES_PER_SECOND = 139_000.0
ANCHOR_SOURCE = ("anchor, not measured by this project's code: an airbench-style net on an "
                 "H100 at 139,000 images/s (batch 512, data resident on the GPU; the "
                 "project's design notes, DESIGN.md), other models scaled by MACs per image "
                 "and held to their launch-bound floor")


def anchor_gpu_table() -> ThroughputTable:
    """A GPU throughput table holding only the H100 anchor (see ANCHOR_SOURCE)."""
    from harness.models import model_options

    options = tuple(sorted((k, _frozen(v)) for k, v in model_options("fastnet").items()))
    workload = Workload("classify", "fastnet", options, 512, (3, 32, 32), 10)
    rate = Rate(ANCHOR_IMAGES_PER_SECOND, macs_of(workload), origin="anchor")
    return ThroughputTable("cuda", "H100 (anchor)", {workload: rate}, source=ANCHOR_SOURCE,
                           torch="-", date="-")
