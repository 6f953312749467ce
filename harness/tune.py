"""Ray Tune glue: one study stage becomes one Tuner; one trial is one call of its kind's
run function (``harness.train.train`` for training trials).

Ray is imported inside the functions that need it, so ``import harness.tune`` works on a
machine without Ray. What a trial config means (``harness.trials``) and the connection
(``harness.ray_session``) live apart, so a plan is validated without this module.

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
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.records import annotate
from harness.space import Choice, Grid, IntRange, LogUniform, Uniform, is_domain
from harness.study import Stage
from harness.trials import (
    FAULT_FAIL_ONCE_AT_EPOCH,
    FAULT_FAIL_WHILE_EXISTS,
    max_epochs,
    split_trial_values,
    stage_metric,
    trial_kind,
)

STATE_FILE = "state.pt"
MAX_FAILURES = 2
CHECKPOINTS_TO_KEEP = 2


class StageInterrupted(HarnessError):
    """Tune stopped before every trial finished (Ctrl-C, SIGUSR1)."""

    exit_code = 130


class InjectedFault(RuntimeError):
    """Raised by the fault-injection knob; never by a real trial."""


# ---------------------------------------------------------------------------- search space


def _optuna_value(value: Any) -> Any:
    # Optuna's categorical choices must be scalars: a variant travels as JSON text, and
    # TrialConfig parses "64,64" back to a tuple.
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return value


def to_tune_domain(value: Any, searcher: str) -> Any:
    """A harness.space domain (or a constant) as the Ray Tune equivalent."""
    from ray import tune

    if not is_domain(value):
        return list(value) if isinstance(value, tuple) else value
    if isinstance(value, Grid) and searcher != "optuna":
        return tune.grid_search(list(value.values))
    if isinstance(value, Grid | Choice):
        values = list(value.values)
        return tune.choice([_optuna_value(v) for v in values] if searcher == "optuna" else values)
    if isinstance(value, Uniform):
        return tune.uniform(value.low, value.high)
    if isinstance(value, LogUniform):
        return tune.loguniform(value.low, value.high)
    if isinstance(value, IntRange):
        return tune.randint(value.low, value.high + 1)  # Tune's upper bound is exclusive
    raise TypeError(f"not a search domain: {value!r}")


def param_space(stage: Stage, space: Mapping[str, Any]) -> dict[str, Any]:
    """The Tuner's param_space: the stage's space plus a grid over the repeat index."""
    from ray import tune

    params = {key: to_tune_domain(value, stage.searcher) for key, value in space.items()}
    if stage.repeats > 1:
        params["repeat"] = tune.grid_search(list(range(stage.repeats)))
    return params


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


def build_search_alg(stage: Stage) -> Any:
    if stage.searcher == "optuna":
        import optuna
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        searcher = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=stage.searcher_seed))
        if stage.max_concurrent:
            return ConcurrencyLimiter(searcher, max_concurrent=stage.max_concurrent)
        return searcher
    from ray.tune.search import BasicVariantGenerator

    # The generator is not a Searcher, so it limits concurrency itself.
    return BasicVariantGenerator(
        max_concurrent=stage.max_concurrent, random_state=stage.searcher_seed
    )


# ---------------------------------------------------------------------------- the trainable

# A reused actor runs many trials: decode each dataset once per worker, but keep only the
# most recent one, since a CIFAR-10 copy is ~180 MB and a study may switch datasets.
DATASETS_PER_WORKER = 1
_DATASET_CACHE: OrderedDict[tuple[str, str | None], Any] = OrderedDict()


def cached_dataset(name: str, data_root: str | None) -> Any:
    from harness.data import load_dataset

    key = (name, data_root)
    if key in _DATASET_CACHE:
        _DATASET_CACHE.move_to_end(key)
        return _DATASET_CACHE[key]
    while len(_DATASET_CACHE) >= DATASETS_PER_WORKER:
        _DATASET_CACHE.popitem(last=False)
    _DATASET_CACHE[key] = load_dataset(name, data_root)
    return _DATASET_CACHE[key]


def tune_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars only: Tune's result table and schedulers need no per-class lists."""
    return {
        k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _report(metrics: Mapping[str, Any], state: Mapping[str, Any] | None, record: dict) -> None:
    from ray import tune

    from harness.records import write_record
    from harness.train import save_checkpoint

    with tempfile.TemporaryDirectory(prefix="harness-ckpt-") as folder:
        if state is not None:
            save_checkpoint(
                {k: v for k, v in state.items() if k != "record"}, Path(folder) / STATE_FILE
            )
        write_record(record, folder)
        # report() copies the folder to Ray storage before it returns, so the temp dir can go.
        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(folder))


def _restore_state() -> dict[str, Any] | None:
    from ray import tune

    from harness.train import load_checkpoint

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        path = Path(folder) / STATE_FILE
        return load_checkpoint(path) if path.exists() else None


def run_trial(
    values: Mapping[str, Any],
    data_root: str | None = None,
    kind: str = "train",
    metric: str = "test_acc",
) -> None:
    """The body of the Tune trainable: restore if Tune has a checkpoint, run, report."""
    spec = split_trial_values(values, kind)
    config = spec.config
    state = _restore_state()
    restored_from = int(state["epoch"]) if state is not None else None
    fail_at = spec.fail_once_at_epoch if state is None else None

    node = _node_id()

    def finish(record: dict[str, Any]) -> dict[str, Any]:
        # The variant's name is what study tables group by; the node is where it ran
        # (on a cluster, --trial-resource pins trials to nodes: the record shows it held).
        if node and isinstance(record.get("environment"), dict):
            record["environment"] = {**record["environment"], "ray_node_id": node}
        return annotate(record, label=spec.label, restored_from_epoch=restored_from)

    def report(metrics: dict[str, Any], snapshot: dict[str, Any] | None) -> None:
        if fail_at is not None and metrics["epoch"] == fail_at:
            raise InjectedFault(f"{FAULT_FAIL_ONCE_AT_EPOCH}={fail_at}: injected failure")
        flag = spec.fail_while_exists
        if flag and metrics["epoch"] >= 2 and os.path.exists(flag):
            raise InjectedFault(f"{FAULT_FAIL_WHILE_EXISTS}: {flag} exists")
        if spec.hold_while_exists and metrics["epoch"] == 2:
            _hold(spec.hold_while_exists)
        assert snapshot is not None
        record = dict(snapshot["record"])
        if record["status"] == "running" and metrics["epoch"] == config.epochs:
            record["status"] = "completed"  # the run has nothing left to do after this report
        _report(tune_metrics(metrics), snapshot, finish(record))

    run = trial_kind(kind).run_function()
    extra = {"dataset": cached_dataset(config.dataset, data_root)} if kind == "train" else {}
    record = run(config, report, checkpoint=state, data_root=data_root, **extra)
    if record["status"] == "diverged":
        # A diverged epoch is not reported by train(); send its record as the last result,
        # with the stage's metric as NaN, which Tune's strict metric check wants.
        last = record["history"][-1]
        metrics = {"epoch": last["epoch"], "train_loss": last["train_loss"], metric: math.nan}
        _report(metrics, None, finish(record))


def _node_id() -> str | None:
    """The Ray node this trial runs on (None outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _hold(flag: str) -> None:
    """The hold knob: announce on ``flag.fifo`` (a named pipe), then wait while ``flag``
    exists; the driver may stop the trial meanwhile."""
    if not os.path.exists(flag):
        return
    pipe = f"{flag}.fifo"
    if os.path.exists(pipe) and stat.S_ISFIFO(os.stat(pipe).st_mode):
        with open(pipe, "w") as announce:
            announce.write("held\n")
    while os.path.exists(flag):
        time.sleep(0.1)


def make_trainable(
    kind: str, data_root: str | None, resources: Mapping[str, float], metric: str
) -> Callable[[dict], None]:
    """The function Tune runs per trial, with its resource request attached."""
    from ray import tune

    def harness_trial(config: dict[str, Any]) -> None:
        run_trial(config, data_root, kind, metric)

    return tune.with_resources(harness_trial, dict(resources))


# ---------------------------------------------------------------------------- results


@dataclass
class TrialOutcome:
    trial_id: str
    config: dict[str, Any]
    record: dict[str, Any] | None  # None when the trial failed before its first checkpoint
    error: str | None


def _record_from_checkpoint(checkpoint: Any) -> dict[str, Any] | None:
    from harness.records import read_record

    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        files = sorted(p for p in Path(folder).glob("*.json") if not p.name.startswith("."))
        return read_record(files[0]) if files else None


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
    return TrialOutcome(trial_id, dict(result.config or {}), record, error)


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
) -> list[TrialOutcome]:
    """Run (or continue, when ``restore``) one stage as a Tuner and return every trial.

    The experiment lives at ``<storage_path>/<name>`` (a folder or a URI every node of a
    cluster reaches). ``resources`` is one trial's request (CPU, GPU, custom resources).
    ``on_trial_done`` sees each trial that finishes in this process (not those a restored
    experiment had finished before), as it finishes.
    """
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    metric, mode = stage_metric(stage, space)
    # Tune's result grid reads each trial's metrics files to build dataframes we never use
    # (records come from checkpoints), and warns for every trial that had not reported yet
    # (one that never started, or one an interrupt cut short): noise, not a problem.
    import logging

    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    trainable = make_trainable(stage.trial, data_root, resources, metric)
    location = f"{storage_path.rstrip('/')}/{name}"
    if restore and tune.Tuner.can_restore(location):
        # Finished trials are kept as they are; errored ones resume from their checkpoints.
        tuner = tune.Tuner.restore(location, trainable=trainable, resume_errored=True)
    else:
        searched = sorted(k for k, v in space.items() if is_domain(v))
        if stage.repeats > 1:
            searched.append("repeat")
        reporter = tune.CLIReporter(
            metric_columns={"epoch": "epoch", metric: metric},
            parameter_columns=searched or None,
            max_report_frequency=10,
        )
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(stage, space),
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=mode,
                search_alg=build_search_alg(stage),
                scheduler=build_scheduler(stage, space),
                num_samples=stage.num_samples,
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
                + ([trial_done_callback(on_trial_done)] if on_trial_done else []),
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
