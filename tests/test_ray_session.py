"""Where trials run: a local run starts its own Ray even beside a live head, Ray's settings
stay inside the session, and a worker keeps one decoded dataset."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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
    from harness import tune

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
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "tiny", "--profile", "quick", "--no-mlflow"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "running tiny/quick on a local Ray instance" in result.stdout
    assert "Token authentication is enabled" not in result.stderr  # operators' notice, not ours
    assert (tmp_path / "results" / "tiny" / "quick" / "records.csv").exists()
