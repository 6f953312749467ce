"""`harness ui`: the MLflow server it starts and the URLs it prints.

MLflow 3.18's UI opens an experiment in its GenAI (traces) view whatever the experiment's
``mlflow.experimentKind`` tag says (a sidebar switch decides, default GenAI), and shows
no metric or param column in its runs table until the user picks them; docs/mlflow-ui.md
shows both. `harness ui` saves, per study and stage, an MLflow saved view (filter, sort
and columns: tests/test_ui_views.py reads them back) and prints the URLs that open them
in the "Model training" view, then a base URL that opens the experiments list there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from harness.cli import main  # noqa: E402
from harness.config import TrialConfig  # noqa: E402
from harness.tracking import Tracker, tracking_uri  # noqa: E402
from harness.train import train  # noqa: E402
from harness.ui import VIEW_TAG_PREFIX, runs_url, ui_links, varying_params  # noqa: E402

VIEW_TAG = VIEW_TAG_PREFIX + "harness-smoke-sweep"


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


def _trial(lr: float, repeat: int, trial_id: str) -> dict:
    """One real trial record: digits, a small MLP, one epoch."""
    config = {"dataset": "digits", "model": "mlp", "model.hidden": (16,), "epochs": 1,
              "lr": lr, "repeat": repeat, "device": "cpu"}  # fmt: skip
    record = train(TrialConfig.from_dict(config))
    record.update(study="tiny", profile="smoke", stage="sweep", trial_id=trial_id)
    return record


@pytest.fixture(scope="module")
def trials() -> list[dict]:
    return [_trial(0.05, 0, "t_00000"), _trial(0.1, 0, "t_00001"), _trial(0.1, 1, "t_00002")]


def _tiny(runs: Path, trials: list[dict]) -> Tracker:
    """A study's store as `harness run` leaves it: the experiment names its metric, the
    parent run holds the trial runs."""
    tracker = Tracker.open(runs, "tiny")
    tracker.start_parent("smoke", runs / "ray" / "tiny-smoke", {"overrides": {}, "stages": ["sweep"]})
    tracker.set_stage_metric("smoke", "sweep", "test_acc", "max")  # what the runner does
    tracker.log_trials(trials)
    return tracker


def _view(runs: Path, experiment_id: str) -> dict:
    """The experiment's saved view, read back from the store, its state decoded."""
    from mlflow import MlflowClient

    tags = MlflowClient(tracking_uri(runs)).get_experiment(experiment_id).tags
    envelope = json.loads(tags[VIEW_TAG])
    return {**envelope, "state": json.loads(envelope["state"])}


@pytest.mark.slow
def test_ui_prints_each_studys_stage_views_first_then_the_experiments_list(
    runs, trials, monkeypatch, capsys
):
    tracker = _tiny(runs, trials)
    Tracker.open(runs, "denoise").set_primary_metric("test_loss", "min")  # no trials yet
    argv, out = _ui(runs, monkeypatch, capsys)
    base = "http://127.0.0.1:5123"
    eid = tracker.experiment_id
    sweep = (f"{base}/#/experiments/{eid}/runs?workflowType=machine_learning"
             "&viewStateShareKey=harness-smoke-sweep&compareRunsMode=TABLE")  # fmt: skip
    denoise = Tracker.open(runs, "denoise").experiment_id
    sorted_only = (f"{base}/#/experiments/{denoise}/runs?workflowType=machine_learning"
                   "&orderByKey=metrics.%60test_loss%60&orderByAsc=true&compareRunsMode=CHART")  # fmt: skip
    home = f"MLflow UI: {base}/#/experiments?workflowType=machine_learning"
    assert out.startswith(
        "Each study's runs, one view per stage, best first on the metric it chose by:\n"
        f"  denoise\n    {sorted_only}\n"
        f"  tiny\n    smoke · sweep: 3 runs by test_acc: {sweep}\n"
        f"{home}  (the studies)\n"
        '  A study opened from there shows MLflow\'s GenAI page until you click "Model '
        'training" at the top of its sidebar once (the browser remembers it).\n'
    )
    # The view the link opens, as MLflow's UI reads a saved view (its content: test_ui_views).
    view = _view(runs, eid)
    assert isinstance(view["name"], str) and isinstance(view["createdAt"], int)
    assert view["state"]["searchFilter"] == "tags.profile = 'smoke' AND tags.stage = 'sweep'"
    assert "Default" not in out  # MLflow's own empty experiment is not a study
    # One uvicorn worker: MLflow's default of 4 never comes up on a busy 2-core machine;
    # and no job runner (8 processes for GenAI jobs), unless the user asks for it.
    assert argv[argv.index("--workers") + 1] == "1"
    assert os.environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"


@pytest.mark.slow
def test_a_store_where_the_views_cannot_be_saved_still_gets_sorted_links(
    runs, trials, monkeypatch, capsys
):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    tracker = _tiny(runs, trials[:1])

    def refuse(*_args, **_kwargs):
        raise MlflowException("attempt to write a readonly database")

    monkeypatch.setattr(MlflowClient, "set_experiment_tag", refuse)
    _argv, out = _ui(runs, monkeypatch, capsys)
    assert "could not save the tiny views: attempt to write a readonly database" in out
    assert (f"  tiny\n    http://127.0.0.1:5123/#/experiments/{tracker.experiment_id}/runs?"
            "workflowType=machine_learning&orderByKey=metrics.%60test_acc%60&orderByAsc=false"
            "&compareRunsMode=CHART\n") in out  # fmt: skip


def test_a_param_varies_when_its_values_differ_or_some_runs_lack_it():
    runs = [{"lr": "0.1", "epochs": "2", "model": "mlp"},
            {"lr": "0.1", "epochs": "3", "model": "mlp", "variant": "plain"}]  # fmt: skip
    assert varying_params(runs) == ["epochs", "variant"]
    assert varying_params([]) == [] and varying_params(runs[:1]) == []


def test_the_installed_mlflow_ui_reads_saved_views_from_the_url_and_experiment_tags():
    """What the links rely on, in MLflow's prebuilt UI: the ``viewStateShareKey`` URL
    parameter and the ``mlflow.sharedViewState.`` experiment tags. An MLflow that drops
    them fails here rather than silently opening a table without the columns."""
    import mlflow

    build = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    (bundle,) = build.glob("main.*.js")
    text = bundle.read_text(encoding="utf-8", errors="replace")
    assert '"viewStateShareKey"' in text and f'"{VIEW_TAG_PREFIX}"' in text
    # The UI state a saved view restores: its columns, their order and widths.
    assert '"selectedColumns","columnOrder","columnWidths"' in text
    # The search facets it restores (a chunk of its own): the stage filter and the sort.
    chunks = (path.read_text(encoding="utf-8", errors="replace") for path in build.glob("*.js"))
    assert any('["searchFilter","orderByKey","orderByAsc"' in chunk for chunk in chunks)


def test_ui_on_a_runs_folder_without_a_store_creates_none(runs, monkeypatch, capsys):
    argv, out = _ui(runs, monkeypatch, capsys)
    assert out.startswith("MLflow UI: http://127.0.0.1:5123/#/experiments?workflowType=")
    assert "#/experiments/" not in out
    assert not (runs / "mlflow.db").exists()
    assert ui_links(tracking_uri(runs), "http://x") == []


def test_ui_leaves_a_users_job_execution_setting_alone(runs, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")
    _ui(runs, monkeypatch, capsys)
    assert os.environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"


def test_a_store_from_before_the_metric_tag_still_opens_the_model_training_view():
    assert runs_url("http://h:1", "7") == "http://h:1/#/experiments/7/runs?workflowType=machine_learning"
