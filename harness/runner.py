"""Run a study's stages: validated (``harness.plan``), in order, on Ray Tune; the caller
writes the results from their records (``harness.results.run_study``).

Layout (``runs/`` is scratch and git-ignored, ``results/`` is committed)::

    runs/ray/<study>-<profile>/<stage>/            Ray Tune experiment (trials, checkpoints)
    runs/ray/<study>-<profile>/<stage>.start.json  the stage's fingerprint when it started
    runs/ray/<study>-<profile>/<stage>.done.json   the stage finished; --resume skips it
    runs/ray/<study>-<profile>/plan.json           study, profile and --set of the run
    runs/records/<study>/<profile>/<stage>/        one JSON record per trial
    runs/mlflow.db                                 MLflow store (see harness.tracking)
    results/<study>/<profile>/                     records.csv, tables, figures, records/

With ``--storage`` the Tune experiments live there instead (a folder or URI that every
node of a cluster reaches); the markers stay in runs/.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.expansion import stage_space
from harness.files import write_json_atomic
from harness.kept_trials import load_kept, record_identity
from harness.plan import (
    PLAN_FILE,
    PlanChanged,
    RunOptions,
    RunPlan,
    check_stage_unchanged,
    done_marker,
    load_done_stage,
    stage_definition,
    stage_fingerprint,
    start_marker,
)
from harness.records import annotate, finished
from harness.registration import mark_first_trial
from harness.registration import register as register_claims
from harness.stage_records import replace_stage_records, sort_records, write_stage_records
from harness.study import Stage
from harness.termination import at_deadline
from harness.write_errors import is_file_system_error, write_failed

Printer = Callable[[str], None]

__all__ = ["PlanChanged", "RunOptions", "StagesRun", "TrialsFailed", "running"]


class TrialsFailed(HarnessError):
    """Some trials failed even after retries; their stage is not marked done."""

    exit_code = 4


# ---------------------------------------------------------------------------- stage state


def _forget_all(plan: RunPlan) -> None:
    """A fresh run: forget an earlier run of this study/profile (runs/ is scratch, and so
    is its Tune state in --storage)."""
    shutil.rmtree(plan.state_dir, ignore_errors=True)
    shutil.rmtree(plan.records_dir, ignore_errors=True)
    if plan.options.storage:
        remove_experiment(plan.storage_dir)


def _forget_from(plan: RunPlan, first: Stage) -> None:
    """--rerun: drop this stage's state and every later stage's."""
    names = [s.name for s in plan.profile.stages]
    for stage in plan.profile.stages[names.index(first.name):]:
        for path in (done_marker(plan, stage), start_marker(plan, stage)):
            path.unlink(missing_ok=True)
        shutil.rmtree(plan.state_dir / stage.name, ignore_errors=True)
        shutil.rmtree(plan.records_dir / stage.name, ignore_errors=True)
        if plan.options.storage:  # else the Tune experiment was in state_dir, gone above
            remove_experiment(f"{plan.storage_dir}/{stage.name}")


def remove_experiment(location: str) -> None:
    """Delete Tune state at ``location`` (a folder or a URI); a missing one is fine. With
    --storage, Tune's experiments live outside runs/, and a stage left there would be
    restored (its old trials returned) instead of run again."""
    if "://" not in location:
        shutil.rmtree(location, ignore_errors=True)
        return
    import pyarrow.fs

    filesystem, path = pyarrow.fs.FileSystem.from_uri(location)
    if filesystem.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        filesystem.delete_dir(path)


# ---------------------------------------------------------------------------- running


def _resources(plan: RunPlan, stage: Stage, cluster_gpus: float | None = None) -> dict[str, float]:
    from harness import placement

    cluster = placement.cluster_gpus() if cluster_gpus is None else cluster_gpus
    gpus = placement.gpus_per_trial(stage, plan.options.gpus_per_trial,
                                    placement.stage_device(stage, plan.overrides), cluster)
    return {"cpu": stage.cpus_per_trial, "gpu": gpus, **plan.options.trial_resources}


def _run_stage(
    plan: RunPlan, stage: Stage, space: dict[str, Any], tracker: Any, echo: Printer
) -> list[dict[str, Any]]:
    from harness.tune import TrialOutcome, run_tuner

    # MLflow logging runs on one background thread, so Tune's loop in this process never
    # waits for it (a trial's artifacts take ~0.3 s, more than a small trial's epoch).
    live = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow") if tracker else None
    pending: list[Future] = []
    if tracker is not None:
        from harness.trials import stage_metric

        # How `harness ui` sorts: one view per stage (harness.ui_views).
        tracker.set_stage_metric(plan.profile.name, stage.name, *stage_metric(stage, space))

    folder = plan.records_dir / stage.name
    # --resume: trials whose record says they finished are not trained again.
    kept = load_kept(folder) if plan.options.resume else {}
    if kept:
        echo(f"stage {stage.name}: {len(kept)} finished trials kept from their records")

    def where(record: dict[str, Any], trial_id: str) -> dict[str, Any]:
        if record_identity(record) in kept:  # as it was: same trial id, same bytes
            return dict(kept[record_identity(record)])
        return annotate(record, study=plan.study.name, profile=plan.profile.name,
                        stage=stage.name, trial_id=trial_id)

    def on_done(outcome: TrialOutcome) -> None:
        # The trial's record as soon as it finished: what a --resume keeps (kept_trials).
        assert outcome.record is not None
        if record_identity(outcome.record) in kept:
            return  # written and logged when it finished the first time
        record = where(outcome.record, outcome.trial_id)
        try:
            write_stage_records([record], folder)
        except OSError as error:
            if not is_file_system_error(error):
                raise
            print(f"harness: warning: {write_failed(error, folder, 'a trial record')}")
        if live is not None:
            pending.append(live.submit(tracker.log_trial, record))

    try:
        outcomes = run_tuner(
            storage_path=plan.storage_dir,
            name=stage.name,
            stage=stage,
            space=space,
            data_root=plan.options.data_root,
            resources=_resources(plan, stage),
            restore=plan.options.resume,
            on_trial_done=on_done,
            study=plan.options.study,
            kept=kept,
        )
    finally:
        if live is not None:
            live.shutdown(wait=True)
    for future in pending:
        if future.exception() is not None:  # the reconciliation below logs the trial again
            print(f"harness: warning: live MLflow logging failed: {future.exception()}")
    records = [where(o.record, o.trial_id) for o in outcomes if o.record]
    records = sort_records(records, plan.profile)
    try:
        names = replace_stage_records(records, folder)  # a re-run stage's replace it whole
    except OSError as error:
        if not is_file_system_error(error):
            raise
        raise write_failed(error, folder, f"the records of stage {stage.name}",
                           then="the Tune state is kept: run again with --resume") from None
    failed = [o for o in outcomes if o.error]
    if failed:
        first = failed[0]
        raise TrialsFailed(
            f"stage {stage.name!r}: {len(failed)} of {len(outcomes)} trials failed after "
            f"retries (first: trial {first.trial_id}: {first.error[:300]}). "
            f"Details in {plan.storage_dir}/{stage.name}. Fix the cause and run again with "
            "--resume: finished trials are kept, failed ones restart from their checkpoints."
        )
    if tracker is not None:
        tracker.sync_stage(records, plan.profile.name, stage.name)  # what live logging missed
    write_json_atomic(
        done_marker(plan, stage),
        {"stage": stage.name, "records": names, "fingerprint": stage_fingerprint(stage, space),
         "finished": time.strftime("%Y-%m-%dT%H:%M:%S")},
    )
    echo(f"stage {stage.name}: {len(records)} trials ({_status_counts(records)})")
    return records


def _status_counts(records: Sequence[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


@contextlib.contextmanager
def _parent_run_status(tracker: Any) -> Iterator[None]:
    """The MLflow parent run ends FINISHED when the block does, KILLED when it was
    interrupted (Ctrl-C, a signal, an interrupted stage) and FAILED otherwise."""
    from harness.tune import StageInterrupted

    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except (KeyboardInterrupt, StageInterrupted):
        status = "KILLED"
        raise
    finally:
        if tracker is not None:
            tracker.finish(status)


@dataclass
class StagesRun:
    """A run's stages, done: what the results are written from."""

    plan: RunPlan
    records: list[dict[str, Any]]
    ran: list[str]
    skipped: list[str]
    where: str  # where the trials ran (a local Ray, a cluster's address)
    tracker: Any  # the MLflow tracker, or None


@contextlib.contextmanager
def running(plan: RunPlan, echo: Printer = print) -> Iterator[StagesRun]:
    """Run every stage of the plan on Ray Tune, then hand the caller the records: its
    block writes the results while the MLflow parent run is still open, whose status
    (finished, failed, killed) covers that block too."""
    from harness.placement import cluster_gpus, where_trials_run
    from harness.ray_leftovers import end_leftovers
    from harness.ray_session import check_resources, ray_session

    options = plan.options
    echo(f"runs: {plan.runs_dir}  results: {plan.results_dir}"
         + (f"  Tune storage: {plan.storage_dir}" if options.storage else ""))
    records: list[dict[str, Any]] = []
    ran: list[str] = []
    skipped: list[str] = []
    tracker = None
    leftovers = end_leftovers(plan.runs_dir)  # of a local Ray a killed run started
    if leftovers:
        echo(leftovers)
    # The parent run's status covers the stages and the results written after them.
    with contextlib.ExitStack() as finishing:
        with ray_session(options.ray_address, record_in=plan.runs_dir) as where:
            echo(f"running {plan.study.name}/{plan.profile.name} on {where}")
            for stage in plan.profile.stages:
                resources = _resources(plan, stage)
                custom = {k: v for k, v in resources.items() if k not in ("cpu", "gpu")}
                check_resources(stage, resources["gpu"], custom)
                echo(where_trials_run(stage, resources["gpu"], cluster_gpus()))
            # Every check has passed (Ray's token handshake included): only from here on does
            # the run create anything, the MLflow store too.
            if options.tracking:  # the store is a check too: nothing is removed before it
                from harness.tracking import Tracker

                tracker = Tracker.open(plan.runs_dir, plan.study.name)
            if not options.resume:
                _forget_all(plan)
            elif options.rerun:
                _forget_from(plan, plan.profile.stages[[s.name for s in plan.profile.stages]
                                                       .index(options.rerun)])
            write_json_atomic(plan.state_dir / PLAN_FILE, plan.fingerprint())
            # The claims and their hash, before any trial: a verdict is judged only under the
            # claims its records were run with (harness.registration).
            register_claims(plan.study, plan.profile.name, plan.state_dir, options.resume)
            if tracker is not None:
                tracker.start_parent(plan.profile.name, plan.state_dir, plan.fingerprint())
                finishing.enter_context(_parent_run_status(tracker))
            with contextlib.ExitStack() as deadline:
                if tracker is not None:  # a signal's grace period over: the parent run says KILLED
                    deadline.enter_context(at_deadline(lambda: tracker.finish("KILLED")))
                for stage in plan.profile.stages:
                    # Later stages see only finished trials: a stopped or diverged one is not
                    # a candidate.
                    space = stage_space(stage, plan.overrides, finished(records))
                    fingerprint = stage_fingerprint(stage, space)
                    if options.resume:
                        # plan_run checked the stages it could; this one's space came from
                        # records made only now (an earlier stage ran again).
                        check_stage_unchanged(plan, stage, space)
                    done = load_done_stage(plan, stage) if options.resume else None
                    if done is not None:
                        echo(f"stage {stage.name}: done earlier, {len(done)} records kept (--resume)")
                        if tracker is not None:  # a store made afresh gets the kept trials too
                            tracker.sync_stage(done, plan.profile.name, stage.name)
                        records += done
                        skipped.append(stage.name)
                        continue
                    write_json_atomic(start_marker(plan, stage),
                                      {"stage": stage.name, "fingerprint": fingerprint,
                                       "definition": stage_definition(stage, space)})
                    mark_first_trial(plan.state_dir)
                    records += _run_stage(plan, stage, space, tracker, echo)
                    ran.append(stage.name)
        yield StagesRun(plan, records, ran, skipped, where, tracker)
