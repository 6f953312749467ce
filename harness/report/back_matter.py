"""The parts of the paper after the studies: the fastnet recipe check (a record of its own,
beside the external anchors it is compared with), the compute each study used, and the
references. Every number is read from a record or marked as external."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.report.references import REFERENCES
from harness.report.sections import Section, short_commit
from harness.report.tables import Table

RECIPE_CHECK_DIR = "fastnet_cpu"  # benchmarks/fastnet_cpu.py --out results/fastnet_cpu
# Measured outside this harness (airbench's own code), so marked as external wherever shown.
EXTERNAL_ANCHORS = (
    ("airbench94, canonical CIFAR-10 (external: Jordan 2024, airbench README)", "94.01"),
    ("airbench94, this JPEG copy (external: airbench's own code on an H100, outside this "
     "harness)", "90.61"),
)


@dataclass(frozen=True)
class BackMatter:
    title: str
    text: str
    table: Table | None = None
    items: tuple[str, ...] = field(default_factory=tuple)


def back_matter(sections: Sequence[Section], results_dir: Path) -> list[BackMatter]:
    parts = [recipe_check(results_dir), compute(sections)]
    parts.append(BackMatter(
        "References", "Published numbers shown beside ours are marked as published, with the "
        "data they were measured on; this list says where each comes from.",
        items=tuple(f"[{r.key}] {r.citation} Used here: {r.used}" for r in REFERENCES)))
    return [p for p in parts if p is not None]


def recipe_check(results_dir: Path) -> BackMatter | None:
    """airbench94's recipe run by this harness on all of CIFAR-10 (its record) beside the
    external anchors; None when the record is not there."""
    folder = results_dir / RECIPE_CHECK_DIR
    records = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not records:
        return None
    rows = []
    for path in records:
        record = json.loads(path.read_text())
        final, env, data = record["final"], record.get("environment") or {}, record.get("data") or {}
        rows.append({
            "run": f"fastnet, airbench94 recipe, this harness (record {RECIPE_CHECK_DIR}/{path.name})",
            "test accuracy (%)": f"{100 * final['test_acc']:.2f}",
            "without TTA (%)": f"{100 * final['test_acc_plain']:.2f}" if "test_acc_plain" in final else "—",
            "train / test images": f"{data.get('train_size', 0):,} / {data.get('test_size', 0):,}",
            "training (min)": f"{float(record.get('train_seconds') or 0) / 60:.0f}",
            "machine, commit": f"{env.get('device_name', '?')}, {short_commit(env.get('git_commit'))}",
        })
    for name, accuracy in EXTERNAL_ANCHORS:
        rows.append({"run": name, "test accuracy (%)": accuracy, "without TTA (%)": "—",
                     "train / test images": "50,000 / 10,000", "training (min)": "—",
                     "machine, commit": "external"})
    frame = pd.DataFrame(rows)
    table = Table(
        "recipe_check", frame,
        "airbench94's recipe (10 epochs at 0.99, TTA level 2) on all of CIFAR-10: this "
        "harness's run, one seed, beside the external figures it is checked against "
        "(marked external: measured outside this harness).",
        reference_rows=frozenset(range(len(records), len(rows))),
        column_widths={"run": 0.34, "machine, commit": 0.2},
    )
    return BackMatter(
        "Recipe check: fastnet on all of CIFAR-10",
        "Before the CPU profiles shrink it, the fastnet recipe was run once at full size "
        "with `python benchmarks/fastnet_cpu.py`, to check that this harness's fastnet "
        "reproduces airbench94 on the same data.", table)


def compute(sections: Sequence[Section]) -> BackMatter | None:
    rows = [{"study": s.study, **s.compute} for s in sections if s.ran and s.compute]
    if not rows:
        return None
    table = Table(
        "compute", pd.DataFrame(rows),
        "What each study's run used: trials, the run's wall time (run.json), the trials' own "
        "time summed (trials ran side by side), the machine and software, from the records.",
        column_widths={"machine": 0.2, "where": 0.18},
    )
    return BackMatter(
        "Compute", "The harness does not record what else ran on the machine; "
        "results/README.md says which runs shared it (with the test suite, for one), and "
        "that a re-run on another CPU repeats the configs and seeds but not every last digit "
        "(different convolution kernels).", table)
