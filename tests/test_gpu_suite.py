"""The GPU suite (`python -m benchmarks.gpu_suite`) at toy size on the CPU (`--tiny --device
cpu`): every part's code path runs, with Ray and MLflow blocked (the GPU machine has neither)
and with them; the files it writes hold the figures, the verdicts and the reasons for what it
skipped, and the exit code follows the verdicts. The PASS / FAIL logic itself is tested on
made-up results in tests/test_gpu_suite_verdicts.py."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from blocked_imports import BLOCK_RAY_MLFLOW_OPTUNA

REPO = Path(__file__).resolve().parents[1]
BLOCKER = BLOCK_RAY_MLFLOW_OPTUNA


def run_suite(tmp_path: Path, *args: str, block: bool) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "HARNESS_STUDIES")}
    env.update(HARNESS_RUNS=str(tmp_path / "runs"), HARNESS_RESULTS=str(tmp_path / "results"),
               PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    if block:
        # sitecustomize runs at every interpreter start: the suite and its worker processes.
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(BLOCKER)
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_suite", "--tiny", "--device", "cpu", "--out",
         str(out), *args],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    return result, out


def _plan_error(study: str, profile: str) -> str | None:
    """Why a study's profile does not plan in this checkout (None when it does)."""
    from harness.pricing import check_profile
    from harness.study import get_study

    try:
        check_profile(get_study(study).profile(profile), {})
    except Exception as error:  # noqa: BLE001 - any error is what the suite must report
        return str(error)
    return None


@pytest.mark.slow
def test_tiny_suite_without_ray_or_mlflow_runs_every_part_and_says_what_it_skipped(tmp_path):
    result, out = run_suite(tmp_path, block=True)
    state = json.loads((out / "suite.json").read_text())
    summary = (out / "summary.md").read_text()
    parts = state["parts"]
    assert set(parts) == {"throughput", "recipe", "sharing", "slices", "pricing", "mlflow"}
    assert state["suite"]["modules"]["ray"]["ok"] is False
    assert "blocked" in state["suite"]["modules"]["mlflow"]["why"]

    # 1. throughput: the device-resident pipeline and one DataLoader row per worker count,
    # beside the H100 anchor.
    assert parts["throughput"]["status"] == "ran", parts["throughput"]
    throughput = parts["throughput"]["figures"]["result"]
    assert throughput["images_per_second"]["harness_device_resident"] > 0
    assert set(throughput["dataloader_pil_by_workers"]) == {"1", "2"}
    assert all(v > 0 for v in throughput["dataloader_pil_by_workers"].values())
    assert "| device-resident (harness) |" in summary
    assert "| DataLoader + PIL, 2 workers |" in summary

    # 2. recipe: run from the preset, or skipped saying which preset is missing and why.
    recipe = parts["recipe"]
    if recipe["status"] == "ran":
        runs = recipe["figures"]["runs"]
        assert len(runs) == 2 and all(0 <= r["test_acc"] <= 1 and r["train_seconds"] > 0
                                      for r in runs)
        assert "| test accuracy (%) |" in summary and "90.61" in summary
    else:
        assert recipe["status"] == "skipped" and "FASTNET_RECIPE" in recipe["why"], recipe

    # 3. sharing: separate processes, and the summary says Ray is why.
    sharing = parts["sharing"]
    assert sharing["status"] == "ran" and sharing["figures"]["mode"] == "processes"
    assert "Ray not importable" in sharing["why"] and "blocked" in sharing["why"]
    rows = sharing["figures"]["rows"]
    assert [r["trials"] for r in rows] == [1, 2]
    assert all(r["aggregate_images_per_second"] > 0 for r in rows)
    assert len(rows[1]["per_trial_images_per_second"]) == 2
    assert f"| sharing | ran | {sharing['seconds']:.1f} | separate processes" in summary

    # 4. slices: a row for every registered study; compile-on says why it did not run here.
    from harness.study import get_study, list_studies

    slices = parts["slices"]["figures"]["studies"]
    # The suite's registry: the studies package's (this process may hold test studies too).
    assert set(slices) == {n for n in list_studies()
                           if get_study(n).summary.__module__.startswith("studies.")}
    ran = [n for n, e in slices.items() if any(r["status"].startswith("stopped") for r in e["runs"])]
    assert "cnn_search" in ran and "imbalance" in ran
    for name in ran:
        first = slices[name]["runs"][0]
        assert first["compile"] is False and len(first["epochs"]) == 2
        assert first["epochs"][-1]["images_per_second"] > 0
        assert "torch.compile on a CPU" in slices[name]["runs"][1]["why"]
        assert f"| {name} | {slices[name]['stage']} |" in summary
    assert "no training trials" in slices["theory"]["why"]
    for name, entry in slices.items():
        if entry.get("failed"):  # only a study that does not plan in this checkout
            assert _plan_error(name, "smoke") is not None, name
    planned_ok = all(not e.get("failed") and all(r["status"] != "failed" for r in e["runs"])
                     for e in slices.values())
    assert parts["slices"]["status"] == ("ran" if planned_ok else "failed")

    # 5. pricing: a throughput table the dry run can read, and the dry-run tables.
    pricing = parts["pricing"]
    assert pricing["status"] in ("ran", "partial"), pricing
    table = json.loads((out / "throughput.json").read_text())
    assert table["schema"] == "harness-throughput/1" and table["device"] == "cpu"
    assert table["workloads"] and all(w["images_per_second"] > 0 for w in table["workloads"])
    assert table["sharing"]["speedup"]["1"] == 1.0  # the sharing part's figures ride along
    assert "cnn_search / smoke" in summary and "| **total** |" in summary

    # 6. MLflow: skipped, and why.
    assert parts["mlflow"]["status"] == "skipped"
    assert "| mlflow | skipped | 0.0 | MLflow not importable" in summary

    # Verdicts: printed with their figures, kept in suite.json; --tiny judges finiteness, so
    # the measured parts pass on toy data, and the exit code is 1 exactly when one FAILs.
    verdicts = {v["part"]: v for v in state["verdicts"]}
    for part in ("throughput", "recipe", "sharing"):
        assert verdicts[part]["status"] == "PASS", verdicts[part]
        assert f"PASS {part}: {verdicts[part]['figure']}" in result.stdout
    assert verdicts["mlflow"]["status"] == "SKIP"
    failed = [v for v in verdicts.values() if v["status"] == "FAIL"]
    assert (verdicts["slices"]["status"] == "PASS") == planned_ok
    assert result.returncode == (1 if failed else 0), result.stdout[-3000:] + result.stderr
    assert state["suite"]["exit_code"] == result.returncode


@pytest.mark.slow
def test_a_figure_under_its_full_target_fails_the_command(tmp_path):
    # --tiny's recipe on random synthetic images is at chance: judged by the GPU targets it
    # FAILs, and the command says so and exits 1.
    result, out = run_suite(tmp_path, "--parts", "recipe", "--targets", "full", block=True)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    assert "FAIL recipe: at chance level" in result.stdout
    state = json.loads((out / "suite.json").read_text())
    assert [v["status"] for v in state["verdicts"] if v["part"] == "recipe"] == ["FAIL"]
    assert "| recipe | **FAIL** |" in (out / "summary.md").read_text()


@pytest.mark.slow  # a Ray start and an MLflow store: tens of seconds on a 2-core machine
@pytest.mark.skipif(importlib.util.find_spec("ray") is None or
                    importlib.util.find_spec("mlflow") is None, reason="needs Ray and MLflow")
def test_tiny_suite_shares_through_ray_and_logs_to_mlflow(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    result, out = run_suite(tmp_path, "--parts", "sharing,mlflow", "--mlflow-uri", uri,
                            block=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    state = json.loads((out / "suite.json").read_text())
    parts = state["parts"]
    assert parts["throughput"]["status"] == "skipped"
    assert parts["throughput"]["why"] == "not selected (--parts sharing,mlflow)"
    sharing = parts["sharing"]
    assert sharing["status"] == "ran" and sharing["figures"]["mode"] == "ray"
    assert sharing["why"].startswith("Ray fractional resources")
    assert [r["trials"] for r in sharing["figures"]["rows"]] == [1, 2]
    logged = parts["mlflow"]
    assert logged["status"] == "ran" and logged["figures"]["tracking_uri"] == uri

    from mlflow import MlflowClient

    from harness.tracking import quiet_mlflow

    quiet_mlflow()
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(logged["figures"]["run_id"])
    assert run.data.metrics["sharing.rows.1.trials"] == 2.0
    assert run.data.metrics["sharing.rows.0.aggregate_images_per_second"] > 0
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"summary.md", "suite.json"}
    # Artifacts sit beside the database, not in the folder the suite ran from.
    assert (tmp_path / "store" / "mlflow-artifacts").is_dir() and not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_data_that_cannot_be_read_is_one_message_and_exit_2(tmp_path):
    missing = tmp_path / "no-data"
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_DATA"}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_suite", "--device", "cpu", "--parts", "recipe",
         "--data-root", str(missing), "--out", str(tmp_path / "real")],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 2
    assert f"gpu_suite: cannot load CIFAR-10: data root {missing} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
