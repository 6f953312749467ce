"""results/<study>/<profile>/: tables, figures, records.csv and the raw records, built in a
temporary folder beside the target and swapped in whole, so a failed run or rebuild
leaves the earlier results as they were."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.files import write_json_atomic
from harness.plan import RECORDS_DIR, check_results_target, resolve_results_dir, resolve_runs_dir
from harness.records import finished
from harness.study import Profile, Study, get_study

Printer = Callable[[str], None]

# The results folder being written or reported, for a summary that cites another study's
# results of the same profile (the theory study cites the denoising study's measured gap).
_RESULTS_IN_USE: ContextVar[Path | None] = ContextVar("harness_results_dir", default=None)


def results_dir_in_use() -> Path:
    """The results folder of the write in progress; else the default one."""
    return _RESULTS_IN_USE.get() or resolve_results_dir(None)


@contextmanager
def using_results_dir(results_dir: Path) -> Iterator[None]:
    token = _RESULTS_IN_USE.set(results_dir)
    try:
        yield
    finally:
        _RESULTS_IN_USE.reset(token)


class NoFinishedTrials(HarnessError):
    """No trial of the run finished: there is nothing to tabulate."""

    exit_code = 5


def no_finished_message(study: str, profile: str, records: Sequence[Mapping[str, Any]],
                        target: Path) -> str:
    counts: dict[str, int] = {}
    for record in records:
        counts[str(record.get("status"))] = counts.get(str(record.get("status")), 0) + 1
    seen = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no trials"
    return (
        f"no trial of {study}/{profile} finished ({seen}), so there are no tables or "
        f"figures; {target} holds records.csv and the raw records. A diverged run usually "
        "means the learning rate is too high for the model (check --set lr=...)"
    )


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def _new_folder(parent: Path, prefix: str) -> Path:
    # mkdtemp makes owner-only folders; results are shared like any other folder here.
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    folder.chmod(_umask_mode())
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


def copy_records(records: Sequence[Mapping[str, Any]], folder: Path) -> None:
    """records/<stage>/<record file>.json, the layout runs/records/ has too."""
    by_stage: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_stage.setdefault(str(record.get("stage") or "default"), []).append(record)
    for stage, group in by_stage.items():
        write_stage_records(group, folder / stage)


RUN_FILE = "run.json"


def write_results(
    study: Study,
    profile: str,
    records: list[dict[str, Any]],
    results_dir: Path,
    run: Mapping[str, Any] | None = None,
) -> Path:
    """Build results/<study>/<profile>/ in a temp folder, then swap it in whole.

    ``run`` describes the run that made the records (its wall time, where it ran): written
    as run.json; a rebuild from records (``run=None``) keeps the run.json already there.
    """
    from harness.report import write_outputs

    target = results_dir / study.name / profile
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_folder(target.parent, f".{profile}-new-")
    try:
        # Summaries tabulate finished trials; with none there is only records.csv to write.
        with using_results_dir(results_dir):
            outputs = study.summary(records, profile) if finished(records) else []
        write_outputs(records, outputs, staging)
        if run is not None:
            write_json_atomic(staging / RUN_FILE, dict(run))
        elif (target / RUN_FILE).is_file():
            shutil.copyfile(target / RUN_FILE, staging / RUN_FILE)
        # The raw records travel with the tables so `harness tables` rebuilds them anywhere.
        copy_records(records, staging / RECORDS_DIR)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{profile}-old-", dir=target.parent))
            os.replace(target, old / profile)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def sort_records(records: list[dict[str, Any]], profile: Profile) -> list[dict[str, Any]]:
    order = {stage.name: i for i, stage in enumerate(profile.stages)}
    return sorted(
        records,
        key=lambda r: (
            order.get(r.get("stage"), len(order)),
            str(r.get("trial_id", "")),
            r.get("config_hash", ""),
        ),
    )


def records_source(
    study: str, profile: str, runs_dir: Path, results_dir: Path, from_results: bool = False
) -> Path:
    """Where `harness tables` reads records: runs/ (the latest run) if it has any, else the
    copy committed in results/<study>/<profile>/records/ (always, with ``from_results``)."""
    candidates = [results_dir / study / profile / RECORDS_DIR]
    if not from_results:
        candidates.insert(0, runs_dir / RECORDS_DIR / study / profile)
    for folder in candidates:
        if folder.is_dir() and any(folder.rglob("*.json")):
            return folder
    raise HarnessError(
        f"no records for {study}/{profile} in {' or '.join(str(c) for c in candidates)}; "
        f"run `harness run {study} --profile {profile}` first"
    )


def rebuild_tables(
    study_name: str,
    profile: str,
    runs_dir: Path | None = None,
    results_dir: Path | None = None,
    echo: Printer = print,
    from_results: bool = False,
) -> Path:
    """Rewrite results/<study>/<profile>/ from stored records, without training."""
    from harness.records import load_records

    study = get_study(study_name)
    study.profile(profile)
    runs_dir, results_dir = resolve_runs_dir(runs_dir), resolve_results_dir(results_dir)
    source = records_source(study.name, profile, runs_dir, results_dir, from_results)
    records = sort_records(load_records(source), study.profile(profile))
    check_results_target(results_dir, study.name, profile)
    echo(f"tables: {len(records)} records from {source}")
    target = write_results(study, profile, records, results_dir)
    if not finished(records):
        raise NoFinishedTrials(no_finished_message(study.name, profile, records, target))
    return target
