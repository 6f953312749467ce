"""`harness run / tables / ui / list`: bad input fails fast with one message and touches no
results; a real run writes results that `harness tables` rebuilds from records alone."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_study
from blocked_imports import BLOCK_RAY_MLFLOW_OPTUNA

from harness.cli import main

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray")
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def cli_env(**extra: str) -> dict[str, str]:
    # The subprocess resolves runs/ and results/ from its working directory (a tmp_path,
    # outside the checkout), as a user's command does: not from the session's defaults.
    dropped = ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "HARNESS_RUNS", "HARNESS_RESULTS")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        HARNESS_STUDIES="tiny_study",
        PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]),
        RAY_DEDUP_LOGS="0",
        **extra,
    )
    return env


def run_cli(*args: str, cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env(**env),
        timeout=timeout,
    )


@pytest.fixture
def cluster(ray_cluster: str) -> str:
    return ray_cluster


@pytest.fixture
def earlier_results(tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "tiny" / "quick"
    folder.mkdir(parents=True)
    (folder / "records.csv").write_text("from an earlier run\n")
    return folder


def _untouched(folder: Path) -> bool:
    return (
        sorted(p.name for p in folder.parent.iterdir()) == ["quick"]
        and sorted(p.name for p in folder.iterdir()) == ["records.csv"]
        and (folder / "records.csv").read_text() == "from an earlier run\n"
    )



def _edit_quick_stage_lr(monkeypatch) -> None:
    """What a user does between a run and its --resume: edit the tiny/quick stage's
    learning rates (0.05, 0.1 -> 0.02, 0.03)."""
    import dataclasses

    from harness.space import grid
    from harness.study import STUDIES

    study = STUDIES.get("tiny")
    profile = study.profiles["quick"]
    stage = dataclasses.replace(profile.stages[0],
                                space={**profile.stages[0].space, "lr": grid(0.02, 0.03)})
    edited = dataclasses.replace(study, profiles={
        **study.profiles, "quick": dataclasses.replace(profile, stages=(stage,))})
    monkeypatch.setitem(STUDIES._entries, "tiny", edited)

@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["nope", "--profile", "quick"], "unknown study 'nope'; choose one of:"),
        (["tiny", "--profile", "huge"], "study 'tiny' has no profile 'huge'; choose one of: smoke"),
        (["tiny", "--profile", "quick", "--set", "widht=3"], "unknown config key(s): widht"),
        (["tiny", "--profile", "quick", "--set", "lr=fast"], "lr must be a number"),
        (
            ["tiny", "--profile", "quick", "--set", "model.depth=3"],
            "unknown option(s) for model 'mlp'",
        ),
        (
            ["tiny", "--profile", "quick", "--set", "fault.fail_once_at_epoch=1"],
            "fault.fail_once_at_epoch must be in [2, epochs=1]",
        ),
        (
            ["tiny", "--profile", "quick", "--ray-address", "127.0.0.1:1"],
            "cannot reach a Ray cluster at 127.0.0.1:1",
        ),
        (["tiny", "--profile", "quick", "--gpus-per-trial", "-1"], "--gpus-per-trial must be >= 0"),
        # The denoising and memorization studies' own bad input.
        (["denoising", "--profile", "smoke", "--set", "task.level=2"],
         "gaussian sigma must be in (0, 1]"),
        (["denoising", "--profile", "smoke", "--set", "loss=ce"],
         "loss 'ce' does not fit task 'denoise'"),
        (["denoising", "--profile", "smoke", "--set", "model.depth=6"],
         "multiples of 2**6 = 64"),
        (["denoising", "--profile", "smoke", "--set", "task=regress"],
         "task must be one of classify, denoise"),
        (["memorization", "--profile", "smoke", "--set", "label_noise=1.5"],
         "label_noise must be in [0, 1]"),
        (["memorization", "--profile", "smoke", "--set", "input_corruption=blur"],
         "input_corruption must be one of none, shuffled-pixels, random-pixels, gaussian"),
        (["memorization", "--profile", "smoke", "--set", "crop_size=28"],
         "crop_size 28 is larger than the 8x8 images"),
        (["memorization", "--profile", "smoke", "--set", "task.stop_at_train_acc=0"],
         "task.stop_at_train_acc must be in (0, 1]"),
    ],
)
def test_bad_input_is_one_message_before_any_trial(
    args, fragment, tmp_path, earlier_results, capsys
):
    code = main(
        [
            "run",
            *args,
            "--runs-dir",
            str(tmp_path / "runs"),
            "--results-dir",
            str(tmp_path / "results"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("harness: error: ") and fragment in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _untouched(earlier_results)
    assert not (tmp_path / "runs" / "ray").exists()  # nothing ran
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["tiny"]  # nothing written


def test_unwritable_runs_or_results_folder_fails_first(tmp_path, earlier_results, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(
        [
            "run",
            "tiny",
            "--profile",
            "quick",
            "--runs-dir",
            str(blocker / "runs"),
            "--results-dir",
            str(tmp_path / "results"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "cannot write the runs folder" in err and str(blocker) in err
    assert _untouched(earlier_results)
    code = main(
        [
            "run",
            "tiny",
            "--profile",
            "quick",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--results-dir",
            str(blocker / "results"),
        ]
    )
    assert code == 2 and "cannot write the results folder" in capsys.readouterr().err


def test_resume_refuses_a_run_started_with_other_settings(tmp_path, capsys):
    from harness.expansion import apply_overrides
    from harness.plan import stage_definition, stage_fingerprint

    state = tmp_path / "runs" / "ray" / "tiny-quick"
    state.mkdir(parents=True)
    (state / "plan.json").write_text(
        json.dumps(
            {"study": "tiny", "profile": "quick", "overrides": {"epochs": 3}, "stages": ["only"]}
        )
    )
    stage = tiny_study.build().profiles["quick"].stages[0]
    space = apply_overrides(stage.space, {"epochs": 3})  # the stage started with --set epochs=3
    (state / "only.start.json").write_text(json.dumps(
        {"stage": "only", "fingerprint": stage_fingerprint(stage, space),
         "definition": stage_definition(stage, space)}))
    code = main(
        [
            "run",
            "tiny",
            "--profile",
            "quick",
            "--resume",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--results-dir",
            str(tmp_path / "results"),
        ]
    )
    assert code == 2 and "stage 'only' of tiny/quick changed since it ran (epochs 3 -> 1): " \
        "rerun it with --rerun only" in capsys.readouterr().err


@needs_ray
@pytest.mark.slow
def test_a_ray_address_nobody_answers_fails_from_the_environment(tmp_path, earlier_results):
    result = run_cli(
        "run",
        "tiny",
        "--profile",
        "quick",
        "--results-dir",
        "results",
        cwd=tmp_path,
        timeout=120,
        RAY_ADDRESS="127.0.0.1:1",
    )
    assert result.returncode == 2, result.stderr
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in result.stderr
    assert _untouched(earlier_results)


@needs_ray
@pytest.mark.slow
def test_a_port_that_answers_but_is_no_ray_head_fails_within_the_timeout(tmp_path):
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held = []
    threading.Thread(
        target=lambda: held.extend(listener.accept() for _ in range(64)), daemon=True
    ).start()
    result = run_cli(
        "run",
        "tiny",
        "--profile",
        "quick",
        "--ray-address",
        f"127.0.0.1:{port}",
        cwd=tmp_path,
        timeout=120,
        HARNESS_RAY_CONNECT_TIMEOUT="2",
    )
    listener.close()
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"harness: error: Ray at 127.0.0.1:{port} did not answer within 2s "
        "(HARNESS_RAY_CONNECT_TIMEOUT); is it the head node of a Ray cluster of the same "
        "Ray version?"
    )
    assert not (tmp_path / "runs" / "ray").exists()


def test_ui_execs_mlflow_bound_to_localhost(tmp_path, monkeypatch):
    calls = []
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append(argv))
    main(["ui", "--port", "5123", "--runs-dir", str(tmp_path / "runs")])
    (argv,) = calls
    assert argv[1:4] == ["-m", "mlflow", "ui"]
    assert (
        argv[argv.index("--backend-store-uri") + 1]
        == f"sqlite:///{(tmp_path / 'runs' / 'mlflow.db').resolve()}"
    )
    assert (
        argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "5123"
    )


@pytest.mark.slow
def test_the_cli_imports_and_lists_without_ray_or_mlflow(tmp_path):
    code = BLOCK_RAY_MLFLOW_OPTUNA + """
import harness.cli, harness.runner, harness.tracking, harness.tune
assert harness.cli.main(["list"]) == 0
sys.exit(harness.cli.main(["run", "tiny", "--profile", "quick"]))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(),
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "tiny" in result.stdout and "--profile quick" in result.stdout
    assert "MLflow is not installed" in result.stderr or "Ray is not installed" in result.stderr


@needs_ray
@pytest.mark.slow
def test_run_then_tables_rebuilds_the_same_results(tmp_path, earlier_results, cluster, capsys):
    result = run_cli("run", "tiny", "--profile", "quick", "--set", "epochs=2",
                     "--ray-address", cluster, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"running tiny/quick on the Ray cluster at {cluster}" in result.stdout
    assert "stage only: 2 trials (2 completed)" in result.stdout
    assert "Current best trial" in result.stdout  # Tune's live table
    out = tmp_path / "results" / "tiny" / "quick"
    csv = (out / "records.csv").read_text()
    assert csv.count("\n") == 3 and "from an earlier run" not in csv
    records = sorted((out / "records" / "only").glob("*.json"))
    assert len(records) == 2
    assert [len(json.loads(p.read_text())["history"]) for p in records] == [2, 2]
    assert (tmp_path / "runs" / "mlflow.db").exists()
    assert "INFO mlflow" not in result.stderr  # MLflow's own noise stays quiet
    from mlflow import MlflowClient

    # The metric the stage chose by, per profile and stage: what `harness ui`'s view sorts on.
    store = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    assert store.get_experiment_by_name("tiny").tags["harness.stage_metric.quick/only"] == (
        "test_acc max")

    # The claims (the tiny study states none) and their hash were registered before the
    # first trial started, and travel with the records in run.json.
    from harness.registration import claims_hash

    registration = json.loads((out / "run.json").read_text())["registration"]
    assert registration["claims"] == {} and registration["hash"] == claims_hash({})
    assert registration["registered_at"] <= registration["first_trial_at"]

    def tables(*extra: str) -> str:
        dirs = ["--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")]
        assert main(["tables", "tiny", "--profile", "quick", *dirs, *extra]) == 0
        return capsys.readouterr().out

    (out / "records.csv").write_text("stale\n")
    assert f"2 records from {tmp_path / 'runs/records/tiny/quick'}" in tables()
    assert (out / "records.csv").read_text() == csv
    assert f"2 records from {out / 'records'}" in tables("--from-results")
    assert (out / "records.csv").read_text() == csv
    # Without runs/ (a fresh clone), the committed records/ folder is the source.
    import shutil

    shutil.rmtree(tmp_path / "runs")
    (out / "accuracy_by_lr.md").unlink()
    assert f"2 records from {out / 'records'}" in tables()
    assert (out / "records.csv").read_text() == csv and (out / "accuracy_by_lr.md").exists()
    assert len(list((out / "records").rglob("*.json"))) == 2


def test_tables_without_records_says_what_to_run(tmp_path, capsys):
    code = main(
        [
            "tables",
            "tiny",
            "--profile",
            "smoke",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--results-dir",
            str(tmp_path / "results"),
        ]
    )
    assert code == 2 and "run `harness run tiny --profile smoke` first" in capsys.readouterr().err


def test_list_shows_studies_with_their_profiles_and_stages(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "studies:" in out
    study = tiny_study.build()
    assert f"  tiny{' ' * 17}{study.description}" in out
    for profile in study.profiles.values():
        stages = ", ".join(stage.name for stage in profile.stages)
        assert f"--profile {profile.name:<10} {profile.description} [stages: {stages}]" in out


def _wait_for_announcement(pipe: Path, process: subprocess.Popen, guard: float = 300) -> str:
    """Block until a trial writes to the named pipe (the hold knob's announcement). The
    guard only ends a hung test; nothing is timed."""
    import select

    descriptor = os.open(pipe, os.O_RDWR | os.O_NONBLOCK)  # RDWR: no EOF before a writer
    try:
        ready, _, _ = select.select([descriptor], [], [], guard)
        if not ready:
            process.kill()
            out, err = process.communicate()
            raise AssertionError(f"no trial was held:\n{out[-2000:]}\n{err[-2000:]}")
        return os.read(descriptor, 100).decode()
    finally:
        os.close(descriptor)


@needs_ray
@pytest.mark.slow
def test_ctrl_c_then_resume_keeps_the_trials_that_had_finished(tmp_path, cluster):
    import signal

    flag = tmp_path / "hold"
    flag.write_text("hold the third trial")
    os.mkfifo(f"{flag}.fifo")
    env = {"RAY_ADDRESS": cluster, tiny_study.HOLD_FLAG_ENV: str(flag)}
    command = [sys.executable, "-m", "harness.cli", "run", "tiny", "--profile", "long",
               "--no-mlflow"]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, env=cli_env(**env),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for_announcement(Path(f"{flag}.fifo"), process) == "held\n"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err[-3000:]
    assert "unfinished" in err and "--resume" in err
    assert "Failed to fetch metrics" not in out + err  # Tune's noise about unreported trials
    assert not (tmp_path / "results" / "tiny" / "long").exists()
    # What the interrupted driver had recorded as finished (its files may lag the workers,
    # so this is read after it exited). Trials ran one at a time in order, so "first" had
    # finished before "second" was even created: it is always among them.
    stage_dir = tmp_path / "runs" / "ray" / "tiny-long" / "long"
    finished = {}
    for result in stage_dir.glob("trial_*/result.json"):
        lines = result.read_text().splitlines()
        if len(lines) == 3:
            # Tune's config is the trial as the driver built it (harness.expansion).
            trial = json.loads(lines[-1])["config"]["harness.point"]
            finished[trial["label"]] = result.read_text()
    assert "first" in finished and "held" not in finished

    flag.unlink()  # the outside hold is gone
    result = run_cli("run", "tiny", "--profile", "long", "--no-mlflow", "--resume",
                     cwd=tmp_path, **env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Failed to fetch metrics" not in result.stderr + result.stdout
    records = [
        json.loads(p.read_text())
        for p in (tmp_path / "results" / "tiny" / "long" / "records").rglob("*.json")
    ]
    assert sorted(r["label"] for r in records) == ["first", "held", "second"]
    assert {r["status"] for r in records} == {"completed"}
    assert all(len(r["history"]) == 3 for r in records)
    for label, text in finished.items():  # finished trials were not trained again
        record = next(r for r in records if r["label"] == label)
        assert (stage_dir / f"trial_{record['trial_id']}" / "result.json").read_text() == text
        assert "restored_from_epoch" not in record


@needs_ray
@pytest.mark.slow
def test_a_run_whose_trials_all_diverge_says_so_and_keeps_its_records(tmp_path, cluster):
    import pandas as pd

    # --set lr=1e6 replaces the stage's two learning rates: one trial, and it diverges.
    result = run_cli("run", "tiny", "--profile", "quick", "--set", "lr=1e6", "--no-mlflow",
                     "--ray-address", cluster, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 5, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "harness: error: no trial of tiny/quick finished (1 diverged)")
    out = tmp_path / "results" / "tiny" / "quick"
    assert sorted(p.name for p in out.iterdir()) == [
        "index.md", "outputs.json", "records", "records.csv", "run.json"]
    frame = pd.read_csv(out / "records.csv")
    assert list(frame["status"]) == ["diverged"] and list(frame["final.epoch"]) == [1]


@needs_ray
@pytest.mark.slow
def test_resume_refuses_a_stage_whose_definition_changed_and_rerun_replaces_it(
    tmp_path, cluster, monkeypatch
):
    import dataclasses

    from harness.errors import HarnessError
    from harness.plan import RunOptions
    from harness.results import run_study

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    options = RunOptions("tiny", "quick", runs_dir=tmp_path / "runs",
                         results_dir=tmp_path / "results", tracking=False)
    first = run_study(options, echo=lambda _line: None)
    assert sorted(r["config"]["lr"] for r in first.records) == [0.05, tiny_study.GOOD_LR]

    # The user edits the study: the stage's learning rates change.
    _edit_quick_stage_lr(monkeypatch)

    with pytest.raises(HarnessError, match=r"stage 'only' of tiny/quick changed since it ran "
                                           r"\(lr grid\(0.05, 0.1\) -> grid\(0.02, 0.03\)\): "
                                           r"rerun it with --rerun only"):
        run_study(dataclasses.replace(options, resume=True), echo=lambda _line: None)
    rerun = run_study(dataclasses.replace(options, resume=True, rerun="only"),
                      echo=lambda _line: None)
    assert rerun.stages_run == ["only"]
    assert sorted(r["config"]["lr"] for r in rerun.records) == [0.02, 0.03]


def _files(folder: Path) -> list[tuple[str, int]]:
    """Every path below ``folder``, each file with its modification time: what a refusal
    must keep (a folder's own time changes with the checks that it is writable)."""
    return sorted((str(p.relative_to(folder)), 0 if p.is_dir() else p.stat().st_mtime_ns)
                  for p in folder.rglob("*"))  # fmt: skip


def _join_mlflow_threads() -> None:
    """Wait for the MLflow threads a run started: in a process of its own they would finish
    before it exits, creating whatever they create (the guard only ends a hung test)."""
    import threading

    for thread in threading.enumerate():
        if thread.name.startswith("mlflow"):
            thread.join(timeout=300)


@needs_ray
@pytest.mark.slow
def test_a_refused_resume_leaves_the_finished_parent_run_as_it_was(tmp_path, cluster, monkeypatch):
    import dataclasses

    from mlflow_store import search_runs

    from harness.errors import HarnessError
    from harness.plan import RunOptions
    from harness.results import run_study
    from harness.tracking import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    options = RunOptions("tiny", "quick", runs_dir=tmp_path / "runs",
                         results_dir=tmp_path / "results")  # fmt: skip
    run_study(options, echo=lambda _line: None)
    _join_mlflow_threads()
    uri = tracking_uri(tmp_path / "runs")

    def runs() -> dict[str, tuple]:
        return {r.info.run_id: (r.info.status, r.info.end_time, r.info.lifecycle_stage)
                for r in search_runs(uri)}  # fmt: skip

    before = runs()
    assert sorted(status for status, _, _ in before.values()) == ["FINISHED"] * 3
    files = _files(tmp_path)

    # The user edits the study, then resumes: refused, since its only stage changed.
    _edit_quick_stage_lr(monkeypatch)
    with pytest.raises(HarnessError, match="--rerun only"):
        run_study(dataclasses.replace(options, resume=True), echo=lambda _line: None)
    _join_mlflow_threads()
    assert _files(tmp_path) == files  # no state, record, result or store file touched
    assert runs() == before  # the parent run is still FINISHED, not FAILED


@needs_ray
def test_a_run_refused_for_token_auth_creates_nothing(tmp_path, monkeypatch, capsys):
    import socket

    import ray

    from harness import ray_session

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process
    # A head that answers and refuses this client's token: the handshake's answer to a
    # client without RAY_AUTH_MODE=token (tests/test_cluster.py gets it from a real head).
    monkeypatch.setattr(ray_session, "_refused",
                        lambda address, wait=3.0: ray_session._Refusal("Invalid token"))
    with socket.create_server(("127.0.0.1", 0)) as head:
        address = f"127.0.0.1:{head.getsockname()[1]}"
        code = main(["run", "tiny", "--profile", "quick", "--ray-address", address,
                     "--runs-dir", str(tmp_path / "runs"),
                     "--results-dir", str(tmp_path / "results")])  # fmt: skip
    _join_mlflow_threads()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"the Ray cluster at {address} uses token authentication" in err
    assert list(tmp_path.iterdir()) == []  # no results/tiny/, no runs/mlflow.db
