"""The registered studies: every profile validates before any trial, and each study's smoke
profile runs for real on Ray Tune and writes the tables its summary promises."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pandas as pd
import pytest

from harness.expansion import sample_points, validate_space
from harness.plan import RunOptions
from harness.results import run_study
from harness.study import STUDIES, STUDY_MODULES_ENV, get_study, list_studies
from studies.cnn_search import doubling_effects, top_configurations
from studies.imbalance import best_cb_settings

REPO = Path(__file__).resolve().parents[1]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray")


SHIPPED = sorted(p.stem for p in (REPO / "studies").glob("*.py") if not p.stem.startswith("_"))


def _contributed() -> list[str]:
    """Studies registered by the modules named in $HARNESS_STUDIES (imported by conftest
    before collection): how a study kept outside the checkout joins these tests
    (docs/contributing.md). Test-only studies (tiny_study) are not among them."""
    modules = {n.strip() for n in os.environ.get(STUDY_MODULES_ENV, "").split(",") if n.strip()}
    return sorted(name for name in STUDIES.names()
                  if get_study(name).summary.__module__ in modules and name not in SHIPPED)


# Every rule below holds for each shipped study and each contributed one.
UNDER_TEST = SHIPPED + _contributed()


def test_every_shipped_study_module_registers_and_is_listed(capsys):
    from harness.cli import main

    # Tests may register extra, test-only studies; every module under studies/ must be there.
    assert set(SHIPPED) <= set(list_studies())
    assert main(["list", "--studies"]) == 0
    assert capsys.readouterr().out.split() == list_studies()


def test_noxfile_asks_the_registry_instead_of_naming_studies():
    source = (REPO / "noxfile.py").read_text()
    assert '"list", "--studies"' in source
    for name in SHIPPED:
        assert f'"{name}"' not in source, f"noxfile names study {name!r} itself"


@pytest.mark.parametrize("study_name", UNDER_TEST)
def test_every_profile_has_smoke_mini_paper_and_valid_static_stages(study_name):
    study = get_study(study_name)
    assert list(study.profiles) == ["smoke", "mini", "paper"]
    assert not study.profiles["smoke"].needs_cifar
    for profile in study.profiles.values():
        # needs_cifar says whether the profile's trials read CIFAR-10 (theory reads nothing).
        datasets = {point.get("dataset") for stage in profile.stages if not callable(stage.space)
                    for point in sample_points(stage.space)}
        assert profile.needs_cifar == ("cifar10" in datasets), profile.name
        for stage in profile.stages:
            if not callable(stage.space):
                validate_space(stage, stage.space)  # raises ConfigError on any bad point


@pytest.mark.parametrize("study_name", UNDER_TEST)
def test_every_study_has_a_narrative_and_judges_each_of_its_claims(study_name):
    # Without a narrative the paper lists the study as not run, whatever its results say.
    study = get_study(study_name)
    assert study.narrative is not None, f"study {study_name!r} has no narrative"
    assert study.title, f"study {study_name!r} has no title for its paper section"
    if study.claims:
        assert study.evidence is not None, f"study {study_name!r} states claims but no evidence"
        stages = {stage.name for profile in study.profiles.values() for stage in profile.stages}
        for claim in study.claims:
            assert claim.stage in stages, f"claim {claim.name!r} reads no stage of {study_name!r}"
        assert len({c.name for c in study.claims}) == len(study.claims), "two claims share a name"


def test_paper_imbalance_profile_is_the_published_recipe():
    stages = get_study("imbalance").profiles["paper"].stages
    point = sample_points(stages[0].space)[0]
    assert point["model"] == "resnet32" and point["epochs"] == 200 and point["batch_size"] == 128
    assert point["lr"] == 0.1 and point["warmup_epochs"] == 5 and point["weight_decay"] == 2e-4
    assert point["milestones"] == "160,180" and point["lr_decay"] == 0.01
    assert [s.name for s in stages] == ["cb-sweep", "main", "step"]


def _record(stage, config, acc, epoch=None, status="completed", config_hash=None):
    """A classification record whose validation accuracy is ``acc``; its test accuracy
    ranks the other way round, so a choice made on it would show."""
    config = {"model": "mlp", **config}
    return {"stage": stage, "status": status, "config": config,
            "config_hash": config_hash or str(sorted(config.items())),
            "final": {"val_acc": acc, "test_acc": 1.0 - acc,
                      "epoch": epoch or config.get("epochs", 1)}}


def test_top_configurations_skip_early_stopped_trials_and_rank_by_validation_accuracy():
    records = [
        _record("search-fastnet", {"epochs": 4, "lr": 0.1, "repeat": 0}, 0.9),
        _record("search-fastnet", {"epochs": 4, "lr": 0.2, "repeat": 0}, 0.95, epoch=1),  # stopped
        _record("search-seed-convnet", {"epochs": 4, "lr": 0.3, "repeat": 0}, 0.7),
        _record("baselines", {"epochs": 4, "lr": 0.4, "repeat": 0}, 0.99),  # not searched
    ]
    picked = top_configurations(records, k=5)
    assert [p["lr"] for p in picked] == [0.1, 0.3]
    assert all("repeat" not in p for p in picked)


def test_best_cb_setting_per_head_has_the_best_mean_validation_accuracy():
    def cb(head, beta, acc, repeat):
        return _record("cb-sweep", {"loss.head": head, "loss.beta": beta, "loss.gamma": 1.0,
                                    "repeat": repeat}, acc)
    records = [cb("softmax", 0.9, 0.50, 0), cb("softmax", 0.9, 0.70, 1),
               cb("softmax", 0.999, 0.62, 0), cb("softmax", 0.999, 0.62, 1),
               cb("focal", 0.99, 0.4, 0)]
    best = {v["loss.head"]: v for v in best_cb_settings(records)}
    assert best["softmax"]["loss.beta"] == 0.999  # mean accuracy 0.62 beats 0.60
    assert best["focal"]["loss.gamma"] == 1.0 and best["focal"]["label"].startswith("CB-focal")


def test_doubling_effects_recover_a_known_plane():
    rows = pd.DataFrame([(d, w) for d in (2, 4, 8) for w in (8, 16, 32)], columns=["depth", "width"])
    rows["accuracy (%)"] = 50 + 3.0 * pd.Series([1, 2, 3]).repeat(3).to_numpy() \
        + 1.0 * pd.Series([1, 2, 3] * 3).to_numpy()
    effects = doubling_effects(rows)
    assert effects["depth"] == pytest.approx(3.0) and effects["width"] == pytest.approx(1.0)


def _check_cnn_search(out: Path) -> None:
    baselines = pd.read_csv(out / "baselines.csv")
    assert len(baselines) == 6 and "reported" in baselines["model"].iloc[-1]
    grid = pd.read_csv(out / "depth_vs_width.csv")
    assert list(grid["conv layers"]) == [3, 6, 9]
    assert len(pd.read_csv(out / "leaderboard.csv")) >= 1


def _check_imbalance(out: Path) -> None:
    errors = pd.read_csv(out / "error_by_factor.csv")
    assert {"CE", "LDAM-DRW", "balanced softmax"} <= set(errors["loss"])
    assert any(label.startswith("CB-") for label in errors["loss"])
    per_class = pd.read_csv(out / "per_class.csv")
    assert per_class["loss"].iloc[0] == "CE"
    assert {"per_class", "cb_sensitivity"} <= {p.stem for p in out.glob("*.csv")}


def _check_denoising(out: Path) -> None:
    table = pd.read_csv(out / "psnr_by_noise.csv", dtype=str)
    ours = table[~table["noise"].str.contains("published")]
    # Impulse noise trains blind and is tested at p 0.7, where its median is biased too.
    assert set(ours["noise"]) == {"Gaussian (sigma 25)", "impulse (p 0.7)"}
    records = pd.read_csv(out / "records.csv")
    impulse_rows = records[records["config.task.noise"] == "impulse"]
    assert impulse_rows["noise.blind"].all() and (impulse_rows["noise.test_level"] == 0.7).all()
    assert "median is the clean value only for clean values in [0.29, 0.71]" in (
        out / "impulse_losses.md").read_text()
    assert ours["gap (noisy - clean)"].str.match(r"^[+-]\d").all()
    assert (ours["clean targets"].astype(float) > 0).all()
    assert table["noise"].str.contains("Noise2Noise on Kodak").any()
    impulse = pd.read_csv(out / "impulse_losses.csv")
    assert set(impulse["loss"]) == {"l2", "l1", "l0"}
    assert (out / "samples.png").exists() and (out / "psnr_vs_epoch.png").exists()


def _check_memorization(out: Path) -> None:
    table = pd.read_csv(out / "table1.csv", dtype=str)
    random = table[(table["model"] == "mlp 1x512") & (table["setting"] == "random labels")]
    # The smoke profile's promise: digits' random labels are memorized completely.
    assert float(random["train (%)"].iloc[0].split()[0]) == 100.0
    assert "published train / test (%)" not in table.columns  # CIFAR-10 figures, not digits'
    slowdown = pd.read_csv(out / "slowdown.csv", dtype=str)
    assert set(slowdown["setting"]) >= {"label noise 0", "label noise 1", "random pixels"}
    assert {"fig1a_loss_vs_steps", "fig1c_test_error_vs_label_noise"} <= {
        p.stem for p in out.glob("*.png")}


def _check_theory(out: Path) -> None:
    claims = pd.read_csv(out / "claims.csv")
    assert list(claims["claim"]) == list(range(1, 9))
    verdicts = dict(zip(claims["claim"], claims["verdict"], strict=True))
    assert verdicts[4].startswith("the write-up's number is wrong") and "5,610" in verdicts[4]
    assert verdicts[5].startswith("the write-up's number is wrong") and "3.099" in verdicts[5]
    assert verdicts[2].startswith("holds, but the write-up's derivation is wrong")
    assert all(verdicts[c] == "holds" for c in (1, 3, 6, 7, 8))


# Study-specific content on top of the checks every study gets; a study missing here still
# runs and is checked generically.
CONTENT_CHECKS = {
    "cnn_search": _check_cnn_search,
    "imbalance": _check_imbalance,
    "denoising": _check_denoising,
    "memorization": _check_memorization,
    "theory": _check_theory,
}


def _check_outputs(out: Path, records: list[dict]) -> None:
    """What every results folder promises: a records.csv row per trial; each table of the
    index in .csv (with rows), .md (captioned with the data) and .tex (labelled); each
    figure a real image with something drawn on it."""
    from PIL import Image

    from harness.report import data_caption

    assert len(pd.read_csv(out / "records.csv")) == len(records)
    index = (out / "index.md").read_text()
    tables = sorted(p.stem for p in out.glob("*.tex"))
    assert tables, "no tables"
    phrase = data_caption(records).split(" (")[0]
    for name in tables:
        assert f"[{name}]({name}.md)" in index
        assert len(pd.read_csv(out / f"{name}.csv")) >= 1
        md = (out / f"{name}.md").read_text()
        assert md.startswith("Table: ") and phrase.lower() in md.lower()
        assert rf"\label{{tab:{name}}}" in (out / f"{name}.tex").read_text()
    for png in out.glob("*.png"):
        assert f"]({png.name})" in index
        with Image.open(png) as image:
            assert image.width >= 300 and image.height >= 200
            low, high = image.convert("L").getextrema()
            assert high - low > 50, f"{png.name} is blank"


@needs_ray
@pytest.mark.slow
@pytest.mark.parametrize("study_name", UNDER_TEST)
def test_smoke_profile_runs_on_ray_and_writes_its_tables(study_name, ray_cluster, tmp_path,
                                                         monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    summary = run_study(
        RunOptions(study_name, "smoke", runs_dir=tmp_path / "runs", results_dir=tmp_path / "results",
                   tracking=False),
        echo=lambda _line: None,
    )
    out = tmp_path / "results" / study_name / "smoke"
    assert summary.records and summary.results_dir == out
    _check_outputs(out, summary.records)
    CONTENT_CHECKS.get(study_name, lambda _out: None)(out)
