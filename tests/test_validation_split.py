"""The validation split: held out of the training split, never the test split; every choice a
stage makes (halving, a learning searcher, a top-k re-run, the best class-balanced setting)
is made on it, and the test metric is reported, never chosen on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.config import TrialConfig
from harness.data import load_dataset
from harness.errors import ConfigError
from harness.expansion import build_trial, check_validation_fits
from harness.pricing.placeholders import Reads, placeholder_records
from harness.pricing.stages import StageConfigs, enumerate_points
from harness.space import grid, variants
from harness.study import Stage, get_study, list_studies
from harness.train import train
from harness.trial_data import balanced_from_unused, prepare_trial_data, stratified_holdout
from harness.trials import held_out_from_test, stage_chooses, stage_metric

DIGITS = {"dataset": "digits", "model": "mlp", "device": "cpu", "epochs": 1}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _config(**extra) -> TrialConfig:
    return TrialConfig.from_dict({**DIGITS, **extra})


# ---------------------------------------------------------------- the split itself


def test_a_stratified_holdout_is_disjoint_seeded_and_keeps_class_shares() -> None:
    labels = torch.tensor([0] * 600 + [1] * 300 + [2] * 100)
    held, rest = stratified_holdout(labels, 100, 3, seed=7)
    assert len(held) == 100 and len(rest) == 900
    assert not set(held.tolist()) & set(rest.tolist())
    assert torch.bincount(labels[held], minlength=3).tolist() == [60, 30, 10]
    again, _ = stratified_holdout(labels, 100, 3, seed=7)
    other, _ = stratified_holdout(labels, 100, 3, seed=8)
    assert torch.equal(held, again) and not torch.equal(held, other)


def test_a_balanced_split_comes_only_from_images_the_training_set_left_out() -> None:
    labels = torch.arange(10).repeat_interleave(50)  # 50 of each class
    used = torch.cat([torch.nonzero(labels == c).flatten()[: 50 - 5 * c] for c in range(10)])
    val = balanced_from_unused(labels, used, 40, 10, seed=0)
    assert not set(val.tolist()) & set(used.tolist())
    # Four a class where four are left; class 0 kept all its images and gives none.
    assert torch.bincount(labels[val], minlength=10).tolist() == [0] + [4] * 9


def test_without_validation_the_data_is_what_it_was(digits) -> None:
    # val_size = 0 keeps every earlier config's hash, so its seed and its metrics.
    plain = _config(train_limit=500)
    assert plain.config_hash() == _config(train_limit=500, val_size=0).config_hash()
    assert "val_size" not in plain.semantic_dict()
    assert prepare_trial_data(digits, plain).val is None


def test_a_holdout_never_shares_an_image_with_training_and_a_subset_keeps_its_size(digits) -> None:
    data = prepare_trial_data(digits, _config(train_limit=500, val_size=135))
    assert len(data.train) == 500 and len(data.val) == 135
    # Digits holds a few exact duplicates; count images, not rows.
    train_rows = {bytes(x.flatten().tolist()) for x in data.train.images}
    val_rows = [bytes(x.flatten().tolist()) for x in data.val.images]
    whole = [bytes(x.flatten().tolist()) for x in digits.train.images]
    duplicated = {r for r in whole if whole.count(r) > 1}
    assert not {r for r in val_rows if r not in duplicated} & train_rows


def test_a_long_tail_trains_on_the_same_images_with_or_without_validation(digits) -> None:
    tail = {"imbalance": "exp", "imbalance_factor": 10}
    without = prepare_trial_data(digits, _config(**tail))
    with_val = prepare_trial_data(digits, _config(**tail, val_size=100))
    assert torch.equal(without.train.images, with_val.train.images)
    assert torch.equal(without.train.labels, with_val.train.labels)
    counts = with_val.val_class_counts(10)
    assert counts[0] == 0 and set(counts[1:]) == {10}  # the head class has none left


def test_label_noise_leaves_the_validation_labels_true(digits) -> None:
    noisy = prepare_trial_data(digits, _config(val_size=200, label_noise=1.0))
    clean = prepare_trial_data(digits, _config(val_size=200))
    assert torch.equal(noisy.val.labels, clean.val.labels)
    assert not torch.equal(noisy.train.labels, clean.train.labels)


def test_a_trial_reports_validation_metrics_and_its_split_sizes() -> None:
    record = train(_config(epochs=2, val_size=135, lr=0.05))
    final = record["final"]
    assert 0 <= final["val_acc"] <= 1 and final["val_loss"] > 0 and "test_acc" in final
    assert record["data"]["val_size"] == 135 and record["data"]["train_size"] == 1347 - 135
    assert sum(record["data"]["val_class_counts"]) == 135
    assert all("val_acc" in h for h in record["history"])


@pytest.mark.slow
def test_a_denoising_trial_scores_its_own_noisy_validation_copy() -> None:
    config = TrialConfig.from_dict({
        "task": "denoise", "dataset": "photos", "device": "cpu", "epochs": 1, "batch_size": 16,
        "model.features": 8, "model.depth": 2, "model.head_features": 16, "train_limit": 256,
        "val_size": 64, "task.eval_photos": False, "task.samples": 0,
    })
    record = train(config)
    assert record["data"]["val_size"] == 64 and record["data"]["train_size"] == 256
    assert record["final"]["val_psnr"] > 0 and record["final"]["val_psnr"] != record["final"]["test_psnr"]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(("value", "fragment"), [
    (-5, "val_size must be an integer >= 0"),
    ("1.5", "val_size must be an integer"),
])
def test_a_bad_validation_size_is_one_message(value, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        _config(val_size=value)


def test_a_validation_split_larger_than_its_pool_fails_at_plan_time() -> None:
    with pytest.raises(ConfigError, match="val_size 5000 is larger than the 1,346"):
        check_validation_fits(_config(val_size=5000))
    with pytest.raises(ConfigError, match="the images the long tail leaves out"):
        check_validation_fits(_config(val_size=1000, imbalance="exp", imbalance_factor=10))
    with pytest.raises(ConfigError, match="train_limit 1300 is more than the 1,247"):
        check_validation_fits(_config(val_size=100, train_limit=1300))
    check_validation_fits(_config(val_size=100, train_limit=1200))


@pytest.mark.slow
def test_the_command_line_refuses_an_oversized_validation_split_and_writes_nothing(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_RUNS", "HARNESS_RESULTS")}
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "cnn_search", "--profile", "smoke",
         "--set", "val_size=99999"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "val_size 99999 is larger than" in result.stderr
    assert result.stderr.count("harness: error:") == 1
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()


# ---------------------------------------------------------------- choosing


def test_a_stage_with_validation_chooses_on_it_and_reports_test() -> None:
    space = {**DIGITS, "val_size": 100, "lr": grid(0.01, 0.1)}
    assert stage_metric(Stage("s", space, scheduler="asha"), space) == ("val_acc", "max")
    plain = {**DIGITS, "lr": grid(0.01, 0.1)}
    assert stage_metric(Stage("g", plain), plain) == ("test_acc", "max")  # chooses nothing


@pytest.mark.parametrize(("stage", "space", "fragment"), [
    (Stage("h", {**DIGITS, "lr": grid(0.01, 0.1)}, scheduler="asha"), None,
     "chooses among configurations \\(successive halving.*on test_acc, a test metric"),
    (Stage("o", {**DIGITS, "val_size": 100}, searcher="optuna", metric="test_acc"), None,
     "the optuna searcher\\) on test_acc"),
    (Stage("m", {**DIGITS, "val_size": 100}, metric="val_psnr"), None,
     "metric 'val_psnr' is not one task 'classify' reports"),
    (Stage("x", {**DIGITS, "variant": variants({"val_size": 100}, {"lr": 0.1})}), None,
     "mixes trials with and without a validation split"),
])
def test_a_stage_may_not_choose_on_the_test_split(stage, space, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        stage_metric(stage, space or stage.space)


def _records(stage: Stage, space, seed_test: int) -> list[dict]:
    configs = StageConfigs([])
    for point in enumerate_points(space, seed=0):
        spec = build_trial(point, stage.trial)
        configs.items.append((spec.config, spec.label))
    records = placeholder_records(stage, space, configs, Reads())
    generator = torch.Generator().manual_seed(seed_test)
    for record in records:
        # The test metric scrambled: a builder that chose on it would change its choice.
        task_metric = "test_psnr" if record["config"].get("task") == "denoise" else "test_acc"
        record["final"][task_metric] = float(torch.rand((), generator=generator))
    return [dict(r) for r in records]


def _every_stage():
    for name in list_studies():
        study = get_study(name)
        for profile in study.profiles.values():
            yield name, profile


@pytest.mark.parametrize(("study", "profile"), [
    (n, p.name) for n, p in _every_stage()])
def test_no_study_chooses_on_a_test_metric(study, profile) -> None:
    """Every stage that chooses (halving, optuna) has a validation metric to choose on, and
    every stage built from earlier records builds the same space whatever the earlier
    trials' test metrics were."""
    stages = get_study(study).profile(profile).stages
    earlier_a: list[dict] = []
    earlier_b: list[dict] = []
    for stage in stages:
        if callable(stage.space):
            space_a, space_b = stage.space(earlier_a), stage.space(earlier_b)
            assert repr(space_a) == repr(space_b), (
                f"{study}/{profile} stage {stage.name!r} changes with the test metric")
        else:
            space_a = space_b = stage.space
        metric, _ = stage_metric(stage, space_a)
        if stage_chooses(stage):
            assert held_out_from_test(metric), f"{study}/{profile}/{stage.name} on {metric}"
        earlier_a += _records(stage, space_a, seed_test=1)
        earlier_b += _records(stage, space_b, seed_test=2)


def _search_record(hash_: str, val: float, test: float, stage: str = "search-fastnet") -> dict:
    return {"stage": stage, "status": "completed", "config_hash": hash_, "trial_id": hash_,
            "config": {"task": "classify", "model": "fastnet", "epochs": 4, "repeat": 0,
                       "val_size": 2000, "lr": val},
            "final": {"epoch": 4, "val_acc": val, "test_acc": test}}


def test_the_top_configurations_are_the_validation_best_and_rerun_without_the_holdout() -> None:
    from studies.cnn_search import top_configurations

    # Validation and test rank the six in opposite orders.
    records = [_search_record(f"h{i}", val=0.5 + i / 100, test=0.9 - i / 100) for i in range(6)]
    picked = top_configurations(records, k=2)
    assert [p["lr"] for p in picked] == [0.55, 0.54]
    assert all("val_size" not in p and "repeat" not in p for p in picked)


def test_the_class_balanced_setting_is_chosen_on_validation() -> None:
    from studies.imbalance import best_cb_settings

    def sweep(beta: float, val: float, test: float) -> dict:
        return {"stage": "cb-sweep", "status": "completed", "config_hash": str(beta),
                "config": {"task": "classify", "model": "resnet32", "loss": "cb",
                           "loss.head": "focal", "loss.beta": beta, "loss.gamma": 1.0},
                "final": {"epoch": 8, "val_acc": val, "test_acc": test}}

    records = [sweep(0.9, 0.40, 0.60), sweep(0.999, 0.50, 0.30)]
    assert best_cb_settings(records)[0]["loss.beta"] == 0.999


def test_a_choice_among_records_without_validation_is_refused() -> None:
    from studies.cnn_search import top_configurations

    record = _search_record("h0", 0.5, 0.5)
    del record["final"]["val_acc"]
    with pytest.raises(ConfigError, match="has no final val_acc: that stage held out no validation"):
        top_configurations([record])


def test_the_report_metric_is_not_the_chosen_metric() -> None:
    assert held_out_from_test("val_acc") and held_out_from_test("true_train_acc")
    assert not held_out_from_test("test_acc") and not held_out_from_test("psnr_gain")


def test_the_shipped_study_files_name_no_test_metric_in_a_choice() -> None:
    # The study files rank records only through harness.selection.
    for path in sorted((Path(__file__).resolve().parents[1] / "studies").glob("*.py")):
        text = path.read_text()
        for line in text.splitlines():
            if ".sort(" in line or "sorted(" in line or "max(" in line or "min(" in line:
                assert "test_acc" not in line and "test_psnr" not in line, (path.name, line)


def test_the_validation_caption_names_the_data_seed_each_repeat_drew() -> None:
    """A stage that redraws its data per repeat held out a different validation split in
    each repeat: the caption names the seeds the records drew with, not the config's base."""
    from harness.report.tables import validation_caption

    records = [{"stage": "main", "config": {"data_seed": 0, "data_seed_per_repeat": True},
                "data": {"val_size": 500, "data_seed": repeat}} for repeat in (0, 1)]
    caption = validation_caption(records)
    assert "500 (data seed 0) / 500 (data seed 1)" in caption
