"""Screenshots of the MLflow UI as a user meets it after `harness run`: `harness ui` on a
runs folder, driven by headless Chromium.

    python tools/ui_screenshot.py --out shots/                  # runs `harness run cnn_search --profile smoke` first
    python tools/ui_screenshot.py --out shots/ --runs-dir runs  # an existing runs folder
    python tools/ui_screenshot.py --out shots/ --study tiny --profile smoke

Writes into --out (and the URLs, with what `harness ui` printed, into ``urls.txt``):

- ``1-experiments.png``: the base URL `harness ui` prints: the experiments list in the
  "Model training" view;
- ``2-experiment-model-training.png``: the study's runs page in that view: the trial runs
  nested under their collapsed parent run;
- ``3-stage-table.png``: the first stage view `harness ui` prints for the study: that
  stage's trials, best first, in a table of its metric, outcome and varying params;
- ``4-stage-validation.png``: the first stage view sorted on a validation metric (else
  the second view), the test metric beside it;
- ``5-stage-charts.png``: the same as charts;
- ``6-compare.png``: MLflow's comparison page of that stage's five best trials.

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
    parser.add_argument("--study", default="cnn_search", help="the study to run and show")
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
                + "".join(f"    {line}\n" for line in own_lines(printed))
                + "".join(f"{name}: {url}\n" for name, url in urls.items())
            )
        finally:
            stop(server)
    return 0


def own_lines(printed: list[str]) -> list[str]:
    """What `harness ui` printed before MLflow's server took over: up to its store line."""
    end = next((i for i, line in enumerate(printed) if line.startswith("store: ")), 0)
    return [line for line in printed[: end + 1] if line.strip()]


def printed_links(printed: list[str], study: str) -> list[str]:
    """The stage-view URLs `harness ui` printed under the study's heading, in its order."""
    links, inside = [], False
    for line in printed:
        if line.startswith("  ") and not line.startswith("    "):
            inside = line.strip() == study
        elif inside and line.startswith("    "):
            links.append(line.split()[-1])
    return links


def home_link(printed: list[str]) -> str:
    line = next((line for line in printed if line.startswith("MLflow UI: ")), None)
    if line is None:
        raise SystemExit("`harness ui` printed no base URL:\n" + "\n".join(printed))
    return line.split()[2]


def pages(runs: Path, study: str, base: str, printed: list[str]) -> dict[str, str]:
    """The pages shot: the base URL `harness ui` printed (the experiments list), the
    study's own page in the "Model training" view (its trials nested under the parent
    run), the first stage view it printed (a table), the first one sorted on a
    validation metric (else the second) as a table and as charts, and MLflow's
    comparison of that stage's five best trials by its metric."""
    from mlflow import MlflowClient

    from harness.tracking import tracking_uri
    from harness.ui_views import VIEW_TAG_PREFIX

    links = printed_links(printed, study)
    if not links or "viewStateShareKey=" not in links[0]:
        raise SystemExit(f"`harness ui` printed no stage views for {study!r}:\n"
                         + "\n".join(printed))  # fmt: skip
    client = MlflowClient(tracking_uri(runs))
    experiment = client.get_experiment_by_name(study)
    eid = experiment.experiment_id

    def state(link: str) -> dict:
        key = link.split("viewStateShareKey=")[1].split("&")[0]
        return json.loads(json.loads(experiment.tags[VIEW_TAG_PREFIX + key])["state"])

    chosen = next((link for link in links if "val_" in state(link)["orderByKey"]),
                  links[min(1, len(links) - 1)])  # fmt: skip
    view = state(chosen)
    order = "ASC" if view["orderByAsc"] else "DESC"
    best = client.search_runs([eid], filter_string=view["searchFilter"],
                              order_by=[f"{view['orderByKey']} {order}"], max_results=5)  # fmt: skip
    ids = json.dumps([run.info.run_id for run in best], separators=(",", ":"))
    return {
        "1-experiments": home_link(printed),
        "2-experiment-model-training": f"{base}/#/experiments/{eid}?workflowType=machine_learning",
        "3-stage-table": links[0],
        "4-stage-validation": chosen,
        "5-stage-charts": chosen.replace("compareRunsMode=TABLE", "compareRunsMode=CHART"),
        "6-compare": f"{base}/#/compare-runs?runs={quote(ids)}"
                     f"&experiments={quote(json.dumps([eid]))}&workflowType=machine_learning",
    }


if __name__ == "__main__":
    sys.exit(main())
