"""Run a study: validate everything, run its stages in order on Ray Tune, write results.

Layout (``runs/`` is scratch and git-ignored, ``results/`` is committed)::

    runs/ray/<study>-<profile>/<stage>/        Ray Tune experiment (trials, checkpoints)
    runs/ray/<study>-<profile>/<stage>.done.json   the stage finished; --resume skips it
    runs/ray/<study>-<profile>/plan.json       what was run, so --resume can't mix plans
    runs/records/<study>/<profile>/<stage>/    one JSON record per trial
    runs/mlflow.db                             MLflow store (see harness.tracking)
    results/<study>/<profile>/                 records.csv, tables, figures, records/

Every check that can fail (study, profile, ``--set`` keys, folders, the Ray address)
runs before any trial starts. Results are built in a temporary folder next to the target
and swapped in at the very end, so a failed run leaves earlier results as they were.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.files import write_json_atomic
from harness.space import VARIANT_KEY, Choice, Grid, is_domain, sample
from harness.study import Profile, Stage, Study, get_study

RECORDS_DIR = "records"
PLAN_FILE = "plan.json"
Printer = Callable[[str], None]


class TrialsFailed(HarnessError):
    """Some trials failed even after retries; their stage is not marked done."""

    exit_code = 4


@dataclass(frozen=True)
class RunOptions:
    study: str
    profile: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    gpus_per_trial: float | None = None  # None: each stage's own value
    ray_address: str | None = None  # None: $RAY_ADDRESS, else a local Ray
    resume: bool = False
    runs_dir: Path = Path("runs")
    results_dir: Path = Path("results")
    data_root: str | None = None
    tracking: bool = True  # log to MLflow


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


# ---------------------------------------------------------------------------- validation


MAX_VALIDATED_POINTS = 256


def sample_points(space: Mapping[str, Any], seed: int = 0) -> list[dict[str, Any]]:
    """Concrete points of a space for validation: every combination of its grid and choice
    values (so each model or variant meets the keys set beside it; capped), with ranges
    sampled once."""
    rng = random.Random(seed)
    base = {k: sample(v, rng) if is_domain(v) else v for k, v in space.items()}
    categorical = [(k, v.values) for k, v in space.items() if isinstance(v, Grid | Choice)]
    points = []
    for combo in itertools.islice(
        itertools.product(*(values for _, values in categorical)), MAX_VALIDATED_POINTS
    ):
        points.append(
            {**base, **{key: value for (key, _), value in zip(categorical, combo, strict=True)}}
        )
    return points


def apply_overrides(space: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """An override is a constant: it replaces the key's domain or value everywhere, which
    includes inside each variant (a variant's keys would otherwise win over the top level)."""
    if not overrides:
        return dict(space)
    result = {**space, **overrides}
    variant = space.get(VARIANT_KEY)
    if isinstance(variant, Grid | Choice):
        stripped = tuple(
            {k: v for k, v in dict(c).items() if k not in overrides} for c in variant.values
        )
        result[VARIANT_KEY] = type(variant)(stripped)
    return result


def validate_space(stage: Stage, space: Mapping[str, Any]) -> None:
    """Build the TrialConfig of the space's sample points: unknown keys and bad values fail
    here, before any trial starts."""
    from harness.tune import check_stage, split_trial_values

    check_stage(stage, space)
    for point in sample_points(space):
        try:
            split_trial_values(point)
        except ConfigError as error:
            raise ConfigError(f"stage {stage.name!r}: {error}") from None


def typed_overrides(profile: Profile, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``--set`` values against every static stage; return them with their types."""
    from harness.tune import FAULT_FAIL_ONCE_AT_EPOCH, FAULT_FAIL_WHILE_EXISTS, split_trial_values

    if not raw:
        return {}
    static = [s for s in profile.stages if not callable(s.space)]
    # Each static stage's sampled point with the overrides must be a valid TrialConfig.
    points = [
        (f"--set (stage {s.name!r})", point)
        for s in static
        for point in sample_points(apply_overrides(s.space, raw))
    ]
    points = points or [("--set", dict(raw))]
    typed: dict[str, Any] = {}
    for where, point in points:
        try:
            spec = split_trial_values(point)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        flat = spec.config.to_dict()
        for key in raw:
            own = {
                FAULT_FAIL_ONCE_AT_EPOCH: spec.fail_once_at_epoch,
                FAULT_FAIL_WHILE_EXISTS: spec.fail_while_exists,
            }
            typed[key] = own[key] if key in own else flat[key]
    return typed


def check_writable(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".harness-write-check-"):
            pass
    except OSError as error:
        raise HarnessError(
            f"cannot write the {what} folder {folder}: {error.strerror or error}"
        ) from None


@dataclass(frozen=True)
class RunPlan:
    study: Study
    profile: Profile
    overrides: dict[str, Any]
    options: RunOptions

    @property
    def state_dir(self) -> Path:
        return self.options.runs_dir / "ray" / f"{self.study.name}-{self.profile.name}"

    @property
    def records_dir(self) -> Path:
        return self.options.runs_dir / RECORDS_DIR / self.study.name / self.profile.name

    def fingerprint(self) -> dict[str, Any]:
        return {
            "study": self.study.name,
            "profile": self.profile.name,
            "overrides": {k: self.overrides[k] for k in sorted(self.overrides)},
            "stages": [s.name for s in self.profile.stages],
        }


def plan_run(options: RunOptions) -> RunPlan:
    """Every check that needs no Ray: names, overrides, stage settings, folders."""
    study = get_study(options.study)
    profile = study.profile(options.profile)
    overrides = typed_overrides(profile, options.overrides)
    for stage in profile.stages:
        if not callable(stage.space):  # a callable space is checked once earlier stages ran
            validate_space(stage, apply_overrides(stage.space, overrides))
    if options.gpus_per_trial is not None and options.gpus_per_trial < 0:
        raise ConfigError(f"--gpus-per-trial must be >= 0, got {options.gpus_per_trial}")
    if options.tracking and _missing("mlflow"):
        raise HarnessError(
            "MLflow is not installed: pip install 'harness[tune]', or pass --no-mlflow"
        )
    if _missing("ray"):
        raise HarnessError("Ray is not installed: pip install 'harness[tune]'")
    check_writable(options.runs_dir, "runs")
    check_writable(options.results_dir, "results")
    address = options.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        from harness.tune import check_ray_address

        check_ray_address(address)
    return RunPlan(study, profile, overrides, options)


def _missing(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return True


# ---------------------------------------------------------------------------- small file helpers


def done_marker(plan: RunPlan, stage: Stage) -> Path:
    return plan.state_dir / f"{stage.name}.done.json"


def _check_resumable(plan: RunPlan) -> None:
    path = plan.state_dir / PLAN_FILE
    if not path.exists():
        return
    before = json.loads(path.read_text())
    if before != json.loads(json.dumps(plan.fingerprint())):
        raise HarnessError(
            f"{plan.state_dir} holds a run with other settings "
            f"({before['overrides'] or 'no --set'}); resume with the same --set values, "
            "or run without --resume to start over"
        )


# ---------------------------------------------------------------------------- results


def copy_records(records: Sequence[Mapping[str, Any]], folder: Path) -> None:
    """records/<stage>/<record file>.json, the layout runs/records/ has too."""
    by_stage: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_stage.setdefault(str(record.get("stage") or "default"), []).append(dict(record))
    for stage, group in by_stage.items():
        _write_stage_records(group, folder / stage)


def write_results(
    study: Study, profile: str, records: list[dict[str, Any]], results_dir: Path
) -> Path:
    """Build results/<study>/<profile>/ in a temp folder, then swap it in whole."""
    from harness.report import write_outputs

    target = results_dir / study.name / profile
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{profile}-new-", dir=target.parent))
    try:
        write_outputs(records, study.summary(records, profile), staging)
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
    runs_dir: Path = Path("runs"),
    results_dir: Path = Path("results"),
    echo: Printer = print,
    from_results: bool = False,
) -> Path:
    """Rewrite results/<study>/<profile>/ from stored records, without training."""
    from harness.report import load_records

    study = get_study(study_name)
    study.profile(profile)
    source = records_source(study.name, profile, runs_dir, results_dir, from_results)
    records = sort_records(load_records(source), study.profile(profile))
    check_writable(results_dir, "results")
    echo(f"tables: {len(records)} records from {source}")
    return write_results(study, profile, records, results_dir)


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


# ---------------------------------------------------------------------------- running


def _stage_space(
    stage: Stage, earlier: list[dict[str, Any]], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    if callable(stage.space):
        # Later stages see only finished trials: a stopped or diverged one is not a candidate.
        space = dict(stage.space([r for r in earlier if r.get("status") == "completed"]))
    else:
        space = dict(stage.space)
    space = apply_overrides(space, overrides)
    validate_space(stage, space)
    return space


def _gpus(plan: RunPlan, stage: Stage) -> float:
    given = plan.options.gpus_per_trial
    return stage.gpus_per_trial if given is None else given


def _annotate(record: dict[str, Any], plan: RunPlan, stage: Stage, trial_id: str) -> dict[str, Any]:
    record.update(
        study=plan.study.name, profile=plan.profile.name, stage=stage.name, trial_id=trial_id
    )
    return record


def _run_stage(
    plan: RunPlan, stage: Stage, space: dict[str, Any], tracker: Any, echo: Printer
) -> list[dict[str, Any]]:
    from harness.tune import TrialOutcome, run_tuner

    # MLflow logging runs on one background thread, so Tune's loop in this process never
    # waits for it (a trial's artifacts take ~0.3 s, more than a small trial's epoch).
    live = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow") if tracker else None
    pending: list[Future] = []

    def log_live(outcome: TrialOutcome) -> None:
        assert outcome.record is not None and live is not None
        record = _annotate(outcome.record, plan, stage, outcome.trial_id)
        pending.append(live.submit(tracker.log_trial, record))

    try:
        outcomes = run_tuner(
            experiment_dir=(plan.state_dir / stage.name).resolve(),
            stage=stage,
            space=space,
            data_root=plan.options.data_root,
            gpus_per_trial=_gpus(plan, stage),
            restore=plan.options.resume,
            on_trial_done=log_live if live is not None else None,
        )
    finally:
        if live is not None:
            live.shutdown(wait=True)
    for future in pending:
        if future.exception() is not None:  # the reconciliation below logs the trial again
            print(f"harness: warning: live MLflow logging failed: {future.exception()}")
    records = [_annotate(o.record, plan, stage, o.trial_id) for o in outcomes if o.record]
    records = sort_records(records, plan.profile)
    folder = plan.records_dir / stage.name
    shutil.rmtree(folder, ignore_errors=True)  # a re-run stage replaces its records whole
    names = _write_stage_records(records, folder)
    failed = [o for o in outcomes if o.error]
    if failed:
        first = failed[0]
        raise TrialsFailed(
            f"stage {stage.name!r}: {len(failed)} of {len(outcomes)} trials failed after "
            f"retries (first: trial {first.trial_id}: {first.error[:300]}). "
            f"Details in {plan.state_dir / stage.name}. Fix the cause and run again with "
            "--resume: finished trials are kept, failed ones restart from their checkpoints."
        )
    if tracker is not None:
        tracker.sync_stage(records, plan.profile.name, stage.name)  # what live logging missed
    write_json_atomic(
        done_marker(plan, stage),
        {"stage": stage.name, "records": names, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")},
    )
    statuses = _status_counts(records)
    echo(f"stage {stage.name}: {len(records)} trials ({statuses})")
    return records


def _write_stage_records(records: Sequence[dict[str, Any]], folder: Path) -> list[str]:
    """Write a stage's records; returns their paths relative to ``folder``."""
    from harness.records import record_filename, write_record

    names: list[str] = []
    for record in records:
        # Two trials of one config and repeat (a searcher proposing a point twice) share a
        # file name: keep both, the second under its trial id.
        target = folder
        if str(Path(record_filename(record))) in names:
            target = folder / f"dup-{record['trial_id']}"
        names.append(str(write_record(record, target).relative_to(folder)))
    return names


def _status_counts(records: Sequence[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _load_done_stage(plan: RunPlan, stage: Stage) -> list[dict[str, Any]] | None:
    from harness.records import read_record

    marker = done_marker(plan, stage)
    if not marker.exists():
        return None
    names = json.loads(marker.read_text())["records"]
    folder = plan.records_dir / stage.name
    if not all((folder / name).exists() for name in names):
        return None  # records were removed by hand: run the stage again
    return [read_record(folder / name) for name in names]


def _open_store(plan: RunPlan) -> Future | None:
    """Open (on first use: create) the MLflow store on a thread while Ray starts."""
    if not plan.options.tracking:
        return None
    from harness.tracking import Tracker

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-open")
    future = pool.submit(Tracker.open, plan.options.runs_dir, plan.study.name)
    pool.shutdown(wait=False)  # the task runs on; result() waits for it
    return future


def _start_tracker(plan: RunPlan, store: Future | None) -> Any:
    if store is None:
        return None
    tracker = store.result()
    tracker.start_parent(plan.profile.name, plan.state_dir, plan.fingerprint())
    return tracker


def _finish(tracker: Any, error: BaseException | None) -> None:
    from harness.tune import StageInterrupted

    if tracker is None:
        return
    if error is None:
        tracker.finish("FINISHED")
    else:
        interrupted = isinstance(error, KeyboardInterrupt | StageInterrupted)
        tracker.finish("KILLED" if interrupted else "FAILED")


def run_study(options: RunOptions, echo: Printer = print) -> RunSummary:
    """Validate, then run every stage of the profile on Ray Tune, then write results."""
    from harness.tune import check_resources, ray_session

    started = time.perf_counter()
    plan = plan_run(options)
    if options.resume:
        _check_resumable(plan)
    records: list[dict[str, Any]] = []
    ran: list[str] = []
    skipped: list[str] = []
    tracker = None
    store = _open_store(plan)
    with ray_session(options.ray_address) as where:
        echo(f"running {plan.study.name}/{plan.profile.name} on {where}")
        for stage in plan.profile.stages:
            check_resources(stage, _gpus(plan, stage))
        if not options.resume:
            # A fresh run: forget an earlier run of this study/profile (runs/ is scratch).
            shutil.rmtree(plan.state_dir, ignore_errors=True)
            shutil.rmtree(plan.records_dir, ignore_errors=True)
        write_json_atomic(plan.state_dir / PLAN_FILE, plan.fingerprint())
        tracker = _start_tracker(plan, store)
        try:
            for stage in plan.profile.stages:
                done = _load_done_stage(plan, stage) if options.resume else None
                if done is not None:
                    echo(f"stage {stage.name}: done earlier, {len(done)} records kept (--resume)")
                    records += done
                    skipped.append(stage.name)
                    continue
                space = _stage_space(stage, records, plan.overrides)
                records += _run_stage(plan, stage, space, tracker, echo)
                ran.append(stage.name)
        except BaseException as error:
            _finish(tracker, error)
            raise
    try:
        out = write_results(plan.study, plan.profile.name, records, options.results_dir)
        if tracker is not None:
            tracker.log_results(out)
    except BaseException as error:
        _finish(tracker, error)
        raise
    _finish(tracker, None)
    return RunSummary(
        plan.study.name,
        plan.profile.name,
        records,
        out,
        ran,
        skipped,
        time.perf_counter() - started,
        tracker.uri if tracker else None,
    )
