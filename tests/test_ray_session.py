"""Where trials run: a local run starts its own Ray even beside a live head, Ray's settings
stay inside the session, and a worker keeps one decoded dataset."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.ray_session import RAY_QUIET_ENV, ray_session, scoped_env

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def test_scoped_env_restores_the_environment_it_changed(monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_TEST_KEPT", "user value")
    monkeypatch.delenv("HARNESS_TEST_ADDED", raising=False)
    with scoped_env({"HARNESS_TEST_KEPT": "ours", "HARNESS_TEST_ADDED": "ours"}):
        assert os.environ["HARNESS_TEST_KEPT"] == "user value"  # a user's own setting wins
        assert os.environ["HARNESS_TEST_ADDED"] == "ours"
    assert os.environ["HARNESS_TEST_KEPT"] == "user value"
    assert "HARNESS_TEST_ADDED" not in os.environ


@pytest.mark.slow
def test_a_ray_session_leaves_the_environment_as_it_found_it(ray_cluster, monkeypatch) -> None:
    # Ray sets RAY_AUTH_MODE when it starts a cluster; a session must not leak that (or our
    # quiet settings) into later subprocesses.
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    before = dict(os.environ)
    with ray_session():
        os.environ["RAY_AUTH_MODE"] = "token"  # as ray.init does
    assert dict(os.environ) == before


def test_a_failed_connection_leaves_no_ray_settings_behind(monkeypatch) -> None:
    ray = pytest.importorskip("ray")
    # As in a fresh process, even when the session's Ray fixture is up.
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    for key in [*RAY_QUIET_ENV, "RAY_py_gcs_connect_timeout_s"]:
        monkeypatch.delenv(key, raising=False)
    before = dict(os.environ)
    with pytest.raises(HarnessError, match="cannot reach a Ray cluster at 127.0.0.1:1"), \
            ray_session("127.0.0.1:1"):
        pass
    assert dict(os.environ) == before


def test_a_worker_keeps_only_the_latest_dataset(monkeypatch) -> None:
    from harness import trainable as tune

    monkeypatch.setattr(tune, "_DATASET_CACHE", type(tune._DATASET_CACHE)())
    digits = tune.cached_dataset("digits", None)
    assert tune.cached_dataset("digits", None) is digits  # decoded once per worker
    photos = tune.cached_dataset("photos", None)
    assert list(tune._DATASET_CACHE) == [("photos", None)]
    assert tune.cached_dataset("photos", None) is photos


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_head(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`ray start --head` as a user runs it (token authentication on, Ray 2.60's default),
    in its own process group and HOME, ended by killing that group."""
    pytest.importorskip("ray")
    ray_cli = Path(sys.executable).with_name("ray")
    # A user's shell: none of the RAY_* settings a Ray started in this test process (the
    # session's ray_cluster fixture) put into os.environ, such as RAY_AUTH_MODE=token.
    env = {name: value for name, value in os.environ.items() if not name.startswith("RAY_")}
    env.update(HOME=str(tmp_path / "home"), RAY_USAGE_STATS_ENABLED="0")
    # The default temp folder, on purpose: /tmp/ray/ray_current_cluster is what a plain
    # ray.init() would find and join.
    command = [str(ray_cli), "start", "--head", "--block", f"--port={_free_port()}",
               "--num-cpus=1", "--include-dashboard=false"]
    head = subprocess.Popen(command, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        said = []
        for line in head.stdout:  # blocks until the head says it runs (or exits)
            said.append(line)
            if "Ray runtime started" in line:
                break
        else:
            pytest.fail("ray start --head did not start:\n" + "".join(said[-40:]))
        yield env
    finally:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=60)


@pytest.mark.slow
def test_a_local_run_starts_its_own_ray_beside_a_live_head(live_head, tmp_path) -> None:
    # Before the fix ray.init(num_cpus=...) found the head's /tmp/ray/ray_current_cluster
    # and failed: "When connecting to an existing cluster, num_cpus and num_gpus must not be
    # provided".
    env = {**live_head, "HARNESS_STUDIES": "tiny_study",
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    for name in ("MLFLOW_TRACKING_URI", "HARNESS_RUNS", "HARNESS_RESULTS"):  # writes in cwd
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "tiny", "--profile", "quick", "--no-mlflow"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "running tiny/quick on a local Ray instance" in result.stdout
    assert "Token authentication is enabled" not in result.stderr  # operators' notice, not ours
    assert (tmp_path / "results" / "tiny" / "quick" / "records.csv").exists()


_DRIVER = """
import sys, time
from pathlib import Path
from harness.ray_session import ray_session
with ray_session(None, record_in=Path(sys.argv[1])):
    print("up", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists() or not hasattr(os, "pidfd_open"),
                    reason="Linux: /proc and pidfds")
def test_the_next_run_ends_what_a_killed_runs_local_ray_left_and_nothing_else(
    tmp_path,
) -> None:
    import json

    from harness.ray_leftovers import LEFTOVERS_DIR, start_time

    runs = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    env.update(HARNESS_STUDIES="tiny_study", PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]))
    # A process of the user's that happens to hold a pid the record names (a pid reused
    # since): its start time differs, so it must be left alone.
    bystander = subprocess.Popen(["sleep", "600"])
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, str(runs)], env=env, text=True,
                              stdout=subprocess.PIPE, start_new_session=True)
    record: dict = {}
    try:
        assert driver.stdout is not None
        guard = threading.Timer(300, driver.kill)  # ends a hung start; nothing is timed
        guard.start()
        try:
            assert driver.stdout.readline() == "up\n"  # its own local Ray is up
        finally:
            guard.cancel()
        (path,) = (runs / LEFTOVERS_DIR).glob("*.json")
        record = json.loads(path.read_text())
        assert record["driver"]["pid"] == driver.pid and record["processes"]
        driver.kill()  # as the OOM killer or `kill -9` would: no ray.shutdown()
        driver.wait(timeout=60)
        record["processes"].append({"pid": bystander.pid, "start": start_time(bystander.pid) + 1})
        path.write_text(json.dumps(record))

        # The next run ends them before it starts its own.
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", "tiny", "--profile", "quick",
             "--no-mlflow", "--runs-dir", str(runs), "--results-dir", str(tmp_path / "results")],
            env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        said = [line for line in result.stdout.splitlines() if "left running" in line]
        assert len(said) == 1, result.stdout[-3000:]
        assert said[0].startswith("ended ") and "ray::RuntimeEnvAgent" in said[0], said
        assert Path(record["session_dir"]).name in said[0]
        ours = [p for p in record["processes"] if p["pid"] != bystander.pid]
        assert not [p for p in ours if start_time(p["pid"]) == p["start"]]  # all gone
        assert bystander.poll() is None  # never anything it did not start
        assert not list((runs / LEFTOVERS_DIR).glob("*.json"))  # its own record went too
    finally:
        bystander.kill()
        driver.kill()
        for entry in record.get("processes", []):  # whatever a failed test left
            if start_time(entry["pid"]) == entry["start"]:
                os.kill(entry["pid"], signal.SIGKILL)
