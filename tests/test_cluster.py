"""A real two-node Ray cluster on this machine, started the way a user starts one.

``ray start --head`` (1 CPU) and a second node ``ray start --address=...`` (1 CPU and its
own resource label ``worker_b``), each in its own process group, ended by that group at the
end whatever happened, with HOME in a temporary folder so the user's ~/.ray/auth_token is
never read or written. As on any machine where Ray ran before, HOME holds a token, so the
head turns token authentication on by itself (RAY_AUTH_MODE unset); the second node joins
with RAY_AUTH_MODE=token, as Ray requires.

- Without RAY_AUTH_MODE=token, ``harness run ... --ray-address`` fails at once with one
  message naming token authentication and the fix (Ray itself retries for ~30 s).
- With it, ``--storage`` (a shared folder) and ``--trial-resource worker_b=1`` run every
  trial on the second node; records reach the driver, results/ and MLflow, and the Tune
  experiment lives under --storage.
- A bad --storage fails with one message before anything starts; --storage with ~ and
  ``--resume --rerun`` behave as they do without --storage.

Runs in CI: about 65 s on a 2-core machine, of which the two `ray start` take 12 s (about
140 s and 24 s while other jobs kept those cores busy); deselect with ``-m "not cluster"``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("mlflow")

import tiny_study  # noqa: E402,F401 - registers the tiny study in this process
from mlflow_store import search_runs  # noqa: E402

from harness.cli import main  # noqa: E402
from harness.ray_leftovers import wait_gone  # noqa: E402

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
RAY_CLI = "import sys; from ray.scripts.scripts import main; sys.exit(main())"
# What a user's shell may carry that would change what these tests check.
# HARNESS_RUNS/RESULTS too: these runs write into their working directory (tmp_path).
SCRUBBED = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH",
            "MLFLOW_TRACKING_URI", "HARNESS_RUNS", "HARNESS_RESULTS")  # fmt: skip


@dataclass
class Cluster:
    address: str
    home: Path  # HOME of every process here: holds .ray/auth_token
    head: Path  # each node's --temp-dir (sessions, logs)
    worker: Path
    head_node_id: str
    worker_node_id: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env.update(HOME=str(self.home), HARNESS_STUDIES="tiny_study", RAY_DEDUP_LOGS="0",
                   PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]), **extra)  # fmt: skip
        return env


def _node_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    # PYTHONPATH: the nodes' workers import this checkout's harness.
    env.update(HOME=str(home), PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0", **extra)
    return env


def _ray_start(args: list[str], env: dict[str, str], groups: list[int]) -> str:
    """`ray start ...` in a process group of its own (its daemons stay in that group);
    returns its output. The group is recorded before anything can fail."""
    process = subprocess.Popen(
        [sys.executable, "-c", RAY_CLI, "start", *args], env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    groups.append(process.pid)
    try:
        out, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"ray start {' '.join(args)} failed:\n{out[-3000:]}")
    return out


def _node_id(temp_dir: Path) -> str:
    log = (temp_dir / "session_latest" / "logs" / "raylet.out").read_text()
    found = re.search(r"node_id=([0-9a-f]{56})", log)
    assert found, f"no node id in {temp_dir}/session_latest/logs/raylet.out"
    return found.group(1)


def _ours(groups: list[int], root: Path) -> dict[int, str]:
    """pid -> command line of the live processes of this cluster: in a node's process
    group, or started from it (Ray starts its workers in process groups of their own, with
    the node's environment, so HOME names our folder)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if fields[0] == "Z":  # a zombie: dead, waiting for init to reap it
            continue
        if (int(fields[2]) in groups or str(root) in cmdline
                or f"HOME={root}/home".encode() in environ):  # fmt: skip
            found[int(entry.name)] = cmdline
    return found


def _end(groups: list[int], root: Path) -> list[str]:
    """End each node by its process group (SIGTERM), and SIGKILL whatever of the cluster
    outlives it; returns the command lines of any process still alive. Each wait is on the
    processes' exit (pidfds); its deadline only guards against a hang."""
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
    wait_gone(_ours(groups, root), seconds=60)
    for pid in _ours(groups, root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_gone(_ours(groups, root), seconds=60)
    return list(_ours(groups, root).values())


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc (Linux) to check that no node process is left behind")
    # Short: Ray's socket paths live under the temp dir and must stay under 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="hc-"))
    home, head, worker = root / "home", root / "head", root / "worker"
    (home / ".ray").mkdir(parents=True)
    # What ray.init() or `ray get-auth-token --generate` leaves on a machine that ran Ray.
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    groups: list[int] = []
    try:
        _ray_start(["--head", "--port=0", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                    "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
                    f"--temp-dir={head}"], _node_env(home), groups)  # fmt: skip
        # Ray replaces 127.0.0.1 by the machine's address; the head wrote what it chose.
        address = (head / "ray_current_cluster").read_text().strip()
        _ray_start([f"--address={address}", "--num-cpus=1", "--num-gpus=0",
                    '--resources={"worker_b": 4}', "--disable-usage-stats",
                    f"--temp-dir={worker}"], _node_env(home, RAY_AUTH_MODE="token"), groups)  # fmt: skip
        yield Cluster(address, home, head, worker, _node_id(head), _node_id(worker))
    finally:
        left = _end(groups, root)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


# `harness ...` with ray.init announcing each call: a refused client must be answered by
# one handshake, never reach ray.init (which retries a refused client for ~20-30 s).
RAY_INIT_SPY = """
import sys, ray
connect = ray.init
def announced(*args, **kwargs):
    print("ray.init called", flush=True)
    return connect(*args, **kwargs)
ray.init = announced
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _harness(cluster: Cluster, *args: str, cwd: Path, **env: str) -> tuple[int, str]:
    """Run `harness run tiny --profile quick --ray-address <head> ...`; returns the exit
    code and stdout and stderr merged."""
    command = [sys.executable, "-c", RAY_INIT_SPY, "run", "tiny", "--profile", "quick",
               "--ray-address", cluster.address, *args]  # fmt: skip
    process = subprocess.Popen(command, cwd=cwd, env=cluster.env(**env), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    guard = threading.Timer(300, process.kill)  # ends a hung run; nothing is timed by it
    guard.start()
    try:
        out, _ = process.communicate()
    finally:
        guard.cancel()
    return process.returncode, out


def test_a_client_without_the_token_fails_at_once_naming_the_cause_and_the_fix(cluster, tmp_path):
    # --no-mlflow: MLflow's first store creation (~10 s here) would only delay the exit.
    code, out = _harness(cluster, "--no-mlflow", cwd=tmp_path)
    assert code == 2, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith("harness: error:")]
    assert len(errors) == 1 and "Traceback" not in out, out[-3000:]
    message = errors[0]
    assert f"the Ray cluster at {cluster.address} uses token authentication" in message
    assert "RAY_AUTH_MODE is not set" in message
    assert "set RAY_AUTH_MODE=token" in message and "~/.ray/auth_token" in message
    # Ray alone retries a refused client for ~20-30 s; one handshake answers instead.
    assert "ray.init called" not in out, out[-3000:]
    assert not (tmp_path / "runs" / "ray").exists()  # nothing ran
    assert not (tmp_path / "results" / "tiny" / "quick").exists()


def test_with_the_token_trials_run_on_the_pinned_node_and_every_record_comes_back(
    cluster, tmp_path
):
    shared = tmp_path / "shared"  # what every node of a real cluster would mount
    code, out = _harness(cluster, "--storage", str(shared), "--trial-resource", "worker_b=1",
                            cwd=tmp_path, RAY_AUTH_MODE="token")  # fmt: skip
    assert code == 0, out[-4000:]
    assert f"Tune storage: {shared}/tiny-quick" in out
    assert f"running tiny/quick on the Ray cluster at {cluster.address}" in out
    assert "stage only: 2 trials (2 completed)" in out

    # Records reached the driver's results/, each saying it ran on the worker node.
    records = [json.loads(p.read_text())
               for p in (tmp_path / "results/tiny/quick/records/only").glob("*.json")]  # fmt: skip
    assert len(records) == 2 and {r["status"] for r in records} == {"completed"}
    assert cluster.head_node_id != cluster.worker_node_id
    assert {r["environment"]["ray_node_id"] for r in records} == {cluster.worker_node_id}
    assert (tmp_path / "results/tiny/quick/records.csv").read_text().count("\n") == 3

    # The Tune experiment is in --storage, not runs/ray (which keeps only the markers).
    stage = shared / "tiny-quick" / "only"
    ids = {r["trial_id"] for r in records}
    assert {p.name for p in stage.glob("trial_*")} == {f"trial_{i}" for i in ids}
    assert not (tmp_path / "runs" / "ray" / "tiny-quick" / "only").exists()
    # Ray's own view: each trial's process wrote its worker log on the worker node only.
    for trial in stage.glob("trial_*"):
        pid = json.loads(trial.joinpath("result.json").read_text().splitlines()[-1])["pid"]
        assert list(cluster.worker.glob(f"session_latest/logs/python-core-worker-*_{pid}.log"))
        assert not list(cluster.head.glob(f"session_latest/logs/python-core-worker-*_{pid}.log"))

    # MLflow: the parent run and one run per trial, from the driver's store.
    uri = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    runs = search_runs(uri)
    trials = [r for r in runs if r.data.tags.get("harness.trial_key")]
    assert len(runs) == 3 and len(trials) == 2
    assert {r.data.tags["trial_id"] for r in trials} == ids
    assert {r.data.tags["status"] for r in trials} == {"completed"}
    from mlflow import MlflowClient

    tags = MlflowClient(uri).get_experiment_by_name("tiny").tags  # what `harness ui` sorts by
    assert (tags["harness.primary_metric"], tags["harness.primary_metric_mode"]) == ("test_acc", "max")


@pytest.mark.parametrize(
    ("storage", "fragment"),
    [
        ("shared", "--storage 'shared': give an absolute path"),
        ("{blocker}/shared", "cannot write the Tune storage folder {blocker}/shared"),
        ("nosuchfs://bucket/prefix", "is not a storage URI Ray Tune can use"),
    ],
)
def test_a_bad_storage_fails_with_one_message_before_anything_starts(
    storage, fragment, tmp_path, capsys
):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["run", "tiny", "--profile", "quick", "--storage",
                 storage.format(blocker=blocker), "--runs-dir", str(tmp_path / "runs"),
                 "--results-dir", str(tmp_path / "results")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("harness: error: ") and fragment.format(blocker=blocker) in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs" / "ray").exists()


def test_storage_with_a_tilde_is_the_folder_in_home(tmp_path, monkeypatch):
    from harness.plan import RunOptions, plan_run

    monkeypatch.setenv("HOME", str(tmp_path))
    plan = plan_run(RunOptions("tiny", "quick", storage="~/shared/", runs_dir=tmp_path / "runs",
                               results_dir=tmp_path / "results"))  # fmt: skip
    # Tune would take "~/shared" literally: a folder named "~" in each worker's cwd.
    assert plan.storage_dir == f"{tmp_path}/shared/tiny-quick"


@pytest.mark.parametrize("how", ["fresh run", "--resume --rerun"])
def test_a_stage_left_in_storage_is_not_restored_by_a_new_run(how, tmp_path):
    """Without --storage the Tune experiment lives in runs/ray and a fresh run or --rerun
    removes it with the stage's state; with --storage it must go too, or run_tuner finds it
    (Tuner.can_restore) and returns the old trials instead of running the stage again."""
    from ray import tune

    from harness import runner
    from harness.plan import RunOptions, plan_run

    plan = plan_run(RunOptions("tiny", "quick", storage=str(tmp_path / "shared"),
                               runs_dir=tmp_path / "runs", results_dir=tmp_path / "results",
                               resume=how != "fresh run", rerun="only" if how != "fresh run"
                               else None))  # fmt: skip
    location = Path(plan.storage_dir) / "only"
    (location / "trial_old_00000").mkdir(parents=True)
    (location / "tuner.pkl").write_bytes(b"an earlier run's Tuner")
    assert tune.Tuner.can_restore(str(location))
    if how == "fresh run":
        runner._forget_all(plan)
    else:
        runner._forget_from(plan, plan.profile.stages[0])
    assert not tune.Tuner.can_restore(str(location)) and not location.exists()
