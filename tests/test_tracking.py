"""MLflow logging from records, read back through mlflow's own search API (no Ray here)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from mlflow_store import search_runs  # noqa: E402

from harness.config import TrialConfig  # noqa: E402
from harness.tracking import TRIAL_KEY_TAG, Tracker, tracking_uri  # noqa: E402
from harness.train import train  # noqa: E402


@pytest.fixture(scope="module")
def records() -> list[dict]:
    out = []
    for i, lr in enumerate((0.05, 0.1)):
        config = TrialConfig.from_dict(
            {
                "dataset": "digits",
                "model": "mlp",
                "model.hidden": (16,),
                "epochs": 2,
                "lr": lr,
                "device": "cpu",
            }
        )
        record = train(config)
        record.update(study="tiny", profile="smoke", stage="sweep", trial_id=f"t_{i:05d}")
        out.append(record)
    out[1]["status"] = "stopped"  # as ASHA would leave it
    return out


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "runs"


def _open(store: Path) -> Tracker:
    tracker = Tracker.open(store, "tiny")
    tracker.start_parent(
        "smoke", store / "ray" / "tiny-smoke", {"overrides": {"epochs": 2}, "stages": ["sweep"]}
    )
    return tracker


def test_uri_is_an_absolute_sqlite_path_unless_the_environment_says_otherwise(store, monkeypatch):
    assert tracking_uri(store) == f"sqlite:///{(store / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking_uri(store) == "http://127.0.0.1:5999"


@pytest.mark.slow
def test_one_nested_run_per_trial_with_params_metrics_tags_and_artifacts(store, records, tmp_path):
    from mlflow import MlflowClient

    tracker = _open(store)
    tracker.log_trials(records)
    results = tmp_path / "results"
    results.mkdir()
    (results / "table.md").write_text("| a |\n")
    tracker.log_results(results)
    tracker.finish()

    uri = tracking_uri(store)
    assert (store / "mlflow.db").exists()
    runs = search_runs(uri)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.params["profile"] == "smoke"
    client = MlflowClient(uri)
    assert [f.path for f in client.list_artifacts(parent.info.run_id, "results")] == [
        "results/table.md"
    ]

    by_trial = {r.data.tags["trial_id"]: r for r in children}
    for record in records:
        run = by_trial[record["trial_id"]]
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["stage"] == "sweep" and tags["profile"] == "smoke" and tags["study"] == "tiny"
        assert tags["config_hash"] == record["config_hash"] and tags["seed"] == str(record["seed"])
        assert tags["status"] == record["status"] and tags["repeat"] == "0"
        assert tags["data_sha256"] == record["data"]["sha256"]
        assert tags["data_source"] == record["data"]["source"]
        assert float(run.data.params["lr"]) == record["config"]["lr"]
        assert run.data.params["model.hidden"] == "16"
        history = client.get_metric_history(run.info.run_id, "test_acc")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
            (h["epoch"], pytest.approx(h["test_acc"])) for h in record["history"]
        ]
        files = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert {"per_class_accuracy.csv", "confusion_matrix.csv"} <= files
        assert any(name.endswith(".json") for name in files)
        csv_text = Path(
            client.download_artifacts(run.info.run_id, "per_class_accuracy.csv", str(tmp_path))
        ).read_text()
        assert len(csv_text.strip().splitlines()) == 1 + len(record["class_names"])
        # The confusion matrix is data (the trial draws no figure): a row per true class.
        matrix = Path(
            client.download_artifacts(run.info.run_id, "confusion_matrix.csv", str(tmp_path))
        ).read_text().strip().splitlines()
        assert [row.split(",")[1:] for row in matrix[1:]] == [
            [str(n) for n in row] for row in record["confusion_matrix"]
        ]
    # Artifacts of a local store live under runs/, not in ./mlruns of the working directory.
    assert (store / "mlflow-artifacts" / "tiny").is_dir()


def test_relogging_a_trial_replaces_its_run_and_a_resumed_run_reuses_the_parent(store, records):

    first = _open(store)
    first.log_trials(records)
    first.finish("FAILED")
    again = _open(store)  # same state folder: the parent run id is kept there
    assert again.parent_run_id == first.parent_run_id
    again.log_trials(records[:1])
    again.finish()

    runs = search_runs(tracking_uri(store))
    keys = [r.data.tags.get(TRIAL_KEY_TAG) for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(keys) == ["smoke/sweep/t_00000", "smoke/sweep/t_00001"]
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"


def test_a_store_that_cannot_open_is_one_clear_error(tmp_path, monkeypatch):
    from harness.errors import HarnessError

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker}/sub/mlflow.db")
    with pytest.raises(HarnessError, match="cannot open the MLflow store"):
        Tracker.open(tmp_path, "tiny")


def test_sync_stage_fills_gaps_keeps_live_runs_and_drops_orphans(store, records):
    tracker = _open(store)
    live = tracker.log_trial(records[0])  # logged live as the trial finished
    orphan = dict(records[0], trial_id="t_99999")  # from an attempt the stage restarted
    tracker.log_trial(orphan)
    assert tracker.sync_stage(records, "smoke", "sweep") == 1
    runs = [r for r in search_runs(tracking_uri(store)) if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.tags[TRIAL_KEY_TAG] for r in runs) == [
        "smoke/sweep/t_00000",
        "smoke/sweep/t_00001",
    ]
    assert live in {r.info.run_id for r in runs}  # unchanged status: not logged twice
    changed = [dict(records[0], status="failed"), records[1]]
    assert tracker.sync_stage(changed, "smoke", "sweep") == 1
    runs = [r for r in search_runs(tracking_uri(store)) if "mlflow.parentRunId" in r.data.tags]
    assert {r.data.tags["status"] for r in runs} == {"failed", "stopped"}
    assert next(r for r in runs if r.data.tags["status"] == "failed").info.status == "FAILED"


def test_a_trial_run_left_running_by_a_killed_driver_is_replaced_on_sync(store, records):
    from mlflow import MlflowClient

    from harness.tracking import trial_key, trial_tags

    tracker = _open(store)
    assert "status" not in trial_tags(records[0])  # the status tag is written last
    # What a driver killed while logging left behind: a run with the trial's tags, status
    # included (as the old code wrote it at creation), never terminated, no artifacts.
    leftover = tracker.client.create_run(
        tracker.experiment_id,
        tags={**trial_tags(records[0]), "status": records[0]["status"],
              "mlflow.parentRunId": tracker.parent_run_id},
    ).info.run_id
    assert tracker.sync_stage(records, "smoke", "sweep") == 2  # both (re)logged
    runs = {r.data.tags[TRIAL_KEY_TAG]: r for r in search_runs(tracker.uri)
            if TRIAL_KEY_TAG in r.data.tags}
    replaced = runs[trial_key(records[0])]
    assert replaced.info.run_id != leftover and replaced.info.status == "FINISHED"
    assert MlflowClient(tracker.uri).get_run(leftover).info.lifecycle_stage == "deleted"
    assert {f.path for f in MlflowClient(tracker.uri).list_artifacts(replaced.info.run_id)}


def test_experiments_open_as_model_training_in_the_ui(store):
    from harness.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

    tracker = _open(store)
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"


@pytest.mark.parametrize("replace_with", ["sync_stage", "log_trials"])
@pytest.mark.slow
def test_a_run_left_running_is_marked_killed_before_it_is_deleted(store, records, replace_with):
    from mlflow import MlflowClient

    from harness.tracking import trial_tags

    tracker = _open(store)
    # The trial the driver was logging when it was killed: created, never terminated.
    leftover = tracker.client.create_run(
        tracker.experiment_id,
        tags={**trial_tags(records[0]), "mlflow.parentRunId": tracker.parent_run_id},
    ).info.run_id
    finished = tracker.log_trial(records[1])  # logged whole before the kill
    if replace_with == "sync_stage":
        tracker.sync_stage(records[:1], "smoke", "sweep")  # records[1] is no longer wanted
    else:
        tracker.log_trials(records)
    client = MlflowClient(tracker.uri)
    for run_id, status in ((leftover, "KILLED"), (finished, "FINISHED")):
        info = client.get_run(run_id).info
        assert (info.lifecycle_stage, info.status) == ("deleted", status)
        assert info.end_time is not None
