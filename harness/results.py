"""results/<study>/<profile>/: tables, figures, records.csv and the raw records, built in a
temporary folder beside the target and swapped in whole, so a failed run or rebuild
leaves the earlier results as they were."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.files import write_json_atomic
from harness.layout import (
    RECORDS_DIR,
    RUN_FILE,
    resolve_results_dir,
    resolve_runs_dir,
    results_folder,
    results_records,
    runs_records,
)
from harness.plan import RunOptions, check_results_target, plan_run
from harness.records import finished
from harness.registration import read_registration
from harness.stage_records import new_folder, sort_records, write_stage_records
from harness.study import Study, get_study
from harness.write_errors import folder_size, is_file_system_error, write_failed

Printer = Callable[[str], None]

@dataclass
class RunSummary:
    study: str
    profile: str
    records: list[dict[str, Any]]
    results_dir: Path
    stages_run: list[str]
    stages_skipped: list[str]
    seconds: float
    tracking_uri: str | None = None


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


def copy_records(records: Sequence[Mapping[str, Any]], folder: Path) -> None:
    """records/<stage>/<record file>.json, the layout runs/records/ has too."""
    by_stage: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_stage.setdefault(str(record.get("stage") or "default"), []).append(record)
    for stage, group in by_stage.items():
        write_stage_records(group, folder / stage)


def run_study(options: RunOptions, echo: Printer = print) -> RunSummary:
    """Validate, then run every stage of the profile on Ray Tune (``harness.runner``),
    then write the results; one run at a time per runs folder, study and profile
    (``harness.run_lock``)."""
    from harness.run_lock import run_lock
    from harness.runner import running

    started = time.perf_counter()
    plan = plan_run(options)
    with run_lock(plan.runs_dir, plan.study.name, plan.profile.name, echo):
        if options.tracking:
            from harness.tracking import check_store

            check_store(plan.runs_dir)  # a corrupt store is refused before anything changes
        with running(plan, echo) as run:
            out = write_results(plan.study, plan.profile.name, run.records, plan.results_dir,
                                run={
                "study": plan.study.name, "profile": plan.profile.name,
                "overrides": plan.overrides, "where": run.where, "trials": len(run.records),
                "stages_run": run.ran, "stages_kept": run.skipped,
                "wall_seconds": round(time.perf_counter() - started, 1),
                "registration": read_registration(plan.state_dir),
            })
            if run.tracker is not None:
                run.tracker.log_results(out)
        if not finished(run.records):
            raise NoFinishedTrials(no_finished_message(plan.study.name, plan.profile.name,
                                                       run.records, out))
    return RunSummary(plan.study.name, plan.profile.name, run.records, out, run.ran,
                      run.skipped, time.perf_counter() - started,
                      run.tracker.uri if run.tracker else None)


def study_outputs(study: Study, records: list[dict[str, Any]], profile: str,
                  results_dir: Path) -> list[Any]:
    """The study's tables and figures and, below the paper profile, the ``deviations``
    table (``harness.report.deviations``): presentation built from the declaration."""
    from harness.report.deviations import deviations_table

    outputs = study.summarize(records, profile, results_dir)
    deviations = deviations_table(study, records, profile)
    return [*outputs, deviations] if deviations is not None else outputs


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

    target = results_folder(results_dir, study.name, profile)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = new_folder(target.parent, f".{profile}-new-")
    except OSError as error:
        if is_file_system_error(error):
            raise write_failed(error, target.parent, f"the results of {study.name}/{profile}",
                               then="the earlier results are kept") from None
        raise HarnessError(
            f"cannot write results into {target.parent}: {error.strerror or error}; fix its "
            "permissions and run `harness tables` to write them from the run's records"
        ) from None
    try:
        # Summaries tabulate finished trials; with none there is only records.csv to write.
        # A study that uses another's results reads them from this same results folder.
        outputs = study_outputs(study, records, profile, results_dir) if finished(records) else []
        write_outputs(records, outputs, staging)
        if run is not None:
            write_json_atomic(staging / RUN_FILE, dict(run))
        elif (target / RUN_FILE).is_file():
            shutil.copyfile(target / RUN_FILE, staging / RUN_FILE)
        # The raw records travel with the tables so `harness tables` rebuilds them anywhere.
        copy_records(records, staging / RECORDS_DIR)
    except OSError as error:
        written = folder_size(staging)
        shutil.rmtree(staging, ignore_errors=True)  # half built: nothing worth keeping
        if not is_file_system_error(error):
            raise
        kept = f"the earlier results in {target} are kept; " if target.exists() else ""
        raise write_failed(
            error, target.parent, f"the results of {study.name}/{profile}",
            needed=written or None, then=f"{kept}then run `harness tables {study.name} "
            f"--profile {profile}` to write them from the run's records",
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # half built: nothing worth keeping
        raise
    swap_in(staging, target)
    return target


def swap_in(staging: Path, target: Path) -> None:
    """Put the built ``staging`` folder in the place of ``target``, both in one folder.

    The earlier results step aside under a hidden name and are deleted only once the new
    ones are in place. A swap the file system refuses (an immutable folder, permissions)
    is one HarnessError that names the folder; the new results are never deleted then:
    they stay in a named folder beside the target (see ``keep_unswapped``)."""
    old = target.with_name(f".{target.name}-old-{os.getpid()}-{os.urandom(4).hex()}")
    stepped_aside = False
    try:
        if target.exists():
            os.replace(target, old)
            stepped_aside = True
        os.replace(staging, target)
    except OSError as error:
        earlier = ""
        if stepped_aside:
            try:
                os.replace(old, target)
            except OSError:
                earlier = f"; the earlier results are in {old}"
        kept = keep_unswapped(staging, target)
        raise HarnessError(
            f"cannot replace the results folder {target}: {error.strerror or error} "
            f"(immutable? see `lsattr -d`). The new results are kept in {kept}{earlier}; "
            f"fix the folder's permissions, then move them to {target} or rebuild them "
            f"with `harness tables {target.parent.name} --profile {target.name}`"
        ) from None
    if stepped_aside:
        shutil.rmtree(old, ignore_errors=True)


def keep_unswapped(staging: Path, target: Path) -> Path:
    """Give results that could not be swapped in a name that says what they are
    (``.<profile>-unswapped-<time>``); where even that rename is refused they stay in the
    staging folder. Returns where they are."""
    import time

    kept = target.with_name(f".{target.name}-unswapped-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.rename(staging, kept)  # refused over an earlier kept folder (not empty)
    except OSError:
        return staging
    return kept


def records_source(
    study: str, profile: str, runs_dir: Path, results_dir: Path, from_results: bool = False
) -> Path:
    """Where `harness tables` reads records: runs/ (the latest run) if it has any, else the
    copy committed in results/<study>/<profile>/records/ (always, with ``from_results``)."""
    candidates = [results_records(results_dir, study, profile)]
    if not from_results:
        candidates.insert(0, runs_records(runs_dir, study, profile))
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
