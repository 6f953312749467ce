"""Ray Tune glue: one study stage becomes one Tuner; one trial is one call of its kind's
run function (``harness.train.train`` for training trials).

Ray is imported inside the functions that need it, so ``import harness.tune`` works on a
machine without Ray. What a trial config means (``harness.trials``) and the connection
(``harness.ray_session``) live apart, so a plan is validated without this module.

What a trial gets: its config, built once on the driver (``harness.expansion``) and
handed over as data in the param space (``{"harness.point": payload}``): a grid or
random search's trials are drawn in Tune's order and built before Tune starts, a halving
rung's when the rung is run. Only an Optuna search Tune drives itself (not
deterministic) suggests points inside Tune's loop; the worker builds those with the same
function (``expansion.trial_from_tune``).

What a trial reports: every epoch the trainable writes a checkpoint folder to Ray storage
holding ``state.pt`` (model, optimizer, scheduler, RNG, history) and the trial's record so
far (one ``*.json`` written by ``harness.records.write_record``). The driver reads each
trial's record from its last checkpoint, so records reach the driver through Ray storage
alone, which is what a multi-node cluster shares. A record in a checkpoint has status
``completed`` after the last epoch, ``diverged`` if training blew up, a task's own early
status (``fitted``), and ``running`` otherwise; the driver turns ``running`` into
``stopped`` (Tune marked the trial done: an early stop by ASHA) or ``failed`` (retries
exhausted); a trial still ``running`` after the Tuner returned was interrupted (Ctrl-C),
and the stage is not finished.

A deterministic stage (``Stage.deterministic``; ``harness.halving``) that halves or learns
is run as a series of Tune runs of fixed lists of trials ("points"), one per batch and
rung: a trial that reaches its rung's epoch reports, marks its record ``stopped`` and
ends; if promoted, it goes on in the next rung's run from that checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import INTERRUPTED_EXIT, HarnessError
from harness.expansion import (
    POINT_KEY,
    build_trial,
    param_space,
    trial_payload,
    tune_points,
)
from harness.halving import (
    RungTrial,
    metric_value,
    run_batches,
    rung_epochs,
    runs_in_batches,
    scheduler_name,
)
from harness.space import is_domain
from harness.study import Stage
from harness.trainable import make_trainable, unwrap_point
from harness.trials import (
    CONTINUE_FROM,
    STOP_AT_EPOCH,
    TRIAL_INDEX,
    max_epochs,
    stage_metric,
)

MAX_FAILURES = 2
CHECKPOINTS_TO_KEEP = 2


class StageInterrupted(HarnessError):
    """Tune stopped before every trial finished (Ctrl-C, SIGUSR1)."""

    exit_code = INTERRUPTED_EXIT


# ---------------------------------------------------------------------------- search space


def build_scheduler(stage: Stage, space: Mapping[str, Any]) -> Any:
    # metric and mode go to TuneConfig, which hands them to the scheduler and the searcher.
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if stage.scheduler == "asha":
        return ASHAScheduler(
            time_attr="training_iteration",  # one report per epoch, so iteration == epoch
            max_t=max_epochs(space),
            grace_period=stage.grace_period,
            reduction_factor=stage.reduction_factor,
        )
    return FIFOScheduler()


def optuna_searcher(stage: Stage) -> Any:
    """Ray's Optuna searcher with a TPE sampler seeded by the stage."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=stage.searcher_seed))


def build_search_alg(stage: Stage) -> Any:
    if stage.searcher == "optuna":
        from ray.tune.search import ConcurrencyLimiter

        searcher = optuna_searcher(stage)
        if stage.max_concurrent:
            return ConcurrencyLimiter(searcher, max_concurrent=stage.max_concurrent)
        return searcher
    from ray.tune.search import BasicVariantGenerator

    # The generator is not a Searcher, so it limits concurrency itself.
    return BasicVariantGenerator(
        max_concurrent=stage.max_concurrent, random_state=stage.searcher_seed
    )


# ---------------------------------------------------------------------------- results


@dataclass
class TrialOutcome:
    trial_id: str
    config: dict[str, Any]
    record: dict[str, Any] | None  # None when the trial failed before its first checkpoint
    error: str | None
    checkpoint: Any = None  # the last one: where a promoted trial goes on from


def _record_from_checkpoint(checkpoint: Any) -> dict[str, Any] | None:
    from harness.records import read_record

    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        files = sorted(p for p in Path(folder).glob("*.json") if not p.name.startswith("."))
        return read_record(files[0]) if files else None


class _OneLineNotices:
    """A filter on Tune's loggers: a failed trial task is logged with its whole traceback
    (Ray's ~20-line ActorDiedError when a worker is killed) and its retry warns about files
    not there yet; Ctrl-C is logged when it arrives and again with a hint to call
    ``Tuner.restore(...)``. The user reads one harness line for each instead (the
    interrupt's is the StageInterrupted error, which names --resume)."""

    DROPPED = ("Experiment has been interrupted", "Stop signal received",
               "Remote file not found")  # fmt: skip

    def filter(self, record: Any) -> bool:
        message = record.getMessage()
        if message.startswith(self.DROPPED):
            return False
        if _deleting_a_gone_checkpoint(message, record.exc_info):
            return False
        if message.startswith("Trial task failed for trial ") and record.exc_info:
            trial = message.removeprefix("Trial task failed for trial ")
            print(f"harness: trial {trial.removeprefix('harness_trial_')} failed: "
                  f"{failure_reason(record.exc_info[1])}; Tune retries a failed trial from "
                  f"its last checkpoint, up to {MAX_FAILURES} times", flush=True)
            return False
        return True


def _deleting_a_gone_checkpoint(message: str, exc_info: Any) -> bool:
    """A trial restored from an older experiment snapshot (a driver killed between two)
    has its checkpoint manager delete checkpoints the run before had deleted already:
    Ray logs each with a traceback, though gone is what it wanted."""
    error = exc_info[1] if exc_info else None
    return (isinstance(error, FileNotFoundError) and "checkpoint_" in str(error)
            and ("Error handling checkpoint" in message
                 or message.startswith("Caught exception when deleting path")))


def one_line_tune_notices() -> None:
    import logging

    for name in ("ray.tune.execution.tune_controller", "ray.tune.tune", "ray.tune.logger.logger",
                 "ray.train._internal.storage"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _OneLineNotices) for f in logger.filters):
            logger.addFilter(_OneLineNotices())


def failure_reason(error: BaseException | None) -> str:
    """Why a trial task failed, in a few words: a dead worker process, or the trial's own
    exception."""
    from ray.exceptions import RayActorError

    if isinstance(error, RayActorError):
        return f"its worker process died ({type(error).__name__}: killed, out of memory, or crashed)"
    return describe_error(error) if error is not None else "unknown error"


def describe_error(error: BaseException) -> str:
    """The trial's own exception in one line, not Ray's wrapper around it."""
    cause = getattr(error, "cause", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"


def _final_record(checkpoint: Any, error: str | None, done: bool) -> dict[str, Any] | None:
    """The record in the trial's last checkpoint with its final status. A record still
    "running" there ended before its last epoch: failed (error), stopped by the scheduler
    (Tune marked its last result done), or else interrupted, which stays "running"."""
    record = _record_from_checkpoint(checkpoint)
    if record is not None and record["status"] == "running" and (error or done):
        record["status"] = "failed" if error else "stopped"
    if record is not None and error:
        record["error"] = error[:500]
    return record


def outcome_from_result(result: Any) -> TrialOutcome:
    """Turn a Tune Result into the trial's final record (read from its last checkpoint)."""
    metrics = result.metrics or {}
    trial_id = str(metrics.get("trial_id") or Path(result.path).name)
    error = None if result.error is None else describe_error(result.error)
    record = _final_record(result.checkpoint, error, bool(metrics.get("done")))
    return TrialOutcome(trial_id, unwrap_point(result.config or {}), record, error,
                        result.checkpoint)


def trial_done_callback(hook: Callable[[TrialOutcome], None]) -> Any:
    """A Tune callback that hands each trial's outcome to ``hook`` as soon as it finishes
    (so MLflow fills in live). Best effort: the caller still reconciles after the stage."""
    from ray.tune import Callback

    class TrialDone(Callback):
        def __init__(self, hook: Callable[[TrialOutcome], None] | None) -> None:
            self.hook = hook

        def __getstate__(self) -> dict[str, Any]:
            # Tune pickles callbacks into its experiment state; a hook holds live clients.
            return {"hook": None}

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if self.hook is None:
                return
            try:
                outcome = TrialOutcome(
                    trial.trial_id,
                    dict(trial.config),
                    _final_record(trial.checkpoint, None, True),
                    None,
                )
                if outcome.record is not None:
                    self.hook(outcome)
            except Exception as error:  # noqa: BLE001 - never break a running study for a log
                print(f"harness: warning: live logging of trial {trial.trial_id} failed: {error}")

    return TrialDone(hook)


def trial_dirname(trial: Any) -> str:
    # Tune's default name lists every searched value (a variant dict makes it huge).
    return f"trial_{trial.trial_id}"


def run_tuner(
    *,
    storage_path: str,
    name: str,
    stage: Stage,
    space: Mapping[str, Any],
    data_root: str | None,
    resources: Mapping[str, float],
    restore: bool,
    on_trial_done: Callable[[TrialOutcome], None] | None = None,
    study: str | None = None,
    kept: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[TrialOutcome]:
    """Run (or continue, when ``restore``) one stage and return every trial.

    The stage's Tune state lives at ``<storage_path>/<name>`` (a folder or a URI every node
    of a cluster reaches): one experiment, or for a deterministic stage that halves or
    learns (``harness.halving``), one experiment per batch and rung below it.
    ``resources`` is one trial's request (CPU, GPU, custom resources); ``study`` names the
    study whose module each worker imports first (what it registers). ``on_trial_done``
    sees each trial that finishes in this process (not those a restored experiment had
    finished before), as it finishes. ``kept`` (--resume): finished trials by identity
    (``harness.kept_trials``), which report their record instead of training again.
    """
    import logging

    from ray import tune

    metric, mode = stage_metric(stage, space)
    # Tune's result grid reads each trial's metrics files to build dataframes we never use
    # (records come from checkpoints), and warns for every trial that had not reported yet
    # (one that never started, or one an interrupt cut short): noise, not a problem.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    one_line_tune_notices()
    trainable = make_trainable(stage.trial, data_root, resources, metric, scheduler_name(stage),
                               study, kept)
    searched = sorted(k for k, v in space.items() if is_domain(v))
    if stage.repeats > 1:
        searched.append("repeat")
    experiment = _Experiment(trainable, metric, mode, searched, restore, on_trial_done)
    if runs_in_batches(stage):
        return _run_in_batches(experiment, f"{storage_path.rstrip('/')}/{name}", stage, space)
    if stage.searcher == "optuna":  # the searcher suggests each point inside Tune's loop
        return experiment.run(
            storage_path, name, param_space(stage, space), build_search_alg(stage),
            build_scheduler(stage, space), stage.num_samples,
        )
    # A grid or random search: every trial's config built here, once, in Tune's order.
    trials = [trial_payload(build_trial(values, stage.trial), values, searched)
              for values in tune_points(stage, space)]
    return experiment.run(
        storage_path, name, {POINT_KEY: tune.grid_search(trials)}, build_search_alg(stage),
        build_scheduler(stage, space), 1, columns=_point_columns(searched),
    )


def _point_columns(searched: Sequence[str]) -> list[str]:
    return [f"{POINT_KEY}/shown/{key}" for key in searched]


@dataclass
class _Experiment:
    """What every Tune run of one stage shares."""

    trainable: Any
    metric: str
    mode: str
    searched: list[str]  # the progress table's parameter columns
    restore: bool
    on_trial_done: Callable[[TrialOutcome], None] | None

    def run(self, storage_path: str, name: str, params: Mapping[str, Any], search_alg: Any,
            scheduler: Any, num_samples: int, columns: list[str] | None = None,
            live: bool = True) -> list[TrialOutcome]:
        """One Tuner at ``<storage_path>/<name>``, restored if asked and there."""
        from ray import tune
        from ray.tune.logger import JsonLoggerCallback

        location = f"{storage_path.rstrip('/')}/{name}"
        if self.restore and tune.Tuner.can_restore(location):
            # Finished trials are kept as they are; errored ones resume from their checkpoints.
            tuner = tune.Tuner.restore(location, trainable=self.trainable, resume_errored=True)
        else:
            columns = self.searched if columns is None else columns
            reporter = tune.CLIReporter(
                metric_columns={"epoch": "epoch", self.metric: self.metric},
                parameter_columns=columns or None,
                max_report_frequency=10,
            )
            hook = self.on_trial_done if live else None
            tuner = tune.Tuner(
                self.trainable,
                param_space=dict(params),
                tune_config=tune.TuneConfig(
                    metric=self.metric,
                    mode=self.mode,
                    search_alg=search_alg,
                    scheduler=scheduler,
                    num_samples=num_samples,
                    # Trials with one resource shape share actors: no process start per trial.
                    reuse_actors=True,
                    trial_dirname_creator=trial_dirname,
                ),
                run_config=tune.RunConfig(
                    name=name,
                    storage_path=storage_path,
                    failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_TO_KEEP),
                    progress_reporter=reporter,
                    callbacks=[JsonLoggerCallback()]
                    + ([trial_done_callback(hook)] if hook else []),
                    verbose=1,
                ),
            )
        outcomes = [outcome_from_result(result) for result in tuner.fit()]
        # Tune returns normally after Ctrl-C, marking running trials terminated; a trial that
        # never started, or whose record is still "running", was cut short.
        unfinished = [
            o
            for o in outcomes
            if o.error is None and (o.record is None or o.record["status"] == "running")
        ]
        if unfinished:
            raise StageInterrupted(
                f"interrupted with {len(unfinished)} of {len(outcomes)} trials unfinished; the "
                f"state is saved in {location}: run the same command with --resume to continue"
            )
        return outcomes


def _run_in_batches(
    experiment: _Experiment, location: str, stage: Stage, space: Mapping[str, Any]
) -> list[TrialOutcome]:
    """A deterministic stage (harness.halving): batches drawn from the seeded searcher,
    each a bracket of synchronous successive halving (FIFO: a single rung to the end)."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search import BasicVariantGenerator
    from ray.tune.search.sample import Domain

    metric, mode = experiment.metric, experiment.mode
    params = param_space(stage, space)
    if stage.searcher == "optuna":
        searcher = optuna_searcher(stage)
        searcher.set_search_properties(metric, mode, params)
        constants = {k: v for k, v in params.items() if not isinstance(v, Domain)}
        num_trials = stage.num_samples

        def draw(start: int, count: int) -> list[dict[str, Any]]:
            return [{**constants, **searcher.suggest(str(i))} for i in range(start, start + count)]

        def learn(results: list[tuple[int, dict[str, Any] | None]]) -> None:
            for index, record in results:  # in draw order, so TPE's history is the same
                value = metric_value(record, metric)
                found = value is not None and math.isfinite(value)
                searcher.on_trial_complete(str(index), {metric: value} if found else None,
                                           error=not found)
    else:
        points = tune_points(stage, space)
        num_trials = len(points)

        def draw(start: int, count: int) -> list[dict[str, Any]]:
            return points[start:start + count]

        def learn(results: list[tuple[int, dict[str, Any] | None]]) -> None:
            """A grid or random search learns nothing."""

    def run_rung(name: str, trials: Sequence[RungTrial], stop_at: int | None) -> list[TrialOutcome]:
        given = []
        for trial in trials:
            point = {**trial.values, TRIAL_INDEX: trial.index}
            if stop_at is not None:
                point[STOP_AT_EPOCH] = stop_at
            if trial.continue_from is not None:
                point[CONTINUE_FROM] = trial.continue_from
            given.append(trial_payload(build_trial(point, stage.trial), trial.values,
                                       experiment.searched))
        outcomes = experiment.run(
            location, name, {POINT_KEY: tune.grid_search(given)},
            BasicVariantGenerator(max_concurrent=stage.max_concurrent), FIFOScheduler(), 1,
            columns=_point_columns(experiment.searched), live=False,
        )
        by_index = {o.config[TRIAL_INDEX]: o for o in outcomes}
        return [by_index[trial.index] for trial in trials]

    rungs = rung_epochs(stage.grace_period, stage.reduction_factor, max_epochs(space))
    return run_batches(
        num_trials=num_trials,
        batch_size=stage.search_batch,
        rungs=rungs if stage.scheduler == "asha" else [],
        metric=metric,
        mode=mode,
        reduction_factor=stage.reduction_factor,
        draw=draw,
        learn=learn,
        run_rung=run_rung,
        on_final=experiment.on_trial_done,
    )
