"""A tiny study for the runner's tests: sklearn digits, a small MLP, seconds per trial.

Registered on import (idempotently, so pytest and $HARNESS_STUDIES can both import it).
Profiles:

- ``smoke``: a FIFO grid with seeds, an ASHA stage where a useless learning rate (1e-6)
  competes with a good one so some trials must stop early, a trial that fails once at
  epoch 2 (fault injection) beside the same trial unfaulted, a seeded Optuna search, and a callable stage that re-runs
  the best sweep config.
- ``resume``: two stages; one trial of the second fails at every attempt while the file
  named by ``$TINY_FAIL_FLAG`` exists (the external fault a user fixes before --resume).
- ``quick``: two one-epoch trials, for CLI round trips.
- ``long``: three trials one at a time, the last held after its first epoch while the file
  named by ``$TINY_HOLD_FLAG`` exists: the moment to interrupt with Ctrl-C.
- ``bench``: 20 one-epoch trials (benchmarks/ray_overhead.py).
"""

from __future__ import annotations

import os
from typing import Any

from harness.report import Table, completed, mean_sd, mean_sd_columns, records_frame
from harness.selection import best_first
from harness.space import choice, grid, loguniform
from harness.study import STUDIES, Profile, Stage, Study, register_study

COMMON: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "model.hidden": (32,),
    "device": "cpu",
    "batch_size": 64,
    "schedule": "constant",
}
VAL_SIZE = 135  # a tenth of digits' 1,347 training images: what the choosing stages choose on
GOOD_LR = 0.1
USELESS_LR = 1e-6  # learns nothing in a few epochs: ASHA must stop these early
FAIL_FLAG_ENV = "TINY_FAIL_FLAG"
HOLD_FLAG_ENV = "TINY_HOLD_FLAG"


def best_of_sweep(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The sweep config with the best validation accuracy, re-run with a fresh seed (repeat 7)."""
    sweep = [r for r in records if r.get("stage") == "sweep"]
    best = best_first(sweep)[0]
    return {**{k: v for k, v in best["config"].items() if k != "repeat"}, "repeat": 7}


def smoke_stages() -> tuple[Stage, ...]:
    return (
        Stage("sweep", {**COMMON, "epochs": 2, "lr": grid(0.05, GOOD_LR), "val_size": VAL_SIZE},
              repeats=2),
        Stage(
            "asha",
            {**COMMON, "epochs": 4, "lr": grid(GOOD_LR, USELESS_LR), "val_size": VAL_SIZE},
            repeats=4,
            scheduler="asha",
            grace_period=1,
            reduction_factor=2,
        ),
        # The same config twice, once failing at epoch 2 and retried from its checkpoint:
        # both ran in Ray workers alike, so their learning curves must be identical.
        Stage(
            "fault",
            {
                **COMMON,
                "epochs": 3,
                "lr": GOOD_LR,
                "variant": grid(
                    {"label": "faulted", "fault.fail_once_at_epoch": 2}, {"label": "plain"}
                ),
            },
        ),
        Stage(
            "optuna",
            {
                **COMMON,
                "epochs": 1,
                "lr": loguniform(0.01, 0.3),
                "model.hidden": choice((16,), (32,)),
                "val_size": VAL_SIZE,
            },
            searcher="optuna",
            searcher_seed=3,
            num_samples=3,
            max_concurrent=2,
        ),
        Stage("rerun", best_of_sweep),
    )


def flaky_space(_records: list[dict[str, Any]]) -> dict[str, Any]:
    # Read when the stage starts, so a test can point it at its own temporary file.
    flag = os.environ.get(FAIL_FLAG_ENV, "/nonexistent/tiny-fail-flag")
    return {
        **COMMON,
        "epochs": 3,
        "variant": grid(
            {"label": "steady", "lr": GOOD_LR},
            {"label": "flaky", "lr": 0.05, "fault.fail_while_exists": flag},
        ),
    }


def held_space(_records: list[dict[str, Any]]) -> dict[str, Any]:
    # Two trials that finish, then one held after its first epoch while $TINY_HOLD_FLAG
    # exists; one at a time, in this order (max_concurrent=1), so when the held trial
    # announces itself the other two have finished.
    flag = os.environ.get(HOLD_FLAG_ENV, "/nonexistent/tiny-hold-flag")
    return {
        **COMMON,
        "epochs": 3,
        "variant": grid(
            {"label": "first", "lr": 0.05},
            {"label": "second", "lr": GOOD_LR},
            {"label": "held", "lr": 0.08, "fault.hold_while_exists": flag},
        ),
    }


def resume_stages() -> tuple[Stage, ...]:
    return (
        Stage("first", {**COMMON, "epochs": 2, "lr": grid(0.05, GOOD_LR)}),
        Stage("second", flaky_space),
    )


def summary(records: list[dict[str, Any]], profile: str) -> list[Any]:
    frame = completed(records_frame(records))
    stats = mean_sd(frame, ["stage", "config.lr"], ["final.test_acc"])
    shown = mean_sd_columns(stats, {"final.test_acc": "test accuracy"}, digits=3)
    return [
        Table(
            "accuracy_by_lr",
            shown,
            caption=f"tiny study ({profile}): test accuracy by lr",
            best={"test accuracy": "max"},
        )
    ]


def build() -> Study:
    profiles = {
        "smoke": Profile("smoke", "grid + ASHA + fault + callable stage", smoke_stages()),
        "resume": Profile("resume", "two stages, one flaky trial", resume_stages()),
        "quick": Profile(
            "quick",
            "two one-epoch trials",
            (Stage("only", {**COMMON, "epochs": 1, "lr": grid(0.05, GOOD_LR)}),),
        ),
        "long": Profile(
            "long",
            "three trials run one at a time, the last held while a flag file exists",
            (Stage("long", held_space, max_concurrent=1),),
        ),
        "bench": Profile(
            "bench",
            "20 one-epoch trials",
            (Stage("bench", {**COMMON, "epochs": 1, "lr": grid(0.05, GOOD_LR)}, repeats=10),),
        ),
    }
    return Study("tiny", "test-only study on digits", profiles, summary)


if "tiny" not in STUDIES:
    register_study(build())
