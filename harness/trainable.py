"""The function Ray Tune runs for each trial, in a Ray worker: import the study's module
(whatever it registers: a task, a model, a loss), restore from Tune's checkpoint after a
failure or go on from the checkpoint a promoted trial ended its rung on, run the trial's
kind (``harness.train.train`` for training), and report every epoch's metrics with a
checkpoint holding ``state.pt`` and the record so far (``harness.tune`` reads them back).
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.expansion import POINT_KEY, trial_from_tune
from harness.halving import AT_RUNG
from harness.records import annotate
from harness.trials import (
    FAULT_FAIL_ONCE_AT_EPOCH,
    FAULT_FAIL_WHILE_EXISTS,
    TRIAL_INDEX,
    trial_kind,
)

STATE_FILE = "state.pt"


class InjectedFault(RuntimeError):
    """Raised by the fault-injection knob; never by a real trial."""


class RungReached(Exception):  # noqa: N818 - an end, not an error
    """Raised by the report after a rung's epoch: the trial ends there until promoted."""


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


def _load_state(checkpoint: Any) -> dict[str, Any] | None:
    from harness.train import load_checkpoint

    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        path = Path(folder) / STATE_FILE
        return load_checkpoint(path) if path.exists() else None


def unwrap_point(values: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's Tune config as flat values: the config the driver built (and its draw
    index), or the point a searcher suggested."""
    values = dict(values)
    if POINT_KEY not in values:
        return values
    payload = values.pop(POINT_KEY)
    index = {TRIAL_INDEX: payload["trial_index"]} if payload.get("trial_index") is not None else {}
    return {**payload["config"], **index, **values}


def run_trial(
    values: Mapping[str, Any],
    data_root: str | None,
    kind: str,
    metric: str,  # the stage's (its task's, unless the stage names one)
    scheduler: str | None = None,
    kept: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """The body of the Tune trainable: restore if Tune has a checkpoint (a retry), else
    go on from the checkpoint the trial's last rung ended on, if any; run; report. A trial
    in ``kept`` (--resume: its record says it finished, ``harness.kept_trials``) is not
    trained: its record is its result."""
    from ray import tune

    spec = trial_from_tune(values, kind)  # built on the driver: read back, not rebuilt
    config = spec.config
    if kept and spec.stop_at_epoch is None:
        from harness.kept_trials import spec_identity

        record = kept.get(spec_identity(spec))
        if record is not None:
            _replay(dict(record), metric)
            return
    state = _load_state(tune.get_checkpoint())
    restored_from = int(state["epoch"]) if state is not None else None
    if state is None:
        state = _load_state(spec.continue_from)  # promoted: not a restore after a failure
    fail_at = spec.fail_once_at_epoch if state is None else None

    node = _node_id()

    def finish(record: dict[str, Any]) -> dict[str, Any]:
        # The variant's name is what study tables group by; the node is where it ran
        # (on a cluster, --trial-resource pins trials to nodes: the record shows it held).
        if node and isinstance(record.get("environment"), dict):
            record["environment"] = {**record["environment"], "ray_node_id": node}
        return annotate(record, label=spec.label, restored_from_epoch=restored_from,
                        scheduler=scheduler, trial_index=spec.trial_index)

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
        at_rung = record["status"] == "running" and metrics["epoch"] == spec.stop_at_epoch
        if at_rung:
            record["status"] = AT_RUNG  # until its rung decides; kept if not promoted
        _report(tune_metrics(metrics), snapshot, finish(record))
        if at_rung:
            raise RungReached

    run = trial_kind(kind).run_function()
    extra = {"dataset": cached_dataset(config.dataset, data_root)} if kind == "train" else {}
    try:
        record = run(config, report, checkpoint=state, data_root=data_root, **extra)
    except RungReached:
        return
    if record["status"] == "diverged":
        # A diverged epoch is not reported by train(); send its record as the last result,
        # with the stage's metric as NaN, which Tune's strict metric check wants.
        last = record["history"][-1]
        metrics = {"epoch": last["epoch"], "train_loss": last["train_loss"], metric: math.nan}
        _report(metrics, None, finish(record))


def _replay(record: dict[str, Any], metric: str) -> None:
    """Report a finished trial's record as its one result, without training: its last
    epoch's numbers (the stage's metric NaN if it has none, as Tune's check wants)."""
    history = record.get("history") or [{}]
    metrics = tune_metrics(history[-1])
    metrics.setdefault(metric, math.nan)
    _report(metrics, None, record)


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


def _import_study(name: str) -> None:
    """Import the study's module where it can be imported; a worker that cannot (a study
    kept outside the package, on a node without it on its path) runs the trial anyway,
    which needs only what the harness registers itself, and a trial that needs the study's
    own task or model fails with the config error naming it."""
    from harness.errors import RegistryError
    from harness.study import get_study

    with contextlib.suppress(RegistryError, ImportError):
        get_study(name)


def make_trainable(
    kind: str,
    data_root: str | None,
    resources: Mapping[str, float],
    metric: str,
    scheduler: str | None = None,
    study: str | None = None,
    kept: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[dict], None]:
    """The function Tune runs per trial, with its resource request attached; ``scheduler``
    is what the records say ran the stage. In the worker it first imports ``study``'s
    module, so a task, model or loss the study registers itself exists where the trial
    runs (the module must be importable there: in the package, or on the workers' path).
    ``kept``: the finished trials a resumed stage does not train again (by identity)."""
    from ray import tune

    def harness_trial(config: dict[str, Any]) -> None:
        if study is not None:
            _import_study(study)
        run_trial(config, data_root, kind, metric, scheduler, kept)

    return tune.with_resources(harness_trial, dict(resources))
