"""results/<study>/<profile>/: tables, figures, records.csv and the raw records, built in a
temporary folder beside the target and swapped in whole, so a failed run or rebuild
leaves the earlier results as they were."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
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
from harness.plan import check_results_target
from harness.records import finished
from harness.study import Profile, Study, get_study
from harness.write_errors import folder_size, is_file_system_error, write_failed

Printer = Callable[[str], None]

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


def replace_stage_records(records: Sequence[Mapping[str, Any]], folder: Path) -> list[str]:
    """Make ``folder`` hold exactly the stage's ``records`` (as write_stage_records names
    them). A file that already holds the same bytes is left as it is, mtime included (a
    resumed stage's kept trials), and other record files go; built beside the folder
    first, so a failed write leaves the folder as it was."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_folder(folder.parent, f".{folder.name}-new-")
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


def copy_records(records: Sequence[Mapping[str, Any]], folder: Path) -> None:
    """records/<stage>/<record file>.json, the layout runs/records/ has too."""
    by_stage: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_stage.setdefault(str(record.get("stage") or "default"), []).append(record)
    for stage, group in by_stage.items():
        write_stage_records(group, folder / stage)


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
        staging = _new_folder(target.parent, f".{profile}-new-")
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
