"""Trial kinds, the keys a trial's Tune config may hold besides its config (the
fault-injection knobs, a halving rung's), and the stage checks made before Ray starts,
without Ray. A point of a stage's space becomes a trial in ``harness.expansion``.

A stage's trials are of one kind. ``train`` trials run ``harness.train.train`` on a
``TrialConfig``; ``check`` trials run a numerical check of a theory claim
(``harness.theory.trial``). Both configs offer ``from_dict``, ``to_dict``,
``config_hash``, ``derived_seed``, ``epochs`` and ``repeat``.

Fault injection (for tests and for checking a cluster's retry path): a trial config key
``fault.fail_once_at_epoch = N`` (N >= 2) makes a trial that did not start from a
checkpoint raise at epoch N, before that epoch's checkpoint is saved. Tune then retries it
(``FailureConfig(max_failures=...)``) from epoch N-1's checkpoint, so epoch N is trained
again; the final record carries ``restored_from_epoch``. A second knob,
``fault.fail_while_exists = PATH``, fails every attempt at epoch 2 or later while that file
exists on the worker: an outside fault that outlasts the retries, which a user fixes before
``harness run --resume``. A third, ``fault.hold_while_exists = PATH``, holds a trial after
its first epoch while that file exists; if ``PATH.fifo`` is a named pipe it first writes
one line to it, so a test learns, without polling, that the trial is held (and that the
trials scheduled before it have finished).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.space import (
    VARIANT_KEY,
    Choice,
    Grid,
    IntRange,
    LogUniform,
    Uniform,
    is_domain,
)
from harness.study import Stage

FAULT_FAIL_ONCE_AT_EPOCH = "fault.fail_once_at_epoch"
FAULT_FAIL_WHILE_EXISTS = "fault.fail_while_exists"
FAULT_HOLD_WHILE_EXISTS = "fault.hold_while_exists"
# Set by the harness for a deterministic stage's trials (harness.halving), never by a study:
# the trial's draw index, the epoch its rung ends at, the checkpoint its last rung ended on.
TRIAL_INDEX = "harness.trial_index"
STOP_AT_EPOCH = "harness.stop_at_epoch"
CONTINUE_FROM = "harness.continue_from"
# Keys a trial's Tune config may hold besides its config keys: the trainable uses them itself.
TRAINABLE_KEYS = frozenset({FAULT_FAIL_ONCE_AT_EPOCH, FAULT_FAIL_WHILE_EXISTS,
                            FAULT_HOLD_WHILE_EXISTS, TRIAL_INDEX, STOP_AT_EPOCH, CONTINUE_FROM})
SCHEDULERS = ("fifo", "asha")
SEARCHERS = ("grid", "random", "optuna")


@dataclass(frozen=True)
class TrialKind:
    """A kind's config class and run function, each behind a function that imports it
    when first needed (a real import, so validating a plan never imports what only a
    trial needs: the training loop and torch)."""

    name: str
    config_class: Callable[[], Any]  # the class: from_dict, to_dict, config_hash, ...
    run_function: Callable[[], Callable[..., dict[str, Any]]]  # run(config, report, ...)
    metric: str | None  # None: the config's task says
    mode: str | None


def _training_config() -> Any:
    from harness.config import TrialConfig

    return TrialConfig


def _training_run() -> Callable[..., dict[str, Any]]:
    from harness.train import train

    return train


def _check_config() -> Any:
    from harness.theory.trial import CheckConfig

    return CheckConfig


def _check_run() -> Callable[..., dict[str, Any]]:
    from harness.theory.trial import run_check

    return run_check


TRIAL_KINDS = {
    "train": TrialKind("train", _training_config, _training_run, None, None),
    "check": TrialKind("check", _check_config, _check_run, "agrees", "max"),
}


def trial_kind(name: str) -> TrialKind:
    if name not in TRIAL_KINDS:
        raise ConfigError(f"unknown trial kind {name!r}; choose one of: {', '.join(TRIAL_KINDS)}")
    return TRIAL_KINDS[name]


def _epochs_values(value: Any) -> list[int]:
    if isinstance(value, Grid | Choice):
        return [int(v) for v in value.values]
    if isinstance(value, IntRange):
        return [value.high]
    if isinstance(value, Uniform | LogUniform):
        raise ConfigError("epochs must be a constant, grid, choice or int_range, not a float range")
    return [int(value)]


def max_epochs(space: Mapping[str, Any], default: int = 10) -> int:
    """The most epochs any trial of a space can run (ASHA's max_t), variants included."""
    found = _epochs_values(space.get("epochs", default))
    variant = space.get(VARIANT_KEY)
    if isinstance(variant, Grid | Choice):
        found += [int(v["epochs"]) for v in variant.values if "epochs" in v]
    return max(found)


def stage_chooses(stage: Stage) -> str | None:
    """What in a stage chooses among configurations by its metric (successive halving stops
    the worse, a learning searcher draws near the better), or None."""
    if stage.scheduler == "asha":
        return "successive halving (scheduler asha)"
    if stage.searcher == "optuna":
        return "the optuna searcher"
    return None


def held_out_from_test(metric: str) -> bool:
    """Whether choosing on ``metric`` leaves the test split unseen: validation and training
    metrics do; test metrics and those computed from test images (a PSNR gain) do not."""
    return metric.startswith(("val_", "train_", "true_train_"))


def _space_values(space: Mapping[str, Any], key: str, default: Any) -> set[Any]:
    """Every value ``key`` takes in a space: its constant or domain values, and the variants'."""
    value = space.get(key, default)
    values = set(value.values) if isinstance(value, Grid | Choice) else {value}
    variant = space.get(VARIANT_KEY)
    if isinstance(variant, Grid | Choice):
        overriding = [v[key] for v in variant.values if key in v]
        if len(overriding) == len(variant.values):
            values = set()
        values |= set(overriding)
    return values


def stage_metric(stage: Stage, space: Mapping[str, Any]) -> tuple[str, str]:
    """(metric, mode) a stage's scheduler, searcher and progress table use: the stage's own
    if it names one, else its trial kind's, else its trials' task's: the selection metric
    (validation) when the trials hold out a validation split, else the report metric. A
    stage that chooses among configurations is refused a test metric."""
    kind = trial_kind(stage.trial)
    if kind.metric is not None and stage.metric is None:
        return kind.metric, kind.mode or "max"
    tasks = _stage_tasks(stage, space)
    sizes = _space_values(space, "val_size", 0)
    validated = all(isinstance(v, int) and v > 0 for v in sizes)
    if not validated and any(isinstance(v, int) and v > 0 for v in sizes):
        raise ConfigError(
            f"stage {stage.name!r} mixes trials with and without a validation split "
            f"(val_size {sorted(sizes)}): give them all one, so they are chosen alike"
        )
    if stage.metric is not None:
        metric, mode = stage.metric, stage.mode or "max"
        for task in tasks:
            if task.metrics and metric not in task.metrics:
                raise ConfigError(
                    f"stage {stage.name!r}: metric {metric!r} is not one task {task.name!r} "
                    f"reports; it reports {', '.join(task.metrics)}"
                )
    else:
        if validated:
            missing = sorted(t.name for t in tasks if not t.selection_metric)
            if missing:
                raise ConfigError(
                    f"stage {stage.name!r}: task {missing[0]!r} scores no validation split, "
                    "so val_size does not apply to it; drop val_size from the stage"
                )
        metrics = {(t.selection_metric if validated else t.metric, t.mode) for t in tasks}
        if len(metrics) != 1:
            raise ConfigError(
                f"stage {stage.name!r} mixes tasks with different metrics ({sorted(metrics)}); "
                "name the stage's metric and mode"
            )
        metric, mode = metrics.pop()
        mode = stage.mode or mode
    chooser = stage_chooses(stage)
    if chooser and tasks and not held_out_from_test(metric):
        raise ConfigError(
            f"stage {stage.name!r} chooses among configurations ({chooser}) on {metric}, a "
            "test metric: the test split is reported, never chosen on. Give its trials a "
            "validation split (val_size=N, e.g. a tenth of the training split) so it "
            "chooses on the validation metric"
        )
    return metric, mode


def _stage_tasks(stage: Stage, space: Mapping[str, Any]) -> list[Any]:
    """The task classes of a training stage's trials (none for other trial kinds)."""
    if stage.trial != "train":
        return []
    from harness.config import TrialConfig
    from harness.tasks import task_class

    names = _space_values(space, "task", TrialConfig.task)
    return [task_class(t) for t in sorted(n for n in names if isinstance(n, str))]


def check_stage(stage: Stage, space: Mapping[str, Any]) -> None:
    """Reject stage settings Tune would only complain about after Ray started."""
    trial_kind(stage.trial)
    if stage.scheduler not in SCHEDULERS:
        raise ConfigError(f"stage {stage.name!r}: scheduler must be one of {SCHEDULERS}")
    if stage.searcher not in SEARCHERS:
        raise ConfigError(f"stage {stage.name!r}: searcher must be one of {SEARCHERS}")
    if stage.mode not in (None, "min", "max"):
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
    if stage.search_batch < 0:
        raise ConfigError(f"stage {stage.name!r}: search_batch must be >= 0 (0: one batch)")
    if stage.scheduler == "asha":
        top = max_epochs(space)
        if not 1 <= stage.grace_period <= top or stage.reduction_factor < 2:
            raise ConfigError(
                f"stage {stage.name!r}: ASHA needs 1 <= grace_period <= epochs ({top}) "
                "and reduction_factor >= 2"
            )
    stage_metric(stage, space)


def canonical_space(space: Mapping[str, Any]) -> Any:
    """A JSON-able form of a resolved space (domains tagged by type), for fingerprints."""

    def form(value: Any) -> Any:
        if is_domain(value):
            fields = {k: form(v) for k, v in vars(value).items()}
            return {f"<{type(value).__name__}>": fields}
        if isinstance(value, Mapping):
            return {str(k): form(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
        if isinstance(value, tuple | list):
            return [form(v) for v in value]
        return value

    return form(dict(space))
