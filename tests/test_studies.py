"""The registered studies: every profile validates before any trial, and each study's smoke
profile runs for real on Ray Tune and writes the tables its summary promises."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from harness.plan import sample_points, validate_space
from harness.runner import RunOptions, run_study
from harness.study import get_study, list_studies
from studies.cnn_search import doubling_effects, top_configurations
from studies.imbalance import best_cb_settings

REPO = Path(__file__).resolve().parents[1]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray")


def test_noxfile_runs_every_registered_study():
    tree = ast.parse((REPO / "noxfile.py").read_text())
    assigned = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == "STUDIES"
    }
    # The study modules shipped under studies/ (tests may register extra, test-only studies).
    shipped = sorted(p.stem for p in (REPO / "studies").glob("*.py") if not p.stem.startswith("_"))
    assert sorted(assigned["STUDIES"]) == shipped
    assert set(shipped) <= set(list_studies())


@pytest.mark.parametrize("study_name", ["cnn_search", "imbalance"])
def test_every_profile_has_smoke_mini_paper_and_valid_static_stages(study_name):
    study = get_study(study_name)
    assert list(study.profiles) == ["smoke", "mini", "paper"]
    assert not study.profiles["smoke"].needs_cifar
    assert study.profiles["paper"].needs_cifar
    for profile in study.profiles.values():
        for stage in profile.stages:
            if not callable(stage.space):
                validate_space(stage, stage.space)  # raises ConfigError on any bad point


def test_paper_imbalance_profile_is_the_published_recipe():
    stages = get_study("imbalance").profiles["paper"].stages
    point = sample_points(stages[0].space)[0]
    assert point["model"] == "resnet32" and point["epochs"] == 200 and point["batch_size"] == 128
    assert point["lr"] == 0.1 and point["warmup_epochs"] == 5 and point["weight_decay"] == 2e-4
    assert point["milestones"] == "160,180" and point["lr_decay"] == 0.01
    assert [s.name for s in stages] == ["cb-sweep", "main", "step"]


def _record(stage, config, acc, epoch=None, status="completed", config_hash=None):
    return {"stage": stage, "status": status, "config": config,
            "config_hash": config_hash or str(sorted(config.items())),
            "final": {"test_acc": acc, "epoch": epoch or config.get("epochs", 1)}}


def test_top_configurations_skip_early_stopped_trials_and_rank_by_accuracy():
    records = [
        _record("search-fastnet", {"epochs": 4, "lr": 0.1, "repeat": 0}, 0.9),
        _record("search-fastnet", {"epochs": 4, "lr": 0.2, "repeat": 0}, 0.95, epoch=1),  # stopped
        _record("search-seed-convnet", {"epochs": 4, "lr": 0.3, "repeat": 0}, 0.7),
        _record("baselines", {"epochs": 4, "lr": 0.4, "repeat": 0}, 0.99),  # not searched
    ]
    picked = top_configurations(records, k=5)
    assert [p["lr"] for p in picked] == [0.1, 0.3]
    assert all("repeat" not in p for p in picked)


def test_best_cb_setting_per_head_has_the_lowest_mean_error():
    def cb(head, beta, acc, repeat):
        return _record("cb-sweep", {"loss.head": head, "loss.beta": beta, "loss.gamma": 1.0,
                                    "repeat": repeat}, acc)
    records = [cb("softmax", 0.9, 0.50, 0), cb("softmax", 0.9, 0.70, 1),
               cb("softmax", 0.999, 0.62, 0), cb("softmax", 0.999, 0.62, 1),
               cb("focal", 0.99, 0.4, 0)]
    best = {v["loss.head"]: v for v in best_cb_settings(records)}
    assert best["softmax"]["loss.beta"] == 0.999  # mean error 0.38 beats 0.40
    assert best["focal"]["loss.gamma"] == 1.0 and best["focal"]["label"].startswith("CB-focal")


def test_doubling_effects_recover_a_known_plane():
    rows = pd.DataFrame([(d, w) for d in (2, 4, 8) for w in (8, 16, 32)], columns=["depth", "width"])
    rows["accuracy (%)"] = 50 + 3.0 * pd.Series([1, 2, 3]).repeat(3).to_numpy() \
        + 1.0 * pd.Series([1, 2, 3] * 3).to_numpy()
    effects = doubling_effects(rows)
    assert effects["depth"] == pytest.approx(3.0) and effects["width"] == pytest.approx(1.0)


EXPECTED_OUTPUTS = {
    "cnn_search": ["baselines", "leaderboard", "depth_vs_width"],
    "imbalance": ["error_by_factor", "per_class", "cb_sensitivity"],
}


@needs_ray
@pytest.mark.parametrize("study_name", ["cnn_search", "imbalance"])
def test_smoke_profile_runs_on_ray_and_writes_its_tables(study_name, ray_cluster, tmp_path,
                                                         monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    summary = run_study(
        RunOptions(study_name, "smoke", runs_dir=tmp_path / "runs", results_dir=tmp_path / "results",
                   tracking=False),
        echo=lambda _line: None,
    )
    out = tmp_path / "results" / study_name / "smoke"
    frame = pd.read_csv(out / "records.csv")
    assert len(frame) == len(summary.records) > 0
    for name in EXPECTED_OUTPUTS[study_name]:
        for suffix in (".csv", ".tex", ".md"):
            assert (out / f"{name}{suffix}").stat().st_size > 0
        assert "scikit-learn digits" in (out / f"{name}.tex").read_text()
    if study_name == "cnn_search":
        baselines = pd.read_csv(out / "baselines.csv")
        assert len(baselines) == 6 and "reported" in baselines["model"].iloc[-1]
        grid = pd.read_csv(out / "depth_vs_width.csv")
        assert list(grid["conv layers"]) == [3, 6, 9]
        assert len(pd.read_csv(out / "leaderboard.csv")) >= 1
    else:
        errors = pd.read_csv(out / "error_by_factor.csv")
        assert {"CE", "LDAM-DRW", "balanced softmax"} <= set(errors["loss"])
        assert any(label.startswith("CB-") for label in errors["loss"])
        per_class = pd.read_csv(out / "per_class.csv")
        assert per_class["loss"].iloc[0] == "CE"
    assert list(out.glob("*.png"))
