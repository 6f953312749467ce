"""Ray Tune glue: one study stage becomes one Tuner; one trial is ``harness.train.train``.

Ray is imported inside the functions that need it, so ``import harness.tune`` works on a
machine without Ray (the trainable's helpers are also what the tests call directly).

What a trial reports: every epoch the trainable writes a checkpoint folder to Ray storage
holding ``state.pt`` (model, optimizer, scheduler, RNG, history) and the trial's record so
far (one ``*.json`` written by ``harness.records.write_record``). The driver reads each
trial's record from its last checkpoint, so records reach the driver through Ray storage
alone, which is what a multi-node cluster shares. A record in a checkpoint has status
``completed`` after the last epoch, ``diverged`` if training blew up, and ``running``
otherwise; the driver turns ``running`` into ``stopped`` (an early stop by ASHA) or
``failed`` (retries exhausted).

Fault injection (for tests and for checking a cluster's retry path): a trial config key
``fault.fail_once_at_epoch = N`` (N >= 2) makes a trial that did not start from a
checkpoint raise at epoch N, before that epoch's checkpoint is saved. Tune then retries it
(``FailureConfig(max_failures=...)``) from epoch N-1's checkpoint, so epoch N is trained
again; the final record carries ``restored_from_epoch``.
"""

from __future__ import annotations

import contextlib
import math
import os
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
from harness.space import Choice, Grid, IntRange, LogUniform, Uniform, is_domain
from harness.study import Stage

FAULT_FAIL_ONCE_AT_EPOCH = "fault.fail_once_at_epoch"
# Keys a trial's Tune config may hold besides TrialConfig keys: the trainable uses them itself.
TRAINABLE_KEYS = frozenset({FAULT_FAIL_ONCE_AT_EPOCH})
STATE_FILE = "state.pt"
MAX_FAILURES = 2
CHECKPOINTS_TO_KEEP = 2
CONNECT_TIMEOUT_S = float(os.environ.get("HARNESS_RAY_CONNECT_TIMEOUT", "30"))
SCHEDULERS = ("fifo", "asha")
SEARCHERS = ("grid", "random", "optuna")

# Tune's defaults print a lot and write loggers we don't read; set before Ray is imported.
RAY_QUIET_ENV = {
    "RAY_DEDUP_LOGS": "0",
    "RAY_AIR_NEW_OUTPUT": "0",  # the classic CLIReporter table: trial status, epoch, test_acc
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no per-trial CSV/JSON/TensorBoard files
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1000",
    "RAY_USAGE_STATS_ENABLED": "0",
}


class InjectedFault(RuntimeError):
    """Raised by the fault-injection knob; never by a real trial."""


# ---------------------------------------------------------------------------- trial configs


def split_trial_values(values: Mapping[str, Any]) -> tuple[TrialConfig, dict[str, Any]]:
    """Split a Tune trial config into the TrialConfig and the trainable's own keys."""
    own = {k: v for k, v in values.items() if k in TRAINABLE_KEYS}
    config = TrialConfig.from_dict({k: v for k, v in values.items() if k not in TRAINABLE_KEYS})
    if FAULT_FAIL_ONCE_AT_EPOCH in own:
        raw = own[FAULT_FAIL_ONCE_AT_EPOCH]
        try:
            epoch = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{FAULT_FAIL_ONCE_AT_EPOCH} must be an integer, got {raw!r}") from None
        if not 2 <= epoch <= config.epochs:
            # Epoch 1 has no checkpoint before it: a retry would start afresh and fail again.
            raise ConfigError(
                f"{FAULT_FAIL_ONCE_AT_EPOCH} must be in [2, epochs={config.epochs}], got {epoch}"
            )
        own[FAULT_FAIL_ONCE_AT_EPOCH] = epoch
    return config, own


def max_epochs(space: Mapping[str, Any]) -> int:
    """The most epochs any trial of a space can run (ASHA's max_t)."""
    value = space.get("epochs", TrialConfig.epochs)
    if isinstance(value, Grid | Choice):
        return max(int(v) for v in value.values)
    if isinstance(value, IntRange):
        return value.high
    if isinstance(value, Uniform | LogUniform):
        raise ConfigError("epochs must be a constant, grid, choice or int_range, not a float range")
    return int(value)


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
    # Optuna's categorical choices must be scalars; TrialConfig parses "64,64" back to a tuple.
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
    return {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _report(metrics: Mapping[str, Any], state: Mapping[str, Any] | None, record: dict) -> None:
    from ray import tune

    from harness.records import write_record
    from harness.train import save_checkpoint

    with tempfile.TemporaryDirectory(prefix="harness-ckpt-") as folder:
        if state is not None:
            save_checkpoint({k: v for k, v in state.items() if k != "record"}, Path(folder) / STATE_FILE)
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

    config, own = split_trial_values(values)
    state = _restore_state()
    restored_from = int(state["epoch"]) if state is not None else None
    fail_at = own.get(FAULT_FAIL_ONCE_AT_EPOCH) if state is None else None

    def report(metrics: dict[str, Any], snapshot: dict[str, Any] | None) -> None:
        if fail_at is not None and metrics["epoch"] == fail_at:
            raise InjectedFault(f"{FAULT_FAIL_ONCE_AT_EPOCH}={fail_at}: injected failure")
        assert snapshot is not None
        record = dict(snapshot["record"])
        if metrics["epoch"] == config.epochs:
            record["status"] = "completed"  # train() has nothing left to do after this report
        if restored_from is not None:
            record["restored_from_epoch"] = restored_from
        _report(tune_metrics(metrics), snapshot, record)

    dataset = _cached_dataset(config.dataset, data_root)
    record = train(config, report, checkpoint=state, data_root=data_root, dataset=dataset)
    if record["status"] != "completed":
        # A diverged epoch is not reported by train(); send its record as the last result.
        if restored_from is not None:
            record["restored_from_epoch"] = restored_from
        last = record["history"][-1]
        metrics = {"epoch": last["epoch"], "train_loss": last["train_loss"],
                   "test_acc": math.nan, "test_loss": math.nan}  # strict metric check wants both
        _report(metrics, None, record)


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


def outcome_from_result(result: Any) -> TrialOutcome:
    """Turn a Tune Result into the trial's final record (read from its last checkpoint)."""
    trial_id = str(result.metrics.get("trial_id") or Path(result.path).name)
    error = None if result.error is None else f"{type(result.error).__name__}: {result.error}"
    record = _record_from_checkpoint(result.checkpoint)
    if record is not None and record["status"] == "running":
        record["status"] = "failed" if error else "stopped"
    if record is not None and error:
        record["error"] = error.splitlines()[0][:500]
    return TrialOutcome(trial_id, dict(result.config or {}), record, error)


def run_tuner(
    *,
    experiment_dir: Path,
    stage: Stage,
    space: Mapping[str, Any],
    data_root: str | None,
    gpus_per_trial: float,
    restore: bool,
) -> list[TrialOutcome]:
    """Run (or continue, when ``restore``) one stage as a Tuner and return every trial."""
    from ray import tune

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
            ),
            run_config=tune.RunConfig(
                name=experiment_dir.name,
                storage_path=str(experiment_dir.parent.resolve()),
                failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_TO_KEEP),
                progress_reporter=reporter,
                verbose=1,
            ),
        )
    grid = tuner.fit()
    return [outcome_from_result(result) for result in grid]


# ---------------------------------------------------------------------------- connecting


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


def _init_within(timeout: float, **kwargs: Any) -> None:
    import ray

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
        raise HarnessError(
            f"Ray at {kwargs.get('address')} did not answer within {timeout:.0f}s "
            "(HARNESS_RAY_CONNECT_TIMEOUT); is it a Ray head node of the same Ray version?"
        )
    if failure:
        raise HarnessError(f"cannot connect to Ray at {kwargs.get('address')}: {failure[0]}")


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[str]:
    """Connect to ``address`` (or $RAY_ADDRESS), else start a local Ray; stop what we started.

    Yields a short description of where trials run. A Ray already initialised in this
    process (a test fixture, a notebook) is used as it is and left running.
    """
    import logging

    quiet_ray_env()
    import ray

    if ray.is_initialized():
        yield "the Ray instance already running in this process"
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_ray_address(address)
        _init_within(CONNECT_TIMEOUT_S, address=address, logging_level=logging.WARNING,
                     log_to_driver=False)
        where = f"the Ray cluster at {address}"
    else:
        # RAY_ADDRESS is unset here, so this starts a fresh local instance.
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
        where = f"a local Ray instance ({os.cpu_count()} CPUs)"
    try:
        yield where
    finally:
        ray.shutdown()
