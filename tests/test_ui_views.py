"""One MLflow saved view per stage (harness.ui_views), read back from a real SQLite store
that real trial records were logged to: which runs each view shows (its filter, run
through MLflow's own search), what it sorts on, its columns, the trial runs' nesting
under their parent run, their outcome tag and their short names."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from harness.config import TrialConfig  # noqa: E402
from harness.outcome import trial_outcome  # noqa: E402
from harness.tracking import TRIAL_KEY_TAG, Tracker, tracking_uri  # noqa: E402
from harness.train import train  # noqa: E402
from harness.ui_views import (  # noqa: E402
    VIEW_TAG_PREFIX,
    reading_order,
    save_stage_views,
    short_run_names,
    trial_runs,
)

RUN_NAME = "attributes.`Run Name`"


def _train(stage: str, trial: int, profile: str = "smoke", **config) -> dict:
    """One real trial record: digits, a small MLP, two epochs."""
    base = {"dataset": "digits", "model": "mlp", "model.hidden": (16,), "epochs": 2,
            "lr": 0.1, "device": "cpu"}  # fmt: skip
    record = train(TrialConfig.from_dict({**base, **config}))
    record.update(study="tiny", profile=profile, stage=stage, trial_id=f"t{stage[:2]}_{trial:05d}")
    return record


@pytest.fixture(scope="module")
def stages() -> dict[str, list[dict]]:
    """A study's trials in two stages of one profile and one of another: ``sweep``
    chooses on validation (lr x repeat); ``grid`` reports test (lr x model.hidden) and
    holds a diverged, an at-chance and a failed trial; ``sweep`` of profile mini."""
    sweep = [_train("sweep", i, lr=lr, repeat=repeat, val_size=135)
             for i, (lr, repeat) in enumerate([(0.05, 0), (0.1, 0), (0.05, 1), (0.1, 1)])]  # fmt: skip
    # As ASHA leaves a trial it stopped at its first rung: its record after epoch 1.
    stopped = copy.deepcopy(sweep[0])
    stopped.update(trial_id="tsw_00004", status="stopped", scheduler="asha",
                   history=stopped["history"][:1])  # fmt: skip
    stopped["config"]["repeat"] = 2
    grid = [_train("grid", 0), _train("grid", 1, **{"model.hidden": (32,)}),
            _train("grid", 2, lr=1e6), _train("grid", 3, lr=1e-6)]  # fmt: skip
    failed = copy.deepcopy(grid[1])
    failed.update(trial_id="tgr_00004", status="failed")
    failed["config"]["lr"] = 0.2
    mini = [_train("sweep", 9, profile="mini", val_size=135)]
    return {"sweep": [*sweep, stopped], "grid": [*grid, failed], "mini": mini}


def _store(runs: Path, stages: dict[str, list[dict]], stage_metrics: bool = True) -> dict:
    """The store as `harness run` leaves it (runner: the stage's metric on the experiment
    before its trials; tracker: the trial runs under the profile's parent run)."""
    tracker = Tracker.open(runs, "tiny")
    parents = {"smoke": tracker.start_parent("smoke", runs / "s", {"stages": ["sweep", "grid"]})}
    for stage, metric in (("sweep", "val_acc"), ("grid", "test_acc")):
        if stage_metrics:
            tracker.set_stage_metric("smoke", stage, metric, "max")
        else:  # a store from before the runner recorded each stage's metric
            tracker.set_primary_metric(metric, "max")
        tracker.log_trials(stages[stage])
    mini = Tracker.open(runs, "tiny")
    parents["mini"] = mini.start_parent("mini", runs / "m", {"stages": ["sweep"]})
    if stage_metrics:
        mini.set_stage_metric("mini", "sweep", "val_acc", "max")
    mini.log_trials(stages["mini"])
    return {"experiment_id": tracker.experiment_id, "parents": parents}


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "runs"


def _client(runs: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri(runs))


def _save(runs: Path, experiment_id: str) -> list:
    client = _client(runs)
    return save_stage_views(client, client.get_experiment(experiment_id))


def _views(runs: Path, experiment_id: str) -> dict[str, dict]:
    """key -> the saved view as MLflow's UI reads it: the envelope, its state decoded."""
    tags = _client(runs).get_experiment(experiment_id).tags
    views = {}
    for tag, value in tags.items():
        if tag.startswith(VIEW_TAG_PREFIX):
            envelope = json.loads(value)
            views[tag.removeprefix(VIEW_TAG_PREFIX)] = {**envelope,
                                                         "state": json.loads(envelope["state"])}  # fmt: skip
    return views


def _shown(runs: Path, experiment_id: str, state: dict) -> list:
    """The runs a view lists, in its order: its filter and sort run through MLflow."""
    order = "ASC" if state["orderByAsc"] else "DESC"
    return list(_client(runs).search_runs([experiment_id], filter_string=state["searchFilter"],
                                          order_by=[f"{state['orderByKey']} {order}"]))  # fmt: skip


@pytest.mark.slow
def test_one_view_per_stage_filtered_to_it_sorted_on_its_metric_with_columns_in_reading_order(
    runs, stages
):
    store = _store(runs, stages)
    eid = store["experiment_id"]
    _save(runs, eid)
    views = _views(runs, eid)
    assert set(views) == {"harness-smoke-sweep", "harness-smoke-grid", "harness-mini-sweep"}

    # sweep chose on validation: sorted on val_acc, test_acc beside it, then the outcome,
    # then what varies in the stage (lr before the seed index); epochs, model and the other
    # params all its trials share are hidden.
    sweep = views["harness-smoke-sweep"]["state"]
    columns = ["metrics.`val_acc`", "metrics.`test_acc`", "tags.`outcome`",
               "params.`lr`", "params.`repeat`"]  # fmt: skip
    assert sweep == {
        "searchFilter": "tags.profile = 'smoke' AND tags.stage = 'sweep'",
        "orderByKey": "metrics.`val_acc`",
        "orderByAsc": False,
        "selectedColumns": columns,
        "columnOrder": [RUN_NAME, *columns],
        "columnWidths": {RUN_NAME: 300, "tags.`outcome`": 170},
    }
    assert views["harness-smoke-sweep"]["name"] == "sweep by val_acc (smoke, harness)"
    shown = _shown(runs, eid, sweep)
    assert {r.data.tags["trial_id"] for r in shown} == {r["trial_id"] for r in stages["sweep"]}
    val = [r.data.metrics["val_acc"] for r in shown]
    assert val == sorted(val, reverse=True)  # best first, on validation

    # grid chose nothing (a plain grid without validation): sorted on test_acc alone.
    grid = views["harness-smoke-grid"]["state"]
    assert grid["orderByKey"] == "metrics.`test_acc`" and grid["orderByAsc"] is False
    assert grid["selectedColumns"] == ["metrics.`test_acc`", "tags.`outcome`", "params.`lr`",
                                       "params.`model.hidden`"]  # fmt: skip
    assert {r.data.tags["trial_id"] for r in _shown(runs, eid, grid)} == {
        r["trial_id"] for r in stages["grid"]}  # fmt: skip
    # Another profile's stage of the same name is a view of its own.
    mini = _shown(runs, eid, views["harness-mini-sweep"]["state"])
    assert [r.data.tags["trial_id"] for r in mini] == ["tsw_00009"]


@pytest.mark.slow
def test_trials_nest_under_their_profiles_parent_run_which_no_stage_view_lists(runs, stages):
    store = _store(runs, stages)
    eid = store["experiment_id"]
    _save(runs, eid)
    everything = list(_client(runs).search_runs([eid], max_results=1000))
    parents = {r.info.run_id: r for r in everything if TRIAL_KEY_TAG not in r.data.tags}
    assert set(parents) == set(store["parents"].values())
    for run in everything:
        if run.info.run_id in parents:
            assert "mlflow.parentRunId" not in run.data.tags
        else:
            profile = run.data.tags["profile"]
            assert run.data.tags["mlflow.parentRunId"] == store["parents"][profile]
    listed = {r.info.run_id for view in _views(runs, eid).values()
              for r in _shown(runs, eid, view["state"])}  # fmt: skip
    assert listed == {r.info.run_id for r in everything} - set(parents)


@pytest.mark.slow
def test_each_trial_runs_outcome_is_a_tag_the_views_show(runs, stages):
    store = _store(runs, stages)
    outcomes = {r.data.tags["trial_id"]: r.data.tags["outcome"]
                for r in _client(runs).search_runs([store["experiment_id"]],
                                                   filter_string="tags.stage = 'grid'")}  # fmt: skip
    chance = stages["grid"][3]["final"]["test_acc"]
    assert chance <= 0.125  # lr 1e-6 learns nothing in two epochs on ten classes
    assert outcomes == {
        "tgr_00000": "completed",
        "tgr_00001": "completed",
        "tgr_00002": "diverged",
        "tgr_00003": "at chance",
        "tgr_00004": "failed",
    }
    stopped = _client(runs).search_runs([store["experiment_id"]],
                                        filter_string="tags.trial_id = 'tsw_00004'")  # fmt: skip
    assert stopped[0].data.tags["outcome"] == "stopped by halving"


@pytest.mark.slow
def test_trial_runs_get_short_names_that_say_what_varies_in_their_stage(runs, stages):
    store = _store(runs, stages)
    # A trial run the tracker is still logging (RUNNING) keeps its name and its status.
    live = _client(runs).create_run(store["experiment_id"], run_name="grid · live",
                                    tags={TRIAL_KEY_TAG: "smoke/grid/live", "profile": "smoke",
                                          "stage": "grid", "trial_id": "live"})  # fmt: skip
    _save(runs, store["experiment_id"])
    live = _client(runs).get_run(live.info.run_id)
    assert live.info.run_name == "grid · live" and live.info.status == "RUNNING"
    names = {r.data.tags["trial_id"]: r.info.run_name
             for r in _client(runs).search_runs([store["experiment_id"]],
                                                filter_string=f"tags.`{TRIAL_KEY_TAG}` != ''")}  # fmt: skip
    assert names == {
        "tsw_00000": "lr=0.05 · r0", "tsw_00001": "lr=0.1 · r0",
        "tsw_00002": "lr=0.05 · r1", "tsw_00003": "lr=0.1 · r1", "tsw_00004": "lr=0.05 · r2",
        "tgr_00000": "lr=0.1 · hidden=16", "tgr_00001": "lr=0.1 · hidden=32",
        "tgr_00002": "lr=1e+06 · hidden=16", "tgr_00003": "lr=1e-06 · hidden=16",
        "tgr_00004": "lr=0.2 · hidden=32",
        "tsw_00009": "mlp",  # alone in its stage: nothing varies, so what it is
        "live": "grid · live",
    }  # fmt: skip


@pytest.mark.slow
def test_views_are_rewritten_only_when_they_change_and_stale_harness_views_go(runs, stages):
    store = _store(runs, stages)
    eid = store["experiment_id"]
    client = _client(runs)
    old = VIEW_TAG_PREFIX + "harness-trials"  # the one study-wide view of earlier versions
    client.set_experiment_tag(eid, old, '{"name": "Trials", "createdAt": 1, "state": "{}"}')
    client.set_experiment_tag(eid, VIEW_TAG_PREFIX + "mine",
                              '{"name": "mine", "createdAt": 1, "state": "{}"}')
    _save(runs, eid)
    first = _views(runs, eid)
    assert "harness-trials" not in first and "mine" in first  # a user's own view stays
    _save(runs, eid)
    assert _views(runs, eid) == first  # same store: not even updatedAt moves
    # The mini profile's only trial run is deleted: its view goes; one gains a new param.
    mini = client.search_runs([eid], filter_string="tags.profile = 'mini'")[0]
    client.delete_run(mini.info.run_id)
    grid = client.search_runs([eid], filter_string="tags.trial_id = 'tgr_00000'")[0]
    client.log_param(grid.info.run_id, "note", "a param only this run has")
    _save(runs, eid)
    second = _views(runs, eid)
    assert set(second) == {"harness-smoke-sweep", "harness-smoke-grid", "mine"}
    assert second["harness-smoke-sweep"] == first["harness-smoke-sweep"]
    assert "params.`note`" in second["harness-smoke-grid"]["state"]["selectedColumns"]
    assert second["harness-smoke-grid"]["createdAt"] == first["harness-smoke-grid"]["createdAt"]


@pytest.mark.slow
def test_a_store_from_before_stage_metrics_sorts_on_validation_where_the_runs_have_it(
    runs, stages
):
    store = _store(runs, stages, stage_metrics=False)
    eid = store["experiment_id"]
    _save(runs, eid)
    views = _views(runs, eid)
    assert views["harness-smoke-sweep"]["state"]["orderByKey"] == "metrics.`val_acc`"
    assert views["harness-mini-sweep"]["state"]["orderByKey"] == "metrics.`val_acc`"
    assert views["harness-smoke-grid"]["state"]["orderByKey"] == "metrics.`test_acc`"


def test_parameters_read_most_informative_first():
    params = ["weight_decay", "repeat", "model.widths", "batch_size", "aaa", "loss.gamma",
              "lr", "model", "epochs", "loss"]  # fmt: skip
    assert reading_order(params) == ["model", "loss", "lr", "epochs", "batch_size",
                                     "weight_decay", "model.widths", "loss.gamma", "aaa",
                                     "repeat"]  # fmt: skip


def test_a_run_name_names_the_label_where_variants_differ_and_numbers_searches():
    from harness.ui_views import TrialRun

    def run(i: int, label: str | None, **params: str) -> TrialRun:
        tags = {"trial_id": f"ab_{i:05d}", **({"label": label} if label else {})}
        return TrialRun(f"id{i}", "long name", params, tags, frozenset())

    variants = [run(0, "CE", loss="ce", imbalance_factor="10", repeat="0"),
                run(1, "CE", loss="ce", imbalance_factor="100", repeat="0"),
                run(2, "LDAM-DRW", loss="ldam", imbalance_factor="10", repeat="0")]  # fmt: skip
    # The label explains the loss; the imbalance factor varies within a label.
    assert short_run_names(variants) == {"id0": "CE · imbalance_factor=10",
                                         "id1": "CE · imbalance_factor=100",
                                         "id2": "LDAM-DRW · imbalance_factor=10"}  # fmt: skip
    search = [run(i, None, lr=str(0.01 * (i + 1)), momentum=str(0.9 - i / 10),
                  weight_decay=str(i), **{"model.width": str(8 + i)}) for i in range(2)]  # fmt: skip
    # Four params vary (a search): its trial number first, then the two read first.
    assert short_run_names(search) == {"id0": "#0 · lr=0.01 · weight_decay=0",
                                       "id1": "#1 · lr=0.02 · weight_decay=1"}  # fmt: skip


def test_an_outcome_flags_chance_only_for_a_classifier():
    record = {"status": "completed", "final": {"test_acc": 0.1}, "history": [{"epoch": 3}]}
    assert trial_outcome(record) == "completed"  # no class names: not a classifier
    record["class_names"] = list("abcdefghij")
    assert trial_outcome(record) == "at chance"
    assert trial_outcome({**record, "final": {"test_acc": 0.2}}) == "completed"
    assert trial_outcome({**record, "final": {"val_acc": 0.2, "test_acc": 0.1}}) == "completed"
    assert trial_outcome({**record, "status": "stopped", "scheduler": "fifo"}) == "stopped early"
    assert trial_outcome({**record, "status": "diverged"}) == "diverged"


@pytest.mark.slow
def test_trial_runs_lists_no_parent_run(runs, stages):
    store = _store(runs, stages)
    found = trial_runs(_client(runs), store["experiment_id"])
    assert len(found) == len(stages["sweep"]) + len(stages["grid"]) + len(stages["mini"])
