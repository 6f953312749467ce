"""`harness ui`: the MLflow server it starts and the URLs it prints.

MLflow 3.17's UI opens an experiment in its GenAI (traces) view whatever the experiment's
``mlflow.experimentKind`` tag says (a sidebar switch decides, default GenAI), and nests
trial runs under their collapsed parent run; docs/mlflow-ui.md shows both. `harness ui`
prints, per study, the URL of its trials in the "Model training" view, best first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from harness.cli import main  # noqa: E402
from harness.tracking import Tracker, runs_url, tracking_uri, ui_links  # noqa: E402


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # setenv first, so that what `harness ui` sets is undone after the test as well.
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "unset")
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION")
    return tmp_path / "runs"


def _ui(runs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple:
    calls = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append(argv))
    main(["ui", "--port", "5123", "--runs-dir", str(runs)])
    (argv,) = calls
    return argv, capsys.readouterr().out


def test_ui_prints_each_studys_trials_best_first_in_the_model_training_view(
    runs, monkeypatch, capsys
):
    tracker = Tracker.open(runs, "tiny")
    tracker.set_primary_metric("test_acc", "max")  # what the runner does for each stage
    Tracker.open(runs, "denoise").set_primary_metric("test_loss", "min")
    argv, out = _ui(runs, monkeypatch, capsys)
    base = "http://127.0.0.1:5123"
    tiny = (f"{base}/#/experiments/{tracker.experiment_id}/runs?workflowType=machine_learning"
            "&orderByKey=metrics.%60test_acc%60&orderByAsc=false&compareRunsMode=CHART")  # fmt: skip
    assert f"\n  tiny: {tiny}\n" in out
    assert "orderByKey=metrics.%60test_loss%60&orderByAsc=true" in out  # a metric to minimize
    assert out.index("  denoise: ") < out.index("  tiny: ")
    assert "Default" not in out  # MLflow's own empty experiment is not a study
    # One uvicorn worker: MLflow's default of 4 never comes up on a busy 2-core machine;
    # and no job runner (8 processes for GenAI jobs), unless the user asks for it.
    assert argv[argv.index("--workers") + 1] == "1"
    assert os.environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"


def test_ui_on_a_runs_folder_without_a_store_creates_none(runs, monkeypatch, capsys):
    argv, out = _ui(runs, monkeypatch, capsys)
    assert "MLflow UI: http://127.0.0.1:5123\n" in out and "#/experiments" not in out
    assert not (runs / "mlflow.db").exists()
    assert ui_links(tracking_uri(runs), "http://x") == []


def test_ui_leaves_a_users_job_execution_setting_alone(runs, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")
    _ui(runs, monkeypatch, capsys)
    assert os.environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"


def test_a_store_from_before_the_metric_tag_still_opens_the_model_training_view():
    assert runs_url("http://h:1", "7") == "http://h:1/#/experiments/7/runs?workflowType=machine_learning"
