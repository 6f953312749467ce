"""A deterministic stage's decisions depend on the metrics alone (harness.halving): the
same study run twice gives the same trials and, on the CPU, the same metrics.

Asynchronous ASHA's choice depends on which trial reports first, and on 2 CPUs that
order is a race: a test cannot make two ASHA runs differ on demand. So the order
dependence is shown on constructed metrics fed to Ray's own ASHA scheduler, beside the
synchronous rung logic given the same metrics in any order; and a real study runs twice
through the runner, where the records must match exactly."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.halving import (
    SYNCHRONOUS_HALVING,
    RungTrial,
    promoted,
    run_batches,
    rung_epochs,
    runs_in_batches,
    scheduler_name,
)
from harness.space import grid, loguniform
from harness.study import STUDIES, Profile, Stage, Study, register_study

COMMON: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "model.hidden": (16,),
    "device": "cpu",
    "batch_size": 64,
    "schedule": "constant",
}


# ---------------------------------------------------------------- constructed metrics


def _asha_stops(order: Sequence[str], scores: dict[str, float]) -> set[str]:
    """The trials Ray's ASHA (the asynchronous option) stops at its first rung when the
    trials report there in ``order``."""
    from harness.tune import build_scheduler

    stage = Stage("s", {}, scheduler="asha", deterministic=False, reduction_factor=2)
    scheduler = build_scheduler(stage, {"epochs": 4})
    scheduler.set_search_properties("test_acc", "max")
    trials = {name: SimpleNamespace(trial_id=name) for name in scores}
    for trial in trials.values():
        scheduler.on_trial_add(None, trial)
    stopped = set()
    for name in order:
        result = {"training_iteration": 1, "test_acc": scores[name]}
        if scheduler.on_trial_result(None, trials[name], result) == "STOP":
            stopped.add(name)
    return stopped


SCORES = {"a": 0.9, "b": 0.5, "c": 0.6, "d": 0.8}


def test_asha_stops_depend_on_the_reporting_order():
    # Why the synchronous scheduler exists: the same metrics, two orders, two answers.
    assert _asha_stops("abcd", SCORES) == {"b", "c"}
    assert _asha_stops("bcad", SCORES) == set()


def test_a_synchronous_rung_keeps_the_same_trials_in_every_order():
    indexed = {i: SCORES[name] for i, name in enumerate("abcd")}
    kept = {
        tuple(promoted([(i, indexed[i]) for i in order], "max", 2))
        for order in itertools.permutations(indexed)
    }
    assert kept == {(0, 3)}  # a and d, whatever order they came in


def test_ties_go_to_the_earlier_draw_and_a_missing_metric_ranks_last():
    assert promoted([(3, 0.5), (1, 0.5), (2, 0.5)], "max", 3) == [1]
    assert promoted([(0, float("nan")), (1, 0.1), (2, None), (3, 0.05)], "max", 2) == [1, 3]
    assert promoted([(0, 2.0), (1, 1.0), (2, 1.0)], "min", 2) == [1, 2]


def test_rungs_are_ashas_milestones_below_the_last_epoch():
    assert rung_epochs(1, 3, 4) == [1, 3]
    assert rung_epochs(1, 2, 4) == [1, 2]
    assert rung_epochs(2, 3, 20) == [2, 6, 18]
    assert rung_epochs(4, 2, 4) == []


@dataclass
class FakeOutcome:
    trial_id: str
    record: dict[str, Any] | None
    error: str | None
    checkpoint: Any


def test_brackets_halve_rung_by_rung_and_the_searcher_learns_in_draw_order():
    # Accuracy of trial i at epoch e: trials 1 and 2 tie at every rung.
    accuracy = {0: 0.1, 1: 0.7, 2: 0.7, 3: 0.9, 4: 0.3, 5: 0.8}
    runs: list[tuple[str, list[int], int | None, list[Any]]] = []
    learnt: list[list[int]] = []

    def run_rung(name: str, trials: Sequence[RungTrial], stop_at: int | None) -> list[Any]:
        runs.append((name, [t.index for t in trials], stop_at, [t.continue_from for t in trials]))
        outcomes = []
        for trial in trials:
            epoch = stop_at or 4
            record = {"status": "stopped" if stop_at else "completed",
                      "final": {"epoch": epoch, "test_acc": accuracy[trial.index] + epoch / 100}}
            outcomes.append(FakeOutcome(f"{name}-{trial.index}", record, None,
                                        f"ckpt-{trial.index}-{epoch}"))
        return outcomes

    finals = run_batches(
        num_trials=6, batch_size=3, rungs=[1, 2], metric="test_acc", mode="max",
        reduction_factor=2, draw=lambda start, count: [{"i": start + k} for k in range(count)],
        learn=lambda results: learnt.append([index for index, _ in results]), run_rung=run_rung,
    )
    assert [(name, indices, stop) for name, indices, stop, _ in runs] == [
        ("batch0-rung0", [0, 1, 2], 1), ("batch0-rung1", [1, 2], 2), ("batch0-rung2", [1], None),
        ("batch1-rung0", [3, 4, 5], 1), ("batch1-rung1", [3, 5], 2), ("batch1-rung2", [3], None),
    ]
    assert runs[1][3] == ["ckpt-1-1", "ckpt-2-1"]  # promoted trials go on from their rung
    assert learnt == [[0, 1, 2], [3, 4, 5]]
    assert [o.record["status"] for o in finals] == [
        "stopped", "completed", "stopped", "completed", "stopped", "stopped"]
    assert [o.record["final"]["epoch"] for o in finals] == [1, 4, 2, 4, 1, 2]
    # A trial keeps the id of its first rung's run, where its folder starts.
    assert [o.trial_id for o in finals][:3] == ["batch0-rung0-0", "batch0-rung0-1",
                                                 "batch0-rung0-2"]


def test_which_stages_the_harness_drives():
    halving = Stage("h", {}, scheduler="asha")
    assert runs_in_batches(halving) and scheduler_name(halving) == SYNCHRONOUS_HALVING
    assert not runs_in_batches(replace(halving, deterministic=False))
    assert scheduler_name(replace(halving, deterministic=False)) == "asha"
    assert runs_in_batches(Stage("o", {}, searcher="optuna"))
    assert not runs_in_batches(Stage("g", {}, searcher="random"))  # deterministic as it is


# ---------------------------------------------------------------- a real study, twice


def build_study() -> Study:
    halving = Stage(
        "halving",
        {**COMMON, "epochs": 3, "lr": grid(0.1, 0.03, 0.01, 1e-6), "val_size": 135},
        scheduler="asha", grace_period=1, reduction_factor=2,
    )
    search = Stage(
        "search", {**COMMON, "epochs": 1, "lr": loguniform(0.01, 0.3), "val_size": 135},
        searcher="optuna", searcher_seed=11, num_samples=4, search_batch=2,
    )
    profiles = {
        "twice": Profile("twice", "synchronous halving, then TPE in batches", (halving, search)),
        "async": Profile("async", "asynchronous ASHA, still available",
                         (replace(halving, deterministic=False),)),
    }
    return Study("determinism", "test-only study: the same command twice", profiles,
                 summary=lambda _records, _profile: [])


if "determinism" not in STUDIES:
    register_study(build_study())


@pytest.fixture(scope="module")
def ray_instance(ray_cluster: str) -> None:
    """The session's Ray instance."""


def _run(root: Path, profile: str, tracking: bool = False) -> list[dict[str, Any]]:
    pytest.importorskip("ray.tune")
    from harness.plan import RunOptions
    from harness.results import run_study

    options = RunOptions("determinism", profile, runs_dir=root / "runs",
                         results_dir=root / "results", tracking=tracking)
    return run_study(options, echo=lambda _line: None).records


def _what_ran(records: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """Per stage and config: the status and every epoch's metrics (not the wall times)."""
    keys = ("train_loss", "train_acc", "val_acc", "test_loss", "test_acc")
    return {
        (r["stage"], r["config_hash"]): (
            r["status"], r["scheduler"], r.get("trial_index"),
            [[h[k] for k in keys] for h in r["history"]],
        )
        for r in records
    }


@pytest.mark.slow
def test_the_same_command_twice_gives_the_same_trials_and_metrics(ray_instance, tmp_path):
    pytest.importorskip("mlflow")
    first = _run(tmp_path / "first", "twice", tracking=True)
    second = _run(tmp_path / "second", "twice")
    assert _what_ran(first) == _what_ran(second)

    halving = sorted((r for r in first if r["stage"] == "halving"), key=lambda r: r["trial_index"])
    assert [r["trial_index"] for r in halving] == [0, 1, 2, 3]
    assert {r["scheduler"] for r in halving} == {SYNCHRONOUS_HALVING}
    # 4 trials -> 2 after epoch 1 -> 1 after epoch 2, which trains to its end.
    epochs = sorted(len(r["history"]) for r in halving)
    assert epochs == [1, 1, 2, 3]
    assert [r["status"] for r in halving if len(r["history"]) < 3] == ["stopped"] * 3
    winner = next(r for r in halving if len(r["history"]) == 3)
    assert winner["status"] == "completed" and "restored_from_epoch" not in winner
    assert winner["config"]["lr"] != 1e-6
    # At each rung the kept trials were the best there on the validation split.
    for rung_epoch in (1, 2):
        at_rung = [r for r in halving if len(r["history"]) >= rung_epoch]
        went_on = [r for r in at_rung if len(r["history"]) > rung_epoch]
        assert min(r["history"][rung_epoch - 1]["val_acc"] for r in went_on) >= max(
            r["history"][rung_epoch - 1]["val_acc"] for r in at_rung if r not in went_on)

    search = [r for r in first if r["stage"] == "search"]
    assert sorted(r["trial_index"] for r in search) == [0, 1, 2, 3]
    assert {r["scheduler"] for r in search} == {"fifo"}
    assert len({r["config"]["lr"] for r in search}) == 4

    from mlflow_store import search_runs

    from harness.tracking import tracking_uri

    runs = search_runs(tracking_uri(tmp_path / "first" / "runs"), "determinism")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.tags.get("scheduler") for r in children) == sorted(
        r["scheduler"] for r in first)


@pytest.mark.slow
def test_asynchronous_asha_is_still_there_and_says_so(ray_instance, tmp_path):
    records = _run(tmp_path, "async")
    assert len(records) == 4 and {r["scheduler"] for r in records} == {"asha"}
    assert all("trial_index" not in r for r in records)
    best = max(records, key=lambda r: r["final"]["val_acc"])
    assert best["status"] == "completed"
