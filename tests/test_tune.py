"""Real Ray Tune runs of the tiny study (digits, small MLP): records, ASHA, retries, resume,
results and MLflow. One local Ray instance serves the whole module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("ray.tune")
pytest.importorskip("mlflow")

import tiny_study  # noqa: E402
from mlflow_store import search_runs  # noqa: E402

from harness.plan import RunOptions  # noqa: E402
from harness.results import RunSummary, run_study  # noqa: E402
from harness.runner import TrialsFailed  # noqa: E402
from harness.tracking import tracking_uri  # noqa: E402

# Every test here runs on the session's Ray instance, started by the fixture below.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_instance(ray_cluster: str) -> None:
    """Every test here runs on the session's Ray instance."""


@pytest.fixture(scope="module", autouse=True)
def local_mlflow() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunSummary, Path]:
    root = tmp_path_factory.mktemp("smoke")
    options = RunOptions("tiny", "smoke", runs_dir=root / "runs", results_dir=root / "results")
    return run_study(options, echo=lambda _line: None), root


def _by_stage(summary: RunSummary, stage: str) -> list[dict]:
    return [r for r in summary.records if r["stage"] == stage]


def test_every_trial_leaves_one_complete_record(smoke):
    summary, root = smoke
    counts = {
        stage: len(_by_stage(summary, stage)) for stage in ("sweep", "asha", "fault", "rerun")
    }
    assert counts == {"sweep": 4, "asha": 8, "fault": 2, "rerun": 1}
    for record in summary.records:
        assert record["study"] == "tiny" and record["profile"] == "smoke"
        assert record["trial_id"] and record["status"] in ("completed", "stopped")
        epochs = [h["epoch"] for h in record["history"]]
        assert epochs == list(range(1, len(epochs) + 1))
        if record["status"] == "completed":
            assert len(epochs) == record["config"]["epochs"]
        assert record["final"]["test_acc"] == record["history"][-1]["test_acc"]
        assert len(record["per_class_accuracy"]) == 10
    on_disk = sorted((root / "runs" / "records" / "tiny" / "smoke").rglob("*.json"))
    assert len(on_disk) == len(summary.records) == 18
    assert {json.loads(p.read_text())["trial_id"] for p in on_disk} == {
        r["trial_id"] for r in summary.records
    }
    assert all(r["status"] == "completed" for r in _by_stage(summary, "sweep"))
    assert sorted(r["config"]["repeat"] for r in _by_stage(summary, "sweep")) == [0, 0, 1, 1]


def test_halving_stops_the_same_trials_every_time(smoke):
    # The stage is deterministic (the default): synchronous halving, rung by rung. 8 trials
    # (lr 0.1 or a useless 1e-6, 4 seeds each) -> the best 4 after epoch 1 -> the best 2
    # after epoch 2, which train to epoch 4; what stops depends on the metrics alone.
    summary, _ = smoke
    asha = _by_stage(summary, "asha")
    assert {r["scheduler"] for r in asha} == {"synchronous-halving"}
    ran = sorted((r["config"]["lr"], len(r["history"]), r["status"]) for r in asha)
    assert ran == [(tiny_study.USELESS_LR, 1, "stopped")] * 4 + [
        (tiny_study.GOOD_LR, 2, "stopped"), (tiny_study.GOOD_LR, 2, "stopped"),
        (tiny_study.GOOD_LR, 4, "completed"), (tiny_study.GOOD_LR, 4, "completed")]
    for record in asha:
        assert record["final"]["epoch"] == record["history"][-1]["epoch"]
        assert "restored_from_epoch" not in record  # promoted is not restored after a failure
    # Halving chose on the validation split, never the test split.
    best = max(asha, key=lambda r: r["final"]["val_acc"])
    assert best["status"] == "completed" and len(best["history"]) == 4
    kept = [r for r in asha if len(r["history"]) == 4]
    dropped = [r for r in asha if len(r["history"]) == 2]
    assert min(r["history"][1]["val_acc"] for r in kept) >= max(
        r["history"][1]["val_acc"] for r in dropped)


def test_a_failed_trial_resumes_from_its_checkpoint_bit_identically(smoke):
    # The same config ran twice in Ray workers (same threads, same data): once failing at
    # epoch 2 and retried from epoch 1's checkpoint, once straight through.
    summary, _ = smoke
    trials = {r["label"]: r for r in _by_stage(summary, "fault")}
    faulted, plain = trials["faulted"], trials["plain"]
    assert faulted["status"] == plain["status"] == "completed"
    assert faulted["restored_from_epoch"] == 1 and "restored_from_epoch" not in plain
    assert faulted["config"] == plain["config"] and faulted["seed"] == plain["seed"]
    for key in ("test_acc", "test_loss", "train_loss", "train_acc"):
        assert [h[key] for h in faulted["history"]] == [h[key] for h in plain["history"]]
    assert faulted["per_class_accuracy"] == plain["per_class_accuracy"]


def test_a_callable_stage_gets_the_completed_records_of_earlier_stages(smoke):
    summary, _ = smoke
    (rerun,) = _by_stage(summary, "rerun")
    best = min(_by_stage(summary, "sweep"),
               key=lambda r: (-r["final"]["val_acc"], r["config_hash"]))
    assert rerun["config"] == {**best["config"], "repeat": 7}


def test_optuna_samples_the_space_and_tuples_survive_the_trip(smoke):
    summary, _ = smoke
    trials = _by_stage(summary, "optuna")
    assert all(0.01 <= r["config"]["lr"] <= 0.3 for r in trials)
    assert {tuple(r["config"]["model.hidden"]) for r in trials} <= {(16,), (32,)}
    assert len({r["config"]["lr"] for r in trials}) == 3


def test_a_seeded_optuna_searcher_suggests_the_same_configs():
    from harness.tune import build_search_alg, param_space

    stage = next(s for s in tiny_study.smoke_stages() if s.name == "optuna")

    def suggestions(seed: int) -> list[dict]:
        searcher = build_search_alg(replace(stage, searcher_seed=seed))
        searcher.set_search_properties("test_acc", "max", param_space(stage, stage.space))
        return [searcher.suggest(f"t{i}") for i in range(2)]

    assert suggestions(3) == suggestions(3) != suggestions(4)


def test_results_folder_holds_tables_and_one_csv_row_per_trial(smoke):
    import pandas as pd

    summary, root = smoke
    out = root / "results" / "tiny" / "smoke"
    assert summary.results_dir == out
    for suffix in (".csv", ".tex", ".md"):
        assert (out / f"accuracy_by_lr{suffix}").stat().st_size > 0
    frame = pd.read_csv(out / "records.csv")
    assert len(frame) == 18
    assert set(frame["stage"]) == {"sweep", "asha", "fault", "optuna", "rerun"}
    assert len(list((out / "records").rglob("*.json"))) == 18
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "staging left behind"


def test_mlflow_holds_a_parent_run_and_one_run_per_trial(smoke):
    from mlflow import MlflowClient

    summary, root = smoke
    uri = tracking_uri(root / "runs")
    assert summary.tracking_uri == uri
    runs = search_runs(uri)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 18
    client = MlflowClient(uri)
    parent_files = {f.path for f in client.list_artifacts(parents[0].info.run_id, "results")}
    assert {"results/records.csv", "results/accuracy_by_lr.tex"} <= parent_files
    fault = next(r for r in children if r.data.tags.get("label") == "faulted")
    assert fault.data.tags["restored_from_epoch"] == "1"
    assert len(client.get_metric_history(fault.info.run_id, "test_acc")) == 3
    statuses = sorted(r.data.tags["status"] for r in children)
    assert statuses == sorted(r["status"] for r in summary.records)


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.json"))}


def test_resume_continues_a_failed_run_without_retraining_finished_trials(tmp_path, monkeypatch):
    flag = tmp_path / "fault-flag"
    flag.write_text("the outside fault is present")
    monkeypatch.setenv(tiny_study.FAIL_FLAG_ENV, str(flag))
    runs, results = tmp_path / "runs", tmp_path / "results"
    earlier = results / "tiny" / "resume"
    earlier.mkdir(parents=True)
    (earlier / "records.csv").write_text("earlier results\n")
    options = RunOptions("tiny", "resume", runs_dir=runs, results_dir=results)

    with pytest.raises(TrialsFailed, match="1 of 2 trials failed.*fail_while_exists"):
        run_study(options, echo=lambda _line: None)
    assert (earlier / "records.csv").read_text() == "earlier results\n"
    assert sorted(p.name for p in earlier.iterdir()) == ["records.csv"]
    records_dir = runs / "records" / "tiny" / "resume"
    before = _snapshot(records_dir)
    first_before = {k: v for k, v in before.items() if k.startswith("first/")}
    assert len(first_before) == 2
    second = [json.loads(v) for k, v in before.items() if k.startswith("second/")]
    assert sorted((r["label"], r["status"]) for r in second) == [
        ("flaky", "failed"),
        ("steady", "completed"),
    ]
    steady_before = next(r for r in second if r["label"] == "steady")
    steady_dir = runs / "ray" / "tiny-resume" / "second" / f"trial_{steady_before['trial_id']}"
    steady_files = sorted(p.name for p in steady_dir.iterdir())

    flag.unlink()  # the user fixes the cause ...
    summary = run_study(
        RunOptions("tiny", "resume", runs_dir=runs, results_dir=results, resume=True),
        echo=lambda _line: None,
    )
    assert summary.stages_skipped == ["first"] and summary.stages_run == ["second"]
    after = _snapshot(records_dir)
    assert {k: v for k, v in after.items() if k.startswith("first/")} == first_before
    resumed = {
        r["label"]: r for r in (json.loads(v) for k, v in after.items() if k.startswith("second/"))
    }
    # The steady trial was not trained again: same record (wall time included), no new files.
    assert resumed["steady"] == steady_before
    assert sorted(p.name for p in steady_dir.iterdir()) == steady_files
    flaky = resumed["flaky"]
    assert flaky["status"] == "completed" and flaky["restored_from_epoch"] == 1
    assert [h["epoch"] for h in flaky["history"]] == [1, 2, 3]
    assert "error" not in flaky
    assert len(list((earlier / "records").rglob("*.json"))) == 4
    assert (earlier / "records.csv").read_text().count("\n") == 5

    children = [r for r in search_runs(tracking_uri(runs)) if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 4  # the first stage was logged once, not again on resume


def test_a_trial_the_cluster_cannot_place_is_refused_before_it_starts(tmp_path):
    import ray

    from harness.errors import HarnessError

    gpus = ray.cluster_resources().get("GPU", 0.0) + 1
    options = RunOptions(
        "tiny",
        "quick",
        gpus_per_trial=gpus,
        runs_dir=tmp_path / "runs",
        results_dir=tmp_path / "results",
        tracking=False,
    )
    with pytest.raises(HarnessError, match=r"asks for \d+ GPU per trial.*--gpus-per-trial 0"):
        run_study(options, echo=lambda _line: None)
    assert not (tmp_path / "runs" / "ray").exists()
