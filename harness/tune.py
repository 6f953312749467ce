"""Ray Tune glue: one study stage becomes one Tuner; one trial is ``harness.train.train``.

Ray is imported inside the functions that need it, so ``import harness.tune`` works on a
machine without Ray (the trainable's helpers are also what the tests call directly).

What a trial reports: every epoch the trainable writes a checkpoint folder to Ray storage
holding ``state.pt`` (model, optimizer, scheduler, RNG, history) and the trial's record so
far (one ``*.json`` written by ``harness.records.write_record``). The driver reads each
trial's record from its last checkpoint, so records reach the driver through Ray storage
alone, which is what a multi-node cluster shares. A record in a checkpoint has status
``completed`` after the last epoch, ``diverged`` if training blew up, and ``running``
otherwise; the driver turns ``running`` into ``stopped`` (Tune marked the trial done: an
early stop by ASHA) or ``failed`` (retries exhausted); a trial still ``running`` after
the Tuner returned was interrupted (Ctrl-C), and the stage is not finished.

Fault injection (for tests and for checking a cluster's retry path): a trial config key
``fault.fail_once_at_epoch = N`` (N >= 2) makes a trial that did not start from a
checkpoint raise at epoch N, before that epoch's checkpoint is saved. Tune then retries it
(``FailureConfig(max_failures=...)``) from epoch N-1's checkpoint, so epoch N is trained
again; the final record carries ``restored_from_epoch``. A second knob,
``fault.fail_while_exists = PATH``, fails every attempt at epoch 2 or later while that file
exists on the worker: an outside fault that outlasts the retries, which a user fixes before
``harness run --resume``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.config import TrialConfig
from harness.errors import ConfigError, HarnessError
from harness.space import (
    VARIANT_KEY,
    Choice,
    Grid,
    IntRange,
    LogUniform,
    Uniform,
    expand_variant,
    is_domain,
)
from harness.study import Stage

FAULT_FAIL_ONCE_AT_EPOCH = "fault.fail_once_at_epoch"
FAULT_FAIL_WHILE_EXISTS = "fault.fail_while_exists"
# Keys a trial's Tune config may hold besides TrialConfig keys: the trainable uses them itself.
TRAINABLE_KEYS = frozenset({FAULT_FAIL_ONCE_AT_EPOCH, FAULT_FAIL_WHILE_EXISTS})
STATE_FILE = "state.pt"
MAX_FAILURES = 2
CHECKPOINTS_TO_KEEP = 2
SCHEDULERS = ("fifo", "asha")
SEARCHERS = ("grid", "random", "optuna")

# Tune's defaults print a lot and write loggers we don't read; set before Ray is imported.
RAY_QUIET_ENV = {
    "RAY_DEDUP_LOGS": "0",
    "RAY_AIR_NEW_OUTPUT": "0",  # the classic CLIReporter table: trial status, epoch, test_acc
    # No CSV or TensorBoard files per trial; run_tuner adds the JSON logger back, which a
    # restored experiment needs to read its finished trials' last results.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Snapshotting the experiment at every checkpoint is what makes --resume exact; the
    # warning that it happens often is noise for short trials.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}


class StageInterrupted(HarnessError):
    """Tune stopped before every trial finished (Ctrl-C, SIGUSR1)."""

    exit_code = 130


class InjectedFault(RuntimeError):
    """Raised by the fault-injection knob; never by a real trial."""


# ---------------------------------------------------------------------------- trial configs


@dataclass(frozen=True)
class TrialSpec:
    """What a Tune trial config means: the TrialConfig, the variant label, fault settings."""

    config: TrialConfig
    label: str | None = None
    fail_once_at_epoch: int | None = None
    fail_while_exists: str | None = None


def split_trial_values(values: Mapping[str, Any]) -> TrialSpec:
    """Expand the trial's variant, split off the trainable's own keys, validate the rest."""
    values = dict(values)
    if isinstance(values.get(VARIANT_KEY), str):  # optuna carries a variant as JSON text
        values[VARIANT_KEY] = json.loads(values[VARIANT_KEY])
    merged, label = expand_variant(values)
    own = {k: merged.pop(k) for k in list(merged) if k in TRAINABLE_KEYS}
    config = TrialConfig.from_dict(merged)
    fail_at = None
    if FAULT_FAIL_ONCE_AT_EPOCH in own:
        raw = own[FAULT_FAIL_ONCE_AT_EPOCH]
        try:
            fail_at = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{FAULT_FAIL_ONCE_AT_EPOCH} must be an integer, got {raw!r}"
            ) from None
        if not 2 <= fail_at <= config.epochs:
            # Epoch 1 has no checkpoint before it: a retry would start afresh and fail again.
            raise ConfigError(
                f"{FAULT_FAIL_ONCE_AT_EPOCH} must be in [2, epochs={config.epochs}], got {fail_at}"
            )
    flag = own.get(FAULT_FAIL_WHILE_EXISTS)
    return TrialSpec(config, label, fail_at, str(flag) if flag else None)


def _epochs_values(value: Any) -> list[int]:
    if isinstance(value, Grid | Choice):
        return [int(v) for v in value.values]
    if isinstance(value, IntRange):
        return [value.high]
    if isinstance(value, Uniform | LogUniform):
        raise ConfigError("epochs must be a constant, grid, choice or int_range, not a float range")
    return [int(value)]


def max_epochs(space: Mapping[str, Any]) -> int:
    """The most epochs any trial of a space can run (ASHA's max_t), variants included."""
    found = _epochs_values(space.get("epochs", TrialConfig.epochs))
    variant = space.get(VARIANT_KEY)
    if isinstance(variant, Grid | Choice):
        found += [int(v["epochs"]) for v in variant.values if "epochs" in v]
    return max(found)


def check_stage(stage: Stage, space: Mapping[str, Any]) -> None:
    """Reject stage settings Tune would only complain about after Ray started."""
    if stage.scheduler not in SCHEDULERS:
        raise ConfigError(f"stage {stage.name!r}: scheduler must be one of {SCHEDULERS}")
    if stage.searcher not in SEARCHERS:
        raise ConfigError(f"stage {stage.name!r}: searcher must be one of {SEARCHERS}")
    if stage.mode not in ("min", "max"):
        raise ConfigError(f"stage {stage.name!r}: mode must be min or max")
    if stage.repeats < 1 or stage.num_samples < 1:
        raise ConfigError(f"stage {stage.name!r}: repeats and num_samples must be >= 1")
    if stage.repeats > 1 and "repeat" in space:
        raise ConfigError(f"stage {stage.name!r}: set repeats or a 'repeat' key, not both")
    if stage.searcher == "optuna" and stage.repeats > 1:
        raise ConfigError(
            f"stage {stage.name!r}: optuna cannot run a grid over repeats; search with "
            "repeats=1, then re-run the best configurations with seeds in a later stage"
        )
    if stage.scheduler == "asha":
        top = max_epochs(space)
        if not 1 <= stage.grace_period <= top or stage.reduction_factor < 2:
            raise ConfigError(
                f"stage {stage.name!r}: ASHA needs 1 <= grace_period <= epochs ({top}) "
                "and reduction_factor >= 2"
            )


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

_DATASET_CACHE: dict[tuple[str, str | None], Any] = {}


def _cached_dataset(name: str, data_root: str | None) -> Any:
    # A reused actor runs many trials: decode the dataset once per worker, keep only one.
    from harness.data import load_dataset

    key = (name, data_root)
    if key not in _DATASET_CACHE:
        _DATASET_CACHE.clear()
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


def run_trial(values: Mapping[str, Any], data_root: str | None = None) -> None:
    """The body of the Tune trainable: restore if Tune has a checkpoint, train, report."""
    from harness.train import train

    spec = split_trial_values(values)
    config = spec.config
    state = _restore_state()
    restored_from = int(state["epoch"]) if state is not None else None
    fail_at = spec.fail_once_at_epoch if state is None else None

    def _annotate(record: dict[str, Any]) -> dict[str, Any]:
        if spec.label is not None:
            record["label"] = spec.label  # the variant's name, which study tables group by
        if restored_from is not None:
            record["restored_from_epoch"] = restored_from
        return record

    def report(metrics: dict[str, Any], snapshot: dict[str, Any] | None) -> None:
        if fail_at is not None and metrics["epoch"] == fail_at:
            raise InjectedFault(f"{FAULT_FAIL_ONCE_AT_EPOCH}={fail_at}: injected failure")
        flag = spec.fail_while_exists
        if flag and metrics["epoch"] >= 2 and os.path.exists(flag):
            raise InjectedFault(f"{FAULT_FAIL_WHILE_EXISTS}: {flag} exists")
        assert snapshot is not None
        record = dict(snapshot["record"])
        if metrics["epoch"] == config.epochs:
            record["status"] = "completed"  # train() has nothing left to do after this report
        _report(tune_metrics(metrics), snapshot, _annotate(record))

    dataset = _cached_dataset(config.dataset, data_root)
    record = train(config, report, checkpoint=state, data_root=data_root, dataset=dataset)
    if record["status"] != "completed":
        # A diverged epoch is not reported by train(); send its record as the last result.
        last = record["history"][-1]
        metrics = {
            "epoch": last["epoch"],
            "train_loss": last["train_loss"],
            "test_acc": math.nan,
            "test_loss": math.nan,
        }  # strict metric check wants both
        _report(metrics, None, _annotate(record))


def make_trainable(data_root: str | None, cpus: float, gpus: float) -> Callable[[dict], None]:
    """The function Tune runs per trial, with its resource request attached."""
    from ray import tune

    def harness_trial(config: dict[str, Any]) -> None:
        run_trial(config, data_root)

    return tune.with_resources(harness_trial, {"cpu": cpus, "gpu": gpus})


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
    experiment_dir: Path,
    stage: Stage,
    space: Mapping[str, Any],
    data_root: str | None,
    gpus_per_trial: float,
    restore: bool,
    on_trial_done: Callable[[TrialOutcome], None] | None = None,
) -> list[TrialOutcome]:
    """Run (or continue, when ``restore``) one stage as a Tuner and return every trial.

    ``on_trial_done`` sees each trial that finishes in this process (not those a restored
    experiment had finished before), as it finishes.
    """
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    trainable = make_trainable(data_root, stage.cpus_per_trial, gpus_per_trial)
    if restore and tune.Tuner.can_restore(str(experiment_dir)):
        # Finished trials are kept as they are; errored ones resume from their checkpoints.
        tuner = tune.Tuner.restore(str(experiment_dir), trainable=trainable, resume_errored=True)
    else:
        searched = sorted(k for k, v in space.items() if is_domain(v))
        if stage.repeats > 1:
            searched.append("repeat")
        reporter = tune.CLIReporter(
            metric_columns={"epoch": "epoch", "test_acc": "test_acc", "test_loss": "test_loss"},
            parameter_columns=searched or None,
            max_report_frequency=10,
        )
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(stage, space),
            tune_config=tune.TuneConfig(
                metric=stage.metric,
                mode=stage.mode,
                search_alg=build_search_alg(stage),
                scheduler=build_scheduler(stage, space),
                num_samples=stage.num_samples,
                # Trials with one resource shape share actors: no process start per trial.
                reuse_actors=True,
                trial_dirname_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=experiment_dir.name,
                storage_path=str(experiment_dir.parent.resolve()),
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
            f"state is saved in {experiment_dir}: run the same command with --resume to continue"
        )
    return outcomes


# ---------------------------------------------------------------------------- connecting


def check_resources(stage: Stage, gpus_per_trial: float) -> None:
    """A trial the cluster can never place would wait forever: say so before it starts."""
    import ray

    have = ray.cluster_resources()
    for name, want in (("CPU", stage.cpus_per_trial), ("GPU", gpus_per_trial)):
        if want > have.get(name, 0.0):
            hint = " (pass --gpus-per-trial 0 to train on CPUs)" if name == "GPU" else ""
            raise HarnessError(
                f"stage {stage.name!r} asks for {want:g} {name}(s) per trial but the Ray "
                f"cluster has {have.get(name, 0.0):g}{hint}"
            )


def quiet_ray_env() -> None:
    for key, value in RAY_QUIET_ENV.items():
        os.environ.setdefault(key, value)


def _host_port(address: str) -> tuple[str, int] | None:
    """host and port of "host:port" or "ray://host:port"; None for "auto" and the like."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        raise HarnessError(f"Ray address {address!r} has a bad port") from None
    if parts.hostname is None or port is None:
        return None
    return parts.hostname, port


def check_ray_address(address: str, timeout: float = 3.0) -> None:
    """Fail fast on an address nobody answers: ray.init itself retries for minutes."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as error:
        raise HarnessError(
            f"cannot reach a Ray cluster at {address} ({error.strerror or error}); "
            "start one with `ray start --head`, or drop --ray-address / RAY_ADDRESS "
            "to run on a local Ray instance"
        ) from None


class _ConnectTimeout(BaseException):  # not Exception: ray.init retries those
    pass


def _init_within(timeout: float, **kwargs: Any) -> None:
    """ray.init, bounded: against a port that answers but is no Ray head it retries for
    minutes. SIGALRM interrupts it on the main thread (Ray's own signal handlers need that
    thread); elsewhere a daemon thread runs it and is abandoned on timeout."""
    import ray

    address = kwargs.get("address")
    expired = HarnessError(
        f"Ray at {address} did not answer within {timeout:g}s (HARNESS_RAY_CONNECT_TIMEOUT); "
        "is it the head node of a Ray cluster of the same Ray version?"
    )
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM"):

        def expire(_signum: int, _frame: Any) -> None:
            raise _ConnectTimeout

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            ray.init(**kwargs)
        except _ConnectTimeout:
            raise expired from None
        except Exception as error:
            raise HarnessError(f"cannot connect to Ray at {address}: {error}") from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return

    failure: list[BaseException] = []

    def connect() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=connect, daemon=True, name="ray-init")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise expired
    if failure:
        raise HarnessError(f"cannot connect to Ray at {address}: {failure[0]}")


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[str]:
    """Connect to ``address`` (or $RAY_ADDRESS), else start a local Ray; stop what we started.

    Yields a short description of where trials run. A Ray already initialised in this
    process (a test fixture, a notebook) is used as it is and left running.
    """
    import logging

    quiet_ray_env()
    address = address or os.environ.get("RAY_ADDRESS") or None
    timeout = float(os.environ.get("HARNESS_RAY_CONNECT_TIMEOUT", "60"))
    if address:
        # Ray waits for a GCS in C++ calls (30 s and 5 s by default, read from the
        # environment when Ray loads) that hold off the alarm in _init_within: shorten
        # them to a timeout set lower than that.
        os.environ.setdefault("RAY_py_gcs_connect_timeout_s", str(max(1, min(30, int(timeout)))))
        os.environ.setdefault(
            "RAY_gcs_rpc_server_connect_timeout_s", str(max(1, min(5, int(timeout))))
        )
    import ray

    if ray.is_initialized():
        yield "the Ray instance already running in this process"
        return
    if address:
        check_ray_address(address)
        _init_within(timeout, address=address, logging_level=logging.WARNING, log_to_driver=False)
        where = f"the Ray cluster at {address}"
    else:
        # RAY_ADDRESS is unset here, so this starts a fresh local instance.
        ray.init(
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        where = f"a local Ray instance ({os.cpu_count()} CPUs)"
    try:
        yield where
    finally:
        ray.shutdown()
