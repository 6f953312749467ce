"""Screenshots of the MLflow UI as a user meets it after `harness run`: `harness ui` on a
runs folder, driven by headless Chromium.

    python tools/ui_screenshot.py --out shots/                  # runs `harness run tiny --profile smoke` first
    python tools/ui_screenshot.py --out shots/ --runs-dir runs  # an existing runs folder
    python tools/ui_screenshot.py --out shots/ --study cnn_search --profile smoke

Writes into --out (and the URLs, with what `harness ui` printed, into ``urls.txt``):

- ``1-experiment.png``: the experiment's own page, /#/experiments/<id>, where the
  experiments list leads (MLflow 3.17: the GenAI overview, unless the browser remembers
  the "Model training" switch);
- ``2-experiment-model-training.png``: the same with ``?workflowType=machine_learning``:
  the runs table, trial runs nested under their collapsed parent run;
- ``3-trials-table.png``: the URL `harness ui` prints for the study: its saved view,
  trials flat, best first, in a table of the study's metric and varying params;
- ``4-trials-charts.png``: the same as charts;
- ``5-compare.png``: MLflow's comparison page of the five best trials.

Needs Chromium (Debian: ``apt-get install -y chromium``; or --chromium PATH). Starts the
server on a free port bound to 127.0.0.1 and stops it at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def harness(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def study_env(study: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    if study == "tiny":  # the test suite's tiny study, registered from tests/
        env["HARNESS_STUDIES"] = "tiny_study"
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO)])
    return env


def make_runs(folder: Path, study: str, profile: str) -> Path:
    runs = folder / "runs"
    command = harness("run", study, "--profile", profile, "--runs-dir", str(runs),
                      "--results-dir", str(folder / "results"))  # fmt: skip
    print("$ harness", " ".join(command[3:]), flush=True)
    done = subprocess.run(command, env=study_env(study), capture_output=True, text=True)
    if done.returncode != 0:  # the tiny study's injected fault prints a traceback: not this
        raise SystemExit(f"harness run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return runs


def wait_for(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"`harness ui` exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"`harness ui` did not answer at {url} within {seconds:g}s")


def screenshot(browser: str, url: str, path: Path, profile_dir: Path, size: str) -> None:
    """One page, after 15 s of the page's own (virtual) time. A busy server can hold the
    browser far longer in real time: it gets 5 minutes, and a second try."""
    command = [
        browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile_dir}", f"--window-size={size}",
        "--hide-scrollbars", "--virtual-time-budget=15000", f"--screenshot={path}", url,
    ]  # fmt: skip
    for _attempt in range(2):
        path.unlink(missing_ok=True)
        # Its own process group, so a timeout ends its renderer processes too.
        browser_run = subprocess.Popen(command, start_new_session=True,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            browser_run.wait(timeout=300)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(browser_run.pid, signal.SIGKILL)
            browser_run.wait()
        if path.exists() and path.stat().st_size > 0:
            print(f"{path}  <- {url}", flush=True)
            return
    raise SystemExit(f"no screenshot of {url} (Chromium: {browser})")


def stop(server: subprocess.Popen) -> None:
    """Ctrl-C, as a user stops it (`mlflow ui` ignores SIGTERM for a long while), then
    SIGKILL for whatever is left of its process group (its job-runner processes)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    parser.add_argument("--runs-dir", type=Path,
                        help="a runs folder holding mlflow.db (default: run a study first)")
    parser.add_argument("--study", default="tiny", help="the study to run and show")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--chromium", help="browser binary (default: the first of "
                                           + ", ".join(BROWSERS) + " on PATH)")
    parser.add_argument("--window-size", default="1600,1000")
    args = parser.parse_args(argv)

    browser = args.chromium or next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        raise SystemExit("no Chromium found: apt-get install -y chromium, or pass --chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-ui-") as scratch:
        scratch_dir = Path(scratch)
        runs = (args.runs_dir or make_runs(scratch_dir, args.study, args.profile)).resolve()
        if not (runs / "mlflow.db").exists():
            raise SystemExit(f"{runs} holds no mlflow.db: run a study first")
        port = args.port or free_port()
        base = f"http://127.0.0.1:{port}"
        log = scratch_dir / "ui.log"
        # What a user runs. Its output goes to a file: a pipe nobody reads would fill
        # with the server's request log and stall it.
        with log.open("w") as sink:
            server = subprocess.Popen(
                harness("ui", "--port", str(port), "--runs-dir", str(runs)),
                env=study_env(args.study), start_new_session=True, stdout=sink,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_for(f"{base}/health", server)
            printed = log.read_text().split("\n")
            urls = pages(runs, args.study, base, printed)
            for name, url in urls.items():
                screenshot(browser, url, args.out / f"{name}.png", scratch_dir / "browser",
                           args.window_size)  # fmt: skip
            (args.out / "urls.txt").write_text(
                "`harness ui` printed:\n"
                + "".join(f"    {line}\n" for line in printed[:4] if line.strip())
                + "".join(f"{name}: {url}\n" for name, url in urls.items())
            )
        finally:
            stop(server)
    return 0


def pages(runs: Path, study: str, base: str, printed: list[str]) -> dict[str, str]:
    """The pages shot: the experiment's own page (what the experiments list links to),
    the same in the "Model training" view, the trials URL `harness ui` printed (a table)
    and its charts, and MLflow's comparison of the five best trials (by the study's
    metric; the first five trials for a store from before harness tagged it)."""
    from mlflow import MlflowClient

    from harness.tracking import PRIMARY_METRIC_TAG, PRIMARY_MODE_TAG, TRIAL_KEY_TAG, tracking_uri

    prefix = f"  {study}: "
    trials = next((line[len(prefix):].strip() for line in printed if line.startswith(prefix)),
                  None)  # fmt: skip
    if trials is None:
        raise SystemExit(f"`harness ui` printed no URL for {study!r}:\n" + "\n".join(printed))
    client = MlflowClient(tracking_uri(runs))
    experiment = client.get_experiment_by_name(study)
    eid = experiment.experiment_id
    metric = experiment.tags.get(PRIMARY_METRIC_TAG)
    order = "ASC" if experiment.tags.get(PRIMARY_MODE_TAG) == "min" else "DESC"
    best = client.search_runs([eid], filter_string=f"tags.`{TRIAL_KEY_TAG}` != ''",
                              order_by=[f"metrics.`{metric}` {order}"] if metric else None,
                              max_results=5)  # fmt: skip
    ids = json.dumps([run.info.run_id for run in best], separators=(",", ":"))
    return {
        "1-experiment": f"{base}/#/experiments/{eid}",
        "2-experiment-model-training": f"{base}/#/experiments/{eid}?workflowType=machine_learning",
        "3-trials-table": trials,
        "4-trials-charts": trials.replace("compareRunsMode=TABLE", "compareRunsMode=CHART"),
        "5-compare": f"{base}/#/compare-runs?runs={quote(ids)}"
                     f"&experiments={quote(json.dumps([eid]))}&workflowType=machine_learning",
    }


if __name__ == "__main__":
    sys.exit(main())
