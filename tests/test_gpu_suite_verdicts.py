"""The GPU suite's PASS / FAIL logic on made-up part results: each target's pass and fail
side, the exit code, and a part stopped when it overruns its share of the budget."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

# The suite is a package of the checkout (python -m benchmarks.gpu_suite), not of harness.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gpu_suite.config import TINY
from benchmarks.gpu_suite.context import Context
from benchmarks.gpu_suite.inputs import Data
from benchmarks.gpu_suite.suite import run_suite
from benchmarks.gpu_suite.targets import (
    FAIL,
    FULL_TARGETS,
    PASS,
    SKIP,
    TINY_TARGETS,
    Verdict,
    exit_code,
    part_verdict,
)


def ran(figures: dict) -> dict:
    return {"status": "ran", "why": "", "figures": figures}


def throughput(resident: float, loaders: dict[str, float]) -> dict:
    return ran({"result": {"images_per_second": {"harness_device_resident": resident},
                           "dataloader_pil_by_workers": loaders}})


def recipe(*accs: float, status: str = "completed") -> dict:
    return ran({"runs": [{"repeat": i, "status": status, "test_acc": a, "train_loss": 0.1}
                         for i, a in enumerate(accs)]})


def sharing(alone: float, per_trial: dict[int, list[float]]) -> dict:
    rows = [{"trials": 1, "aggregate_images_per_second": alone,
             "per_trial_images_per_second": [alone]}]
    rows += [{"trials": n, "aggregate_images_per_second": sum(v),
              "per_trial_images_per_second": v} for n, v in per_trial.items()]
    return ran({"rows": rows})


def verdict(part: str, entry: dict) -> Verdict:
    return part_verdict(part, entry, FULL_TARGETS)


def test_throughput_passes_at_10x_the_fastest_dataloader_and_fails_below():
    good = verdict("throughput", throughput(250_000, {"4": 12_000, "8": 24_000}))
    assert good.status == PASS and "10.4x" in good.figure and "8 workers" in good.figure
    # The design notes' H100 figures: 139k against 24k is 5.8x, under the target.
    low = verdict("throughput", throughput(139_000, {"4": 12_100, "8": 23_700, "16": 20_000}))
    assert low.status == FAIL and "5.9x" in low.figure and low.target == ">= 10.0x"
    assert verdict("throughput", throughput(math.nan, {"8": 1.0})).status == FAIL


def test_recipe_passes_at_90_3_percent_and_fails_below_diverged_nan_or_chance():
    good = verdict("recipe", recipe(0.906, 0.904, 0.905))
    assert good.status == PASS and "90.50%" in good.figure
    assert verdict("recipe", recipe(0.905, 0.899)).status == FAIL  # mean 90.2
    diverged = verdict("recipe", recipe(0.91, 0.1, status="diverged"))
    assert diverged.status == FAIL and "diverged" in diverged.figure
    nan = verdict("recipe", recipe(0.91, math.nan))
    assert nan.status == FAIL and "not finite" in nan.figure
    chance = verdict("recipe", recipe(0.95, 0.95, 0.10))
    assert chance.status == FAIL and "chance level" in chance.figure
    # --tiny judges finiteness only: chance-level toy data passes, a NaN still fails.
    assert part_verdict("recipe", recipe(0.1, 0.1), TINY_TARGETS).status == PASS
    assert part_verdict("recipe", recipe(math.nan), TINY_TARGETS).status == FAIL


def test_sharing_passes_within_1_5x_of_alone_up_to_four_per_card():
    good = verdict("sharing", sharing(10_000, {2: [9_000] * 2, 4: [7_000] * 4,
                                               8: [1_000] * 8}))  # 8 per card is not judged
    assert good.status == PASS and "1.43x slower at 4" in good.figure
    slow = verdict("sharing", sharing(10_000, {2: [9_000] * 2, 4: [6_000] * 4}))
    assert slow.status == FAIL and "worst 1.67x at 4" in slow.figure
    assert verdict("sharing", sharing(10_000, {})).status == FAIL  # nothing shared


def test_slices_fail_on_a_non_finite_metric_or_a_failed_study():
    run = {"compile": False, "status": "stopped", "epochs": [{"train_loss": 1.0}]}
    assert verdict("slices", ran({"studies": {"a": {"runs": [run]}}})).status == PASS
    nan = {**run, "epochs": [{"train_loss": math.nan}]}
    assert verdict("slices", ran({"studies": {"a": {"runs": [nan]}}})).status == FAIL
    broken = {"runs": [], "failed": True, "why": "does not plan"}
    assert verdict("slices", ran({"studies": {"a": broken}})).status == FAIL


def test_parts_that_did_not_run_fail_when_their_figure_is_missing():
    stopped = {"status": "stopped", "why": "recipe overran its share of 120s"}
    assert verdict("recipe", stopped).status == FAIL
    assert verdict("pricing", {"status": "failed", "why": "RuntimeError: x"}).status == FAIL
    assert verdict("recipe", {"status": "skipped", "why": "time budget: 3s left"}).status == FAIL
    assert verdict("recipe", {"status": "skipped", "why": "not selected (--parts x)"}).status == SKIP
    assert verdict("mlflow", {"status": "skipped", "why": "MLflow not importable"}).status == SKIP
    partial = {**sharing(10_000, {2: [9_000] * 2}), "status": "partial", "why": "skipped 4"}
    assert verdict("sharing", partial).status == FAIL


def test_exit_code_is_one_on_any_fail():
    assert exit_code([Verdict("a", PASS, ""), Verdict("b", SKIP, "")]) == 0
    assert exit_code([Verdict("a", PASS, ""), Verdict("b", FAIL, "")]) == 1


def context(tmp_path, **shares: float) -> Context:
    sizes = replace(TINY, budget_s=60.0, needs={}, shares={**TINY.shares, **shares}, grace_s=0.2)
    args = argparse.Namespace(data_root=None)
    return Context(args, sizes, torch.device("cpu"), Data(True, None), tmp_path / "out", {},
                   targets=FULL_TARGETS, started=time.perf_counter(),
                   selected=("throughput", "recipe", "sharing"))


def test_run_suite_prints_pass_and_fail_with_figures_and_exits_one(tmp_path, capsys):
    bodies = {"throughput": lambda ctx: throughput(300_000, {"8": 20_000})["figures"],
              "recipe": lambda ctx: recipe(0.80, 0.81)["figures"],
              "sharing": lambda ctx: sharing(10_000, {2: [9_000] * 2})["figures"]}
    assert run_suite(context(tmp_path), bodies) == 1
    out = capsys.readouterr().out
    assert "PASS throughput: device-resident 300,000 images/s = 15.0x" in out
    assert "FAIL recipe: mean test accuracy 80.50%" in out
    assert "PASS sharing:" in out
    state = json.loads((tmp_path / "out" / "suite.json").read_text())
    assert state["suite"]["exit_code"] == 1
    assert [v["status"] for v in state["verdicts"]] == [PASS, FAIL, PASS]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "## Verdicts (exit code 1)" in summary and "| recipe | **FAIL** |" in summary

    bodies["recipe"] = lambda ctx: recipe(0.906, 0.904)["figures"]
    assert run_suite(context(tmp_path), bodies) == 0


def checking_forever(ctx: Context) -> dict:
    while True:  # a part that checks its deadline every step, as the training loops do
        ctx.deadline.check()
        time.sleep(0.01)


def never_checking(_ctx: Context) -> dict:
    while True:  # a part stuck where nothing checks: the alarm stops it
        time.sleep(0.01)


@pytest.mark.parametrize("body", [checking_forever, never_checking])
def test_a_part_past_its_share_is_stopped_and_fails(tmp_path, capsys, body):
    ctx = context(tmp_path, recipe=0.3)
    bodies = {"throughput": lambda c: throughput(300_000, {"8": 20_000})["figures"],
              "recipe": body,
              "sharing": lambda c: sharing(10_000, {2: [9_000] * 2})["figures"]}
    assert run_suite(ctx, bodies) == 1
    entry = ctx.state["parts"]["recipe"]
    assert entry["status"] == "stopped" and "overran its share of 0.3s" in entry["why"]
    assert entry["seconds"] < 5  # stopped, not run to the suite's end
    assert ctx.state["parts"]["sharing"]["status"] == "ran"  # the next part still ran
    assert "FAIL recipe: stopped: recipe overran its share" in capsys.readouterr().out
