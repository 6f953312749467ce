"""Hardening, round 4 (issue 27): SIGTERM, --resume after a kill, a full disk, a corrupt
MLflow store, two runs at once, and --resume with nothing to resume."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_study
from test_cli_run import _wait_for_announcement, cli_env, run_cli

from harness.cli import main

TESTS = Path(__file__).resolve().parent
FIXTURE = TESTS / "fixtures" / "report"


def _files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``folder``: its bytes and mtime (a rewrite of the same bytes shows)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _held_run(tmp_path: Path, *extra: str, **env: str) -> tuple[subprocess.Popen, Path]:
    """`harness run tiny --profile long` in a subprocess, returned once its third trial is
    held after its second epoch (its first two trials have finished: one at a time)."""
    flag = tmp_path / "hold"
    flag.write_text("hold the third trial")
    os.mkfifo(f"{flag}.fifo")
    command = [sys.executable, "-m", "harness.cli", "run", "tiny", "--profile", "long", *extra]
    process = subprocess.Popen(command, cwd=tmp_path,
                               env=cli_env(**{tiny_study.HOLD_FLAG_ENV: str(flag), **env}),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for_announcement(Path(f"{flag}.fifo"), process) == "held\n"
    return process, flag


def _records(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "records" / "tiny" / "long" / "long"


def _by_label(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {json.loads(data)["label"]: (data, mtime)
            for data, mtime in _files(folder).values()}


# ---------------------------------------------------------------------------- SIGTERM


@pytest.mark.slow
def test_sigterm_stops_a_run_like_ctrl_c_a_second_run_is_refused_and_resume_goes_on(tmp_path):
    from mlflow_store import search_runs

    from harness.ray_leftovers import start_time
    from harness.tracking import tracking_uri

    # Its own local Ray (no RAY_ADDRESS): the processes it starts must be gone afterwards.
    process, flag = _held_run(tmp_path)
    recorded = list((tmp_path / "runs" / "ray-local").glob("*.json"))
    assert [p.stem for p in recorded] == [str(process.pid)]
    ray_processes = json.loads(recorded[0].read_text())["processes"]

    # Two runs at once: the second is refused before it writes anything, naming the first.
    second = run_cli("run", "tiny", "--profile", "long", cwd=tmp_path)
    assert second.returncode == 8, second.stderr[-3000:]
    assert second.stderr.startswith("harness: error: another run of tiny/long is using this "
                                    f"runs folder (pid {process.pid} on ")
    assert len(second.stderr.strip().splitlines()) == 1

    finished = _by_label(_records(tmp_path))  # written as each trial finished
    assert sorted(finished) == ["first", "second"]

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 143, err[-3000:]
    harness_lines = [line for line in err.splitlines() if line.startswith("harness:")]
    assert len(harness_lines) == 1 and harness_lines[0].startswith(
        "harness: error: stopped by SIGTERM: interrupted with 1 of 3 trials unfinished"), err
    assert "--resume" in harness_lines[0]
    assert "Traceback" not in err and "SIGTERM received" not in err
    parent = [r for r in search_runs(tracking_uri(tmp_path / "runs"))
              if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.status for r in parent] == ["KILLED"]
    alive = [p["pid"] for p in ray_processes if start_time(p["pid"]) == p["start"]]
    assert alive == [], f"Ray processes of the stopped run still alive: {alive}"
    assert not (tmp_path / "runs" / "locks" / "tiny-long.lock").exists()

    flag.unlink()
    result = run_cli("run", "tiny", "--profile", "long", "--resume", cwd=tmp_path,
                     **{tiny_study.HOLD_FLAG_ENV: str(flag)})  # the stage as it ran
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stage long: 2 finished trials kept from their records" in result.stdout
    after = _by_label(_records(tmp_path))
    assert sorted(after) == ["first", "held", "second"]
    for label in ("first", "second"):  # not trained again: the very same files
        assert after[label] == finished[label]
    parent = [r for r in search_runs(tracking_uri(tmp_path / "runs"))
              if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.status for r in parent] == ["FINISHED"]


@pytest.mark.slow
def test_resume_after_a_killed_driver_trains_no_trial_whose_record_says_it_finished(
        tmp_path, ray_cluster):
    # No periodic Tune snapshot: only the ones Tune forces every second checkpoint, so the
    # snapshot still has the finished trials running at their second epoch, as a driver
    # killed between two snapshots leaves it.
    env = {"RAY_ADDRESS": ray_cluster, "TUNE_GLOBAL_CHECKPOINT_S": "3600"}
    process, flag = _held_run(tmp_path, "--no-mlflow", **env)
    finished = _by_label(_records(tmp_path))
    assert sorted(finished) == ["first", "second"]
    process.kill()
    process.communicate(timeout=60)

    flag.unlink()
    result = run_cli("run", "tiny", "--profile", "long", "--no-mlflow", "--resume",
                     cwd=tmp_path, **env, **{tiny_study.HOLD_FLAG_ENV: str(flag)})
    assert result.returncode == 0, result.stderr[-3000:]
    after = _by_label(_records(tmp_path))
    for label in ("first", "second"):
        assert after[label] == finished[label]  # bytes and mtime: never trained again
    results = {json.loads(data)["label"]: json.loads(data)
               for data, _ in _files(tmp_path / "results" / "tiny" / "long" / "records").values()}
    assert {label: r["status"] for label, r in results.items()} == {
        "first": "completed", "second": "completed", "held": "completed"}
    for label in ("first", "second"):
        assert json.dumps(results[label], sort_keys=True) == json.dumps(
            json.loads(finished[label][0]), sort_keys=True)
    assert "FileNotFoundError" not in result.stdout + result.stderr


def test_a_command_still_stopping_at_the_grace_period_exits_then_cleaning_up(tmp_path):
    """SIGTERM outside Tune is a KeyboardInterrupt; a command that does not stop (here: one
    that swallows it) still exits at the grace period with one line, after its deadline
    actions (the runner's: the MLflow parent run KILLED), killing what it started."""
    code = """
import subprocess, sys, time
import harness.cli as cli
import harness.termination as termination
termination.GRACE_SECONDS = 1.0
def stubborn(_args):
    child = subprocess.Popen(["sleep", "300"])
    with termination.at_deadline(lambda: print("deadline action", flush=True)):
        print(child.pid, flush=True)
        while True:
            try:
                time.sleep(60)
            except KeyboardInterrupt:
                print("swallowed", flush=True)
cli._list = stubborn
sys.exit(cli.main(["list"]))
"""
    from harness.ray_leftovers import start_time, wait_gone

    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    child = int(process.stdout.readline())
    started = start_time(child)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, (out, err)
    assert out == "swallowed\ndeadline action\n", (out, err)
    assert err == ("harness: error: stopped by SIGTERM: still stopping 1s after the signal, "
                   "so exiting now; run the same command with --resume to continue\n")
    wait_gone([child], 60)  # SIGKILL is delivered, not awaited: the guard ends a hung test
    assert started is not None and start_time(child) != started  # killed with it


def test_sighup_between_steps_exits_129(tmp_path):
    code = """
import sys, time
import harness.cli as cli
def waits(_args):
    print("ready", flush=True)
    time.sleep(60)
    return 0
cli._list = waits
sys.exit(cli.main(["list"]))
"""
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGHUP)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 129
    assert err == ("harness: stopped by SIGHUP: the state is kept: run the same command "
                   "with --resume to continue\n")


# ---------------------------------------------------------------------------- a full disk


@pytest.mark.slow
def test_a_full_disk_while_writing_results_is_one_line_and_keeps_the_earlier_results(
        tmp_path, monkeypatch, capsys):
    import harness.report

    results = tmp_path / "results"
    folder = results / "theory" / "smoke"
    shutil.copytree(FIXTURE / "theory" / "smoke", folder)
    assert main(["tables", "theory", "--profile", "smoke", "--from-results",
                 "--results-dir", str(results), "--runs-dir", str(tmp_path / "runs")]) == 0
    earlier = _files(results)
    capsys.readouterr()

    real = harness.report.write_outputs

    def fills_the_disk(records, outputs, out_dir):
        real(records, outputs, out_dir)  # the tables are written, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(out_dir) / "x.png"))

    monkeypatch.setattr(harness.report, "write_outputs", fills_the_disk)
    code = main(["tables", "theory", "--profile", "smoke", "--from-results",
                 "--results-dir", str(results), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 6
    assert err.startswith(f"harness: error: cannot write the results of theory/smoke into "
                          f"{results / 'theory'}: No space left on device (")
    assert " free there, and it needs more than " in err
    assert f"the earlier results in {folder} are kept" in err
    assert "harness tables theory --profile smoke" in err
    assert len(err.strip().splitlines()) == 1
    assert _files(results) == earlier  # nothing half-written, no staging folder left


def test_a_full_disk_anywhere_else_is_one_line_naming_the_folder(tmp_path, monkeypatch, capsys):
    import harness.cli as cli

    def fails(_args):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(tmp_path / "runs" / "a.json"))

    monkeypatch.setattr(cli, "_list", fails)
    assert main(["list"]) == 6
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: cannot write a file into {tmp_path / 'runs'}: "
                          "Disk quota exceeded (")
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- a corrupt store


def _an_earlier_run(tmp_path: Path) -> Path:
    """runs/ as a finished run of tiny/quick leaves it: state, records, an MLflow store
    (real, made by the harness's tracker), then the store truncated."""
    pytest.importorskip("mlflow")
    from harness.files import write_json_atomic
    from harness.plan import PLAN_FILE
    from harness.tracking import DB_FILE, Tracker

    runs = tmp_path / "runs"
    Tracker.open(runs, "tiny")
    state = runs / "ray" / "tiny-quick"
    write_json_atomic(state / PLAN_FILE, {"study": "tiny", "profile": "quick"})
    write_json_atomic(state / "only.done.json", {"stage": "only", "records": ["a.json"]})
    write_json_atomic(runs / "records" / "tiny" / "quick" / "only" / "a.json", {"x": 1})
    database = runs / DB_FILE
    data = database.read_bytes()
    database.write_bytes(data[: len(data) // 2])
    return runs


@pytest.mark.slow
def test_a_corrupt_store_is_refused_with_exit_3_and_changes_nothing(tmp_path, capsys):
    runs = _an_earlier_run(tmp_path)
    before = _files(runs)
    code = main(["run", "tiny", "--profile", "quick", "--runs-dir", str(runs),
                 "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 3, err
    database = runs / "mlflow.db"
    assert err == (
        f"harness: error: the MLflow store {database.resolve()} is corrupt (database disk "
        f"image is malformed); move it aside (mv {database.resolve()} "
        f"{database.resolve()}.broken) and run the command again: a new store is made, and "
        "`harness run ... --resume` logs the trials it keeps into it (records stay in "
        "runs/records/ and results/); nothing was changed\n")
    assert _files(runs) == before
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_a_run_whose_store_broke_is_refused_and_resume_rebuilds_a_new_store(
        tmp_path, ray_cluster):
    """A real run, its store truncated: refused (exit 3), runs/ untouched; the store moved
    aside as the message says, --resume logs the kept trials into a new one, training
    nothing. (Each run a process of its own, as a user runs them: MLflow keeps a store's
    connections per process.)"""
    from mlflow_store import search_runs

    from harness.tracking import tracking_uri

    runs = tmp_path / "runs"
    first = run_cli("run", "tiny", "--profile", "quick", cwd=tmp_path, RAY_ADDRESS=ray_cluster)
    assert first.returncode == 0, first.stderr[-3000:]
    records = _files(runs / "records")
    database = runs / "mlflow.db"
    data = database.read_bytes()
    database.write_bytes(data[: len(data) // 2])
    before = _files(runs)
    refused = run_cli("run", "tiny", "--profile", "quick", cwd=tmp_path, RAY_ADDRESS=ray_cluster)
    assert refused.returncode == 3, refused.stderr[-3000:]
    assert refused.stderr.startswith("harness: error: the MLflow store ")
    assert "move it aside" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert _files(runs) == before

    database.rename(runs / "mlflow.db.broken")
    again = run_cli("run", "tiny", "--profile", "quick", "--resume", cwd=tmp_path,
                    RAY_ADDRESS=ray_cluster)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "stage only: done earlier, 2 records kept (--resume)" in again.stdout
    assert _files(runs / "records") == records  # nothing trained or rewritten
    trials = [r for r in search_runs(tracking_uri(runs)) if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.tags["trial_id"] for r in trials) == sorted(
        json.loads(data)["trial_id"] for data, _ in records.values())
    assert {r.info.status for r in trials} == {"FINISHED"}


# ---------------------------------------------------------------------------- the lock


def test_a_second_run_of_the_same_study_and_profile_is_refused(tmp_path, capsys):
    from harness.run_lock import run_lock

    runs = tmp_path / "runs"
    with run_lock(runs, "tiny", "quick"):
        code = main(["run", "tiny", "--profile", "quick", "--no-mlflow", "--runs-dir",
                     str(runs), "--results-dir", str(tmp_path / "results")])
        err = capsys.readouterr().err
        assert code == 8
        assert err.startswith("harness: error: another run of tiny/quick is using this runs "
                              f"folder (pid {os.getpid()} on ")
        assert f"lock {runs / 'locks' / 'tiny-quick.lock'}" in err
        assert sorted(p.name for p in runs.iterdir()) == ["locks"]  # nothing else written
        with run_lock(runs, "tiny", "smoke"):  # another profile is another lock
            pass
    assert not runs.exists()  # made only for the lock: gone with it


def test_a_lock_left_by_a_dead_run_is_taken_over_saying_so(tmp_path):
    from harness.ray_leftovers import start_time
    from harness.run_lock import _holder, lock_path, run_lock

    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    holder = {**_holder(), "pid": dead.pid, "start": start_time(dead.pid),
              "started": "2026-01-01 00:00:00 UTC"}
    dead.kill()
    dead.wait()
    path = lock_path(tmp_path, "tiny", "quick")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(holder))
    said: list[str] = []
    with run_lock(tmp_path, "tiny", "quick", echo=said.append):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert said == [f"took over the lock of an earlier run of tiny/quick that is gone (pid "
                    f"{dead.pid}, started 2026-01-01 00:00:00 UTC: killed?)"]


def test_without_flock_a_live_holder_still_refuses_and_a_dead_one_does_not(
        tmp_path, monkeypatch):
    import harness.run_lock as run_lock_module
    from harness.run_lock import RunLocked, _holder, lock_path, run_lock

    monkeypatch.setattr(run_lock_module, "_flock", lambda _fd: None)  # e.g. some NFS mounts
    path = lock_path(tmp_path, "tiny", "quick")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_holder()))  # this live process
    with pytest.raises(RunLocked, match=f"pid {os.getpid()} on "), \
            run_lock(tmp_path, "tiny", "quick"):
        pass
    path.write_text(json.dumps({**_holder(), "start": -1}))  # its pid, reused since
    with run_lock(tmp_path, "tiny", "quick", echo=lambda _line: None):
        pass


# ---------------------------------------------------------------------------- nothing to resume


def test_resume_with_nothing_to_resume_says_so_and_starts_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["run", "tiny", "--profile", "quick", "--resume", "--no-mlflow",
                 "--runs-dir", str(runs), "--results-dir", str(tmp_path / "results")])
    assert code == 7
    assert capsys.readouterr().err == (
        f"harness: error: --resume: nothing to resume for tiny/quick in {runs} (no earlier "
        f"run's state in {runs / 'ray' / 'tiny-quick'}); check --runs-dir, or run without "
        "--resume to start it\n")
    assert not (tmp_path / "results").exists()
    assert not (runs / "ray").exists() and not (runs / "records").exists()


def test_resume_with_nothing_to_resume_names_the_later_stage_it_would_have_kept(tmp_path):
    """--rerun of a later stage keeps the ones before it: with none there, refused too;
    --rerun of the first stage keeps nothing, so it is a fresh run and allowed."""
    from harness.plan import NothingToResume, RunOptions, plan_run

    def options(rerun: str) -> RunOptions:
        return RunOptions("tiny", "resume", resume=True, rerun=rerun, tracking=False,
                          runs_dir=tmp_path / "runs", results_dir=tmp_path / "results")

    with pytest.raises(NothingToResume, match="nothing to resume for tiny/resume"):
        plan_run(options("second"))
    assert plan_run(options("first")).options.rerun == "first"
