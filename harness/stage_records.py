"""The records a run writes as its trials finish: one JSON file per trial in
``runs/records/<study>/<profile>/<stage>/`` (``harness.layout``), replaced whole when a
stage runs again, and in the order the study's tables list them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.study import Profile


def umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def new_folder(parent: Path, prefix: str) -> Path:
    # mkdtemp makes owner-only folders; results are shared like any other folder here.
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    folder.chmod(umask_mode())
    return folder


def write_stage_records(records: Sequence[Mapping[str, Any]], folder: Path) -> list[str]:
    """Write a stage's records into ``folder``; returns their paths relative to it."""
    from harness.records import record_filename, write_record

    names: list[str] = []
    for record in records:
        # Two trials of one config and repeat (a searcher proposing a point twice) share a
        # file name: keep both, the second under its trial id.
        target = folder
        if str(Path(record_filename(record))) in names:
            target = folder / f"dup-{record['trial_id']}"
        names.append(str(write_record(dict(record), target).relative_to(folder)))
    return names


def replace_stage_records(records: Sequence[Mapping[str, Any]], folder: Path) -> list[str]:
    """Make ``folder`` hold exactly the stage's ``records`` (as write_stage_records names
    them). A file that already holds the same bytes is left as it is, mtime included (a
    resumed stage's kept trials), and other record files go; built beside the folder
    first, so a failed write leaves the folder as it was."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = new_folder(folder.parent, f".{folder.name}-new-")
    try:
        names = write_stage_records(records, staging)
        folder.mkdir(exist_ok=True)
        for name in names:
            new, old = staging / name, folder / name
            if old.is_file() and old.read_bytes() == new.read_bytes():
                continue
            old.parent.mkdir(parents=True, exist_ok=True)
            os.replace(new, old)
        wanted = {folder / name for name in names}
        for path in folder.rglob("*.json"):
            if path not in wanted:
                path.unlink()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names


def sort_records(records: list[dict[str, Any]], profile: Profile) -> list[dict[str, Any]]:
    order = {stage.name: i for i, stage in enumerate(profile.stages)}
    return sorted(
        records,
        key=lambda r: (
            order.get(r.get("stage"), len(order)),
            # A deterministic stage's draw order; Tune's trial ids start with a random
            # prefix per Tune run, so alone they would order rows differently each run.
            int(r.get("trial_index", -1)),
            str(r.get("trial_id", "")),
            r.get("config_hash", ""),
        ),
    )
