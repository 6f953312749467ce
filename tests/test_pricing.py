"""`harness run --dry-run`: trial counts as Tune expands them, images per epoch, stages
built from earlier records, the estimate as a pure function of (plan, throughput tables),
the tables it prints, and the CLI without Ray."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_study  # noqa: F401 - registers the "tiny" study
from blocked_imports import BLOCK_RAY_MLFLOW_OPTUNA

from harness import pricing
from harness.cli import main
from harness.pricing import (
    CostPoint,
    ProfilePlan,
    Rate,
    StagePlan,
    ThroughputTable,
    Total,
    Workload,
    estimate_profile,
    plan_profile,
    render_estimate,
)
from harness.space import choice, grid
from harness.study import Profile, Stage, Study, get_study

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def _workload(model: str = "mlp", batch: int = 64) -> Workload:
    return Workload("classify", model, (("hidden", (32,)),), batch, (1, 8, 8), 10,
                    (("channels_last", True), ("compile", False), ("precision", "auto"),
                     ("threads", 1)))


def _plan(*stages: StagePlan, macs: dict | None = None) -> ProfilePlan:
    return ProfilePlan("s", "p", "a test profile", stages, {}, macs or {})


# ---------------------------------------------------------------------------- counting


def test_tiny_smoke_counts_every_kind_of_stage():
    study = get_study("tiny")
    plan = plan_profile(study, study.profile("smoke"))
    stages = {s.name: s for s in plan.stages}
    assert stages["sweep"].trials == 2 * 2  # lr grid of 2, repeats 2
    assert stages["asha"].trials == 2 * 4 and stages["asha"].upper_bound
    assert stages["asha"].epochs == 4
    assert stages["fault"].trials == 2  # a variant grid: the fault key is the trainable's own
    assert stages["optuna"].trials == 3  # num_samples; an optuna choice is no grid
    assert stages["rerun"].trials == 1 and stages["rerun"].depends_on == ("sweep",)
    # digits: 1,347 training images, no subset, no tail; the choosing stages hold out 135
    assert {p.train_images for s in plan.stages for p in s.points} == {1347, 1347 - 135}
    for stage in plan.stages:  # the cost points stand for every trial of their stage
        assert math.isclose(sum(p.weight for p in stage.points), stage.trials)


def test_an_override_collapses_a_grid_and_a_grid_under_optuna_is_a_choice():
    space = {"dataset": "digits", "model": "mlp", "epochs": 1, "lr": grid(0.05, 0.1),
             "model.hidden": choice((16,), (32,))}
    study = Study("t", "", {"p": Profile("p", "", (
        Stage("g", space, repeats=3, num_samples=2),
        Stage("o", {**space, "lr": 0.1, "batch_size": grid(32, 64), "val_size": 135}, searcher="optuna",
              num_samples=5),
    ))}, lambda records, profile: [])
    plan = plan_profile(study, study.profile("p"))
    assert [s.trials for s in plan.stages] == [2 * 3 * 2, 5]
    plan = plan_profile(study, study.profile("p"), {"lr": 0.1})
    assert plan.stages[0].trials == 3 * 2
    # Every batch size x width of the optuna stage is priced, each for a quarter of its trials.
    shares = {(p.workload.batch_size, p.workload.options): p.weight for p in plan.stages[1].points}
    assert len(shares) == 4 and set(shares.values()) == {5 / 4}


def test_a_builder_that_cannot_resolve_is_reported_not_guessed():
    def needs_real_metrics(records):
        return {"lr": max(r["final"]["loss_at_step_7"] for r in records)}

    study = Study("t", "", {"p": Profile("p", "", (
        Stage("first", {"dataset": "digits", "model": "mlp", "epochs": 1}),
        Stage("second", needs_real_metrics),
    ))}, lambda records, profile: [])
    second = plan_profile(study, study.profile("p")).stages[1]
    assert second.trials is None and second.depends_on == ("first",)
    assert "loss_at_step_7" in second.error
    estimate = estimate_profile(_plan(second), None, None)
    assert estimate.unknown_trials
    assert "not resolved before they run" in render_estimate(estimate)


def test_images_per_epoch_are_what_the_trial_prepares_and_records_carry_the_tasks_error():
    from harness.config import TrialConfig
    from harness.data import load_dataset
    from harness.trial_data import prepare_trial_data

    # digits is not exactly balanced: the long tail is capped by what each class has.
    space = {"dataset": "digits", "model": "mlp", "epochs": 1, "imbalance": "exp",
             "imbalance_factor": grid(3.0, 10.0)}
    seen = []

    def reads_test_error(records):
        seen.extend(r["final"]["test_error"] for r in records)
        return {"dataset": "digits", "model": "mlp", "epochs": 1}

    study = Study("t", "", {"p": Profile("p", "", (
        Stage("tail", space), Stage("next", reads_test_error)))}, lambda records, profile: [])
    plan = plan_profile(study, study.profile("p"))
    digits = load_dataset("digits")
    for factor in (3.0, 10.0):
        config = TrialConfig.from_dict({**space, "imbalance_factor": factor})
        prepared = len(prepare_trial_data(digits, config).train)
        assert any(p.train_images == prepared for p in plan.stages[0].points), (factor, prepared)
    assert len({p.train_images for p in plan.stages[0].points}) == 2
    # The placeholder records' test_error is derived by the task (1 - test_acc), as in a trial.
    assert plan.stages[1].trials == 1 and len(seen) == 2 and all(0 <= e <= 1 for e in seen)


@pytest.fixture(scope="module")
def imbalance_paper() -> ProfilePlan:
    study = get_study("imbalance")
    return plan_profile(study, study.profile("paper"))


def test_imbalance_paper_counts_and_long_tail_images(imbalance_paper):
    stages = {s.name: s for s in imbalance_paper.stages}
    # Cao et al.'s IF 100 long tail of CIFAR-10: 5000, 2997, ..., 50 = 12,406 images.
    assert {p.train_images for p in stages["cb-sweep"].points} == {12406}
    main_stage = stages["main"]
    assert main_stage.depends_on == ("cb-sweep",)
    # 5 fixed losses + the best of each of 3 class-balanced heads, 6 factors, 3 seeds.
    assert main_stage.trials == 8 * 6 * 3
    images = sorted({p.train_images for p in main_stage.points})
    assert images[0] < 12406 < images[-1] == 50000  # IF 200 ... IF 1 (the whole set)
    assert all(p.test_images == 10000 and p.epochs == 200 for p in main_stage.points)


def test_cnn_search_reseed_is_top_k_times_seeds_from_both_searches():
    import studies.cnn_search as cnn

    study = get_study("cnn_search")
    plan = plan_profile(study, study.profile("mini"))
    stages = {s.name: s for s in plan.stages}
    reseed = stages["top5-reseed"]
    assert reseed.trials == cnn.TOP_K * cnn.RESEED_REPEATS
    assert set(reseed.depends_on) == set(cnn.SEARCH_STAGES)
    assert stages["search-seed-convnet"].upper_bound
    # The seed-convnet search has hundreds of distinct nets: a seeded sample prices it.
    kept, distinct = stages["search-seed-convnet"].sampled
    assert kept <= pricing.MAX_POINTS < distinct
    assert {p.train_images for s in plan.stages for p in s.points} == {5000}  # train_limit


# ---------------------------------------------------------------------------- the estimate


def test_the_estimate_is_arithmetic_on_the_plan_and_the_tables():
    fast, slow = _workload("mlp", 64), _workload("mlp", 128)
    stage = StagePlan("a", 4, 2, points=(
        CostPoint(fast, 3.0, epochs=2, train_images=1000, test_images=300),
        CostPoint(slow, 1.0, epochs=2, train_images=1000, test_images=300, train_fraction=0.5),
    ))
    asha = StagePlan("b", 2, 5, scheduler="asha", points=(
        CostPoint(fast, 2.0, epochs=5, train_images=1000, test_images=300),))
    cpu = ThroughputTable("cpu", "cpu", {fast: Rate(100.0), slow: Rate(50.0)}, cpus=1)
    gpu = ThroughputTable("cuda", "Card", {fast: Rate(10000.0), slow: Rate(5000.0)})
    estimate = estimate_profile(_plan(stage, asha), cpu, gpu)
    a, b = estimate.stages
    # 3 trials x 2 epochs x (1000 + 300 / 3) / 100 + 1 x 2 x (500 + 100) / 50, and every
    # trial's start-up, and per epoch a report and a checkpoint (parameters unknown: 0 bytes)
    fixed = {e: pricing.TRIAL_START_SECONDS + e * (pricing.REPORT_SECONDS
                                                   + pricing.CHECKPOINT_FIXED_SECONDS)
             for e in (2, 5)}
    assert a.seconds == pytest.approx(3 * 2 * 1100 / 100 + 2 * 600 / 50 + 4 * fixed[2])
    assert a.gpu_hours == pytest.approx(
        (3 * 2 * 1100 / 10000 + 2 * 600 / 5000 + 4 * fixed[2]) / 3600)
    assert b.upper_bound and b.seconds == pytest.approx(2 * 5 * 1100 / 100 + 2 * fixed[5])
    assert estimate.seconds == Total(a.seconds + b.seconds, True)
    assert a.images == (1000, 1000) and not a.scaled
    # A CPU with 2 cores runs 2 one-CPU trials at once.
    two = estimate_profile(_plan(stage), ThroughputTable("cpu", "cpu", cpu.rates, cpus=2), None)
    assert two.stages[0].seconds == pytest.approx(a.seconds / 2)
    assert two.gpu_hours == Total(None, False)


def test_unmeasured_workloads_scale_by_macs_but_never_past_the_fastest():
    measured, big, small = _workload("mlp", 64), _workload("resnet32", 64), _workload("x", 64)
    table = ThroughputTable("cuda", "Card", {measured: Rate(1000.0, macs_per_image=2_000_000)})
    assert table.rate(measured, None) == (1000.0, False)
    assert table.rate(big, 8_000_000) == (250.0, True)  # 4x the MACs: a quarter the speed
    assert table.rate(small, 1_000) == (1000.0, True)  # overhead-bound: clamped
    assert table.rate(big, None) is None
    stage = StagePlan("s", 1, 1, points=(CostPoint(big, 1.0, 1, 1000, 0),))
    estimate = estimate_profile(_plan(stage, macs={big: 8_000_000}), table, table)
    fixed = pricing.trial_fixed_seconds(1, None)
    assert estimate.stages[0].scaled and estimate.stages[0].seconds == pytest.approx(4.0 + fixed)
    assert f"~{4 + fixed:.0f} s" in render_estimate(estimate)


def test_unpriced_stages_make_the_total_a_lower_bound():
    w = _workload()
    priced = StagePlan("priced", 1, 1, points=(CostPoint(w, 1.0, 1, 100, 0),))
    unknown = StagePlan("unknown", None, 0, depends_on=("priced",), error="KeyError: 'x'")
    checks = StagePlan("claims", 8, 1, trial_kind="check")
    table = ThroughputTable("cpu", "cpu", {w: Rate(100.0)})
    estimate = estimate_profile(_plan(priced, unknown, checks), table, None)
    # check trials do not count; unknown does
    fixed = pricing.trial_fixed_seconds(1, None)
    assert estimate.seconds == Total(pytest.approx(1.0 + fixed), False)
    text = render_estimate(estimate)
    assert "**9 + ?**" in text and f"≥ {1 + fixed:.0f} s" in text
    assert "check trials: not priced" in text


def test_the_table_names_stages_counts_bounds_and_the_gpu():
    w = _workload()
    stage = StagePlan("search", 40, 20, scheduler="asha", points=(CostPoint(w, 40.0, 20, 50000, 10000),),
                      sampled=(12, 481), depends_on=())
    gpu = ThroughputTable("cuda", "NVIDIA H200", {w: Rate(50000.0)})
    text = render_estimate(estimate_profile(_plan(stage), None, gpu))
    lines = text.splitlines()
    assert "est. GPU-h, NVIDIA H200" in lines[2]
    row = next(line for line in lines if line.startswith("| search |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["search", "40", "≤ 20", "50,000"]
    # 40 x (20 x (50000 + 10000 / 3) / 50000 s + its fixed costs)
    seconds = 40 * (20 * (50000 + 10000 / 3) / 50000 + pricing.trial_fixed_seconds(20, None))
    assert cells[5] == pricing.human_hours(seconds / 3600)
    assert "sample of 12 of 481" in cells[6]


# ---------------------------------------------------------------------------- throughput


def test_a_gpu_table_round_trips_and_the_newest_card_file_wins(tmp_path):
    w = _workload("resnet32", 128)
    older = ThroughputTable("cuda", "NVIDIA H100", {w: Rate(9000.0, 70_000_000)}, date="2026-10-01")
    newer = ThroughputTable("cuda", "NVIDIA H200", {w: Rate(12000.0, 70_000_000)}, date="2026-12-01",
                            sharing={"model": "resnet32", "speedup": {"1": 1.0, "4": 2.5}})
    cpu = ThroughputTable("cpu", "a CPU", {w: Rate(10.0)}, date="2027-01-01")
    for name, table in (("h100-a", older), ("h200-b", newer), ("cpu-c", cpu)):
        folder = tmp_path / "gpu" / name
        folder.mkdir(parents=True)
        (folder / "throughput.json").write_text(json.dumps(pricing.table_json(table)))
    found = pricing.find_gpu_table(tmp_path)
    assert found == tmp_path / "gpu" / "h200-b" / "throughput.json"  # newest CUDA file
    loaded = pricing.load_table(found)
    assert loaded.device_name == "NVIDIA H200" and loaded.rates[w].images_per_second == 12000.0
    assert loaded.rates[w].macs_per_image == 70_000_000 and loaded.sharing["speedup"]["4"] == 2.5
    text = pricing.render_assumptions(None, loaded, [])
    assert "2.5x faster in aggregate at 4 per card" in text


def test_timing_uses_the_engine_and_the_cache_spares_a_second_timing(tmp_path):
    study = get_study("tiny")
    plan = plan_profile(study, study.profile("quick"))
    cache = tmp_path / "cache.json"
    first = pricing.measure([plan], budget_s=60, cache=cache)
    (workload,) = plan.examples
    assert first.rates[workload].origin == "timed" and first.rates[workload].images_per_second > 0
    again = pricing.measure([plan], budget_s=0, cache=cache)  # no time to time: cache only
    assert again.rates[workload].origin == "cache"
    assert again.rates[workload].images_per_second == pytest.approx(
        first.rates[workload].images_per_second, rel=1e-3)
    estimate = estimate_profile(plan, again, None)
    assert estimate.stages[0].seconds > 0


# ---------------------------------------------------------------------------- the CLI


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    env.update(HARNESS_STUDIES="tiny_study", PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]),
               HARNESS_RUNS=str(tmp_path / "runs"), HARNESS_RESULTS=str(tmp_path / "results"),
               **extra)
    return env


@pytest.mark.slow
def test_dry_run_prints_the_table_without_ray_or_mlflow(tmp_path):
    w = Workload("classify", "mlp", (("hidden", (32,)),), 64, (1, 8, 8), 10,
                 (("channels_last", True), ("compile", False), ("precision", "auto"),
                  ("threads", 1)))
    folder = tmp_path / "results" / "gpu" / "card-2026-12-01"
    folder.mkdir(parents=True)
    (folder / "throughput.json").write_text(json.dumps(pricing.table_json(
        ThroughputTable("cuda", "Test Card", {w: Rate(1e5, 5000)}, date="2026-12-01"))))
    code = BLOCK_RAY_MLFLOW_OPTUNA + """
import harness.cli
sys.exit(harness.cli.main(["run", "tiny", "--profile", "smoke", "--dry-run"]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env=_env(tmp_path, HARNESS_DRY_RUN_BUDGET="20"),
                            timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "| stage | trials | epochs |" in out and "est. GPU-h, Test Card" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| ---")}
    assert set(rows) >= {"sweep", "asha", "fault", "optuna", "rerun", "**total**"}
    assert "≤ 4" in rows["asha"] and "built from sweep" in rows["rerun"]
    assert "**18**" in rows["**total**"]
    assert "timed" in result.stderr  # the workloads were timed here
    assert list((tmp_path / "runs" / "pricing").glob("throughput-*.json"))  # and cached


def test_all_studies_prints_every_study_that_has_the_profile(tmp_path, capsys, monkeypatch):
    from harness.study import STUDIES

    for key, value in _env(tmp_path, HARNESS_DRY_RUN_BUDGET="0").items():
        monkeypatch.setenv(key, value)
    # A study whose profile does not validate is listed, not allowed to stop the others.
    broken = Study("broken", "", {"quick": Profile("quick", "", (
        Stage("only", {"dataset": "digits", "model": "mlp", "no_such_key": 1}),))},
        lambda records, profile: [])
    monkeypatch.setitem(STUDIES._entries, "broken", broken)
    assert main(["run", "--all-studies", "--profile", "quick", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tiny / quick" in out and "| **total** | **2** |" in out
    assert "- Skipped: cnn_search has no profile 'quick'." in out
    assert "- Skipped: broken: its quick profile does not validate:" in out
    assert "no_such_key" in out


@pytest.mark.parametrize(("args", "fragment"), [
    (["run", "--profile", "smoke"], "needs a study name"),
    (["run", "tiny", "--all-studies", "--profile", "smoke", "--dry-run"], "no study name"),
    (["run", "--all-studies", "--profile", "smoke"], "goes with --dry-run"),
])
def test_run_without_a_study_or_with_both_says_so(args, fragment, capsys):
    assert main(args) == 2
    assert fragment in capsys.readouterr().err


def test_without_gpu_figures_gpu_time_comes_from_the_h100_anchor_scaled_by_macs() -> None:
    from harness.pricing import ANCHOR_IMAGES_PER_SECOND, Workload, anchor_gpu_table, macs_of

    table = anchor_gpu_table()
    (anchor,) = table.rates
    assert table.rate(anchor, macs_of(anchor)) == (ANCHOR_IMAGES_PER_SECOND, False)
    heavier = Workload("denoise", "unet", (), 64, (3, 32, 32), 3)  # 178 M MACs against 118 M
    macs = macs_of(heavier)
    rate, scaled = table.rate(heavier, macs)
    assert scaled and rate == pytest.approx(ANCHOR_IMAGES_PER_SECOND * macs_of(anchor) / macs)
    assert "not measured by this project" in table.source
    assert "design notes" in table.source and "docs/DESIGN.md" not in table.source


# ---------------------------------------------------------------------------- what is counted


def test_resnet32_is_priced_slower_than_fastnet_per_image_by_its_launch_floor():
    from harness.pricing import ANCHOR_IMAGES_PER_SECOND, anchor_gpu_table, model_costs

    table = anchor_gpu_table()
    (fastnet,) = table.rates
    resnet = Workload("classify", "resnet32", (), 128, (3, 32, 32), 10)
    macs = pricing.macs_of(resnet)
    assert macs < pricing.macs_of(fastnet)  # by MACs alone it would be the faster one
    ops, parameters = model_costs(resnet)
    assert ops > model_costs(fastnet)[0] and parameters > 0
    rate, how = table.rate_detail(resnet, macs, ops)
    # 128 images per step of 3 x ops launches of 10 us: tens of thousands, not 139,000.
    assert how == "launches" and rate == pytest.approx(128 / (3 * ops * 10e-6))
    assert rate < ANCHOR_IMAGES_PER_SECOND / 2
    assert table.rate(resnet, macs, ops) == (rate, True)
    # A bigger batch spreads the launches: the floor rises with it.
    big = Workload("classify", "resnet32", (), 512, (3, 32, 32), 10)
    assert table.rate(big, macs, ops)[0] > rate
    # A CPU table has no launch floor; a measured rate is never floored.
    cpu = ThroughputTable("cpu", "cpu", {fastnet: Rate(100.0, pricing.macs_of(fastnet))})
    assert cpu.rate_detail(resnet, macs, ops)[1] != "launches"
    measured = ThroughputTable("cuda", "Card", {resnet: Rate(90_000.0, macs)})
    assert measured.rate(resnet, macs, ops) == (90_000.0, False)


def test_every_evaluation_pass_raises_the_estimate():
    w = _workload()
    table = ThroughputTable("cpu", "cpu", {w: Rate(100.0)})

    def seconds(**extra: int) -> float:
        point = CostPoint(w, 1.0, epochs=10, train_images=1000, test_images=300, **extra)
        return estimate_profile(_plan(StagePlan("s", 1, 10, points=(point,))), table,
                                None).stages[0].seconds

    plain = seconds()
    # the whole training split scored every epoch, at EVAL_SPEEDUP x the training speed
    assert seconds(train_eval_images=1000) == pytest.approx(plain + 10 * 1000 / 3 / 100)
    assert seconds(tta_images=6 * 300) == pytest.approx(plain + 6 * 300 / 3 / 100)  # once
    assert seconds(photo_images=500) == pytest.approx(plain + 10 * 500 / 3 / 100)


def test_the_plan_counts_train_eval_tta_and_photos_from_the_task_options():
    from harness.config import TrialConfig
    from harness.pricing import DatasetCounts, eval_extras

    counts = DatasetCounts((5000,) * 10, 10000, (3, 32, 32))
    base = {"dataset": "cifar10", "model": "resnet32"}
    assert eval_extras(TrialConfig.from_dict(base), counts) == pricing.EvalExtras()
    fitted = TrialConfig.from_dict({**base, "task.stop_at_train_acc": 1.0})
    assert eval_extras(fitted, counts).train_eval == 50000
    tta = TrialConfig.from_dict({**base, "task.tta": 2, "test_limit": 2000})
    assert eval_extras(tta, counts).tta == 6 * 2000
    denoise = TrialConfig.from_dict({"dataset": "cifar10", "model": "unet", "task": "denoise",
                                     "loss": "l2"})
    assert eval_extras(denoise, counts).photos == 2 * 427 * 640 // (32 * 32)
    # and the plan carries them into its cost points
    study = Study("fits", "", {"p": Profile("p", "", (Stage("only", {
        "dataset": "digits", "model": "mlp", "task.stop_at_train_acc": 1.0, "task.tta": 1}),))},
        lambda records, profile: [])
    (point,) = plan_profile(study, study.profile("p")).stages[0].points
    assert point.train_eval_images == point.train_images > 0
    assert point.tta_images == 2 * point.test_images > 0  # no validation split: test only


def test_checkpoints_and_start_up_are_counted_per_trial_and_epoch():
    assert pricing.checkpoint_seconds(1_000_000) > pricing.checkpoint_seconds(0)
    assert pricing.trial_fixed_seconds(200, 464_154) > pricing.trial_fixed_seconds(1, 464_154)
    assert pricing.trial_fixed_seconds(0, None) == pricing.TRIAL_START_SECONDS


@pytest.mark.slow
def test_the_dry_run_prints_rates_per_model_and_what_it_counts(tmp_path, capsys, monkeypatch):
    for key, value in _env(tmp_path, HARNESS_DRY_RUN_BUDGET="0").items():
        monkeypatch.setenv(key, value)
    assert main(["run", "cnn_search", "--profile", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Rates per model" in out
    rows = [line for line in out.splitlines() if line.startswith("| resnet32 bs 512 3x32x32 |")]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[4] == "not priced"  # nothing timed here with a budget of 0
    assert cells[5] == cells[3] + " (launch-bound floor)"  # resnet32 is held to its floor
    assert "What a trial's estimate counts" in out and "task.train_eval" in out
    assert f"process start-up {pricing.TRIAL_START_SECONDS:g} s per trial" in out
    assert "a checkpoint" in out and "TTA" in out
    assert "the project's design notes" in out
