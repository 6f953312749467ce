"""What a user reads on the console when things go wrong: one harness line each, not Ray's
tracebacks and hints. A trial's worker killed mid-run (Ray's ActorDiedError), then Ctrl-C
(Tune's `Tuner.restore(...)` hint), in one run of tiny/long on its own local Ray."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import tiny_study

pytest.importorskip("ray")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
GUARD = 150  # seconds: only ends a hung test, nothing is timed


def _descendants(root: int) -> dict[int, str]:
    """pid -> command line of every live process started, directly or not, by ``root``."""
    parents, titles = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry.name)], titles[int(entry.name)] = int(fields[1]), title.strip()
    found, frontier = {}, {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - set(found)
        found.update({pid: titles[pid] for pid in frontier})
    return found


def _lines(process: subprocess.Popen) -> queue.Queue:
    """The process's output, line by line, as it comes (None at its end)."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _until(lines: queue.Queue, seen: list[str], wanted: str) -> str:
    while True:
        line = lines.get(timeout=GUARD)
        if line is None:
            raise AssertionError(f"no line with {wanted!r}:\n{''.join(seen)[-4000:]}")
        seen.append(line)
        if wanted in line:
            return line


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker in /proc")
def test_a_killed_worker_and_ctrl_c_are_one_harness_line_each(tmp_path):
    flag = tmp_path / "hold"
    flag.write_text("hold the third trial")
    fifo = Path(f"{flag}.fifo")
    os.mkfifo(fifo)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    env.update(HARNESS_STUDIES="tiny_study", PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]),
               **{tiny_study.HOLD_FLAG_ENV: str(flag)})
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "tiny", "--profile", "long", "--no-mlflow"],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    guard = threading.Timer(GUARD, process.kill)
    guard.start()
    seen: list[str] = []
    try:
        lines = _lines(process)
        # The held trial announces itself; from then on it waits while the flag exists.
        announcement = os.open(fifo, os.O_RDWR)  # RDWR: no EOF before a writer
        try:
            assert os.read(announcement, 100) == b"held\n"
        finally:
            os.close(announcement)
        # The run started its own Ray: the trial's worker is a descendant of the run.
        (worker,) = [pid for pid, title in _descendants(process.pid).items()
                     if title.startswith("ray::") and title.endswith(".train")]
        os.kill(worker, signal.SIGKILL)
        notice = _until(lines, seen, "harness: ")
        # Tune retries the trial from its checkpoint; it holds (and announces) again.
        announcement = os.open(fifo, os.O_RDWR)
        try:
            assert os.read(announcement, 100) == b"held\n"
        finally:
            os.close(announcement)
        process.send_signal(signal.SIGINT)
        while (line := lines.get(timeout=GUARD)) is not None:
            seen.append(line)
        code = process.wait(timeout=GUARD)
    finally:
        guard.cancel()
        process.kill()
    out = "".join(seen)
    assert code == 130, out[-4000:]
    assert notice.startswith("harness: trial ") and "worker" in notice, notice
    harness_lines = [line for line in seen if line.startswith("harness: ")]
    assert len(harness_lines) == 2, out[-4000:]  # the worker's death, then the interrupt
    assert harness_lines[1].startswith("harness: error: interrupted with 1 of 3 trials "
                                       "unfinished"), out[-4000:]
    # Ray's own words for the same events: its traceback, its raylet's notice, its retry's
    # warning, its note on the signal and its hint to call Tuner.restore.
    for noise in ("Traceback", "ActorDiedError", "A worker died", "Remote file not found",
                  "Stop signal received", "Tuner.restore", "has been interrupted"):
        assert noise not in out.replace(notice, ""), out[-4000:]
