"""Ray processes a killed run left behind, found and ended by the next run.

A driver killed by SIGKILL cannot stop the local Ray instance it started: its GCS server
and raylet notice and exit, but the raylet's agents (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``) were seen alive minutes later, holding memory and ports. So while
a run's own local instance is up, ``runs/ray-local/<driver pid>.json`` names the driver and
every process it started (pid and start time, refreshed every few seconds), and the file
is removed when the instance stops. The next ``harness run`` reads the files of drivers that
are gone and ends the processes still alive, saying so.

Never anything else: a process is ended only when its pid *and* its start time (clock
ticks since boot, same boot) match the record, so a pid reused since is left alone, and it
is signalled through a pidfd opened before that check, so it cannot be swapped in between.
Ray instances the user started (``ray start --head``) or joined by address are never
recorded. The process group is not used: the driver shares it with whatever the shell
started beside it (``harness run ... | tee log``). Linux only (``/proc``, pidfds);
elsewhere nothing is recorded or ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.files import write_json_atomic

LEFTOVERS_DIR = "ray-local"
REFRESH_SECONDS = 5.0  # workers start while a run goes on; agents start with the instance
TERM_GRACE_SECONDS = 10.0  # SIGTERM first: Ray's processes clean their sockets on it
PROC = Path("/proc")


def supported() -> bool:
    return (PROC / "self" / "stat").exists() and hasattr(os, "pidfd_open")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; None if it is gone (or a zombie)."""
    fields = _stat(pid)
    return None if fields is None or fields[0] in ("Z", "X") else int(fields[19])


def _boot_id() -> str:
    return (PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()


def _title(pid: int) -> str:
    """A short name for a process: Ray's title (ray::DashboardAgent), else its program."""
    try:
        args = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    words = [a.decode(errors="replace") for a in args if a]
    if not words:
        return f"pid {pid}"
    if words[0].startswith("ray::"):
        return words[0].split()[0]
    script = next((w for w in words[1:3] if w.endswith(".py")), None)
    return Path(script or words[0]).name


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live process ``root`` started, directly or not."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child in children.get(pid, []):
            if child not in found and (started := start_time(child)) is not None:
                found[child] = started
                frontier.append(child)
    return found


def _session_dir() -> str | None:
    try:
        import ray

        return ray._private.worker._global_node.get_session_dir_path()  # noqa: SLF001
    except Exception:  # noqa: BLE001 - informative only
        return None


@contextlib.contextmanager
def recorded_instance(runs_dir: Path) -> Iterator[Path | None]:
    """While the local Ray instance this process started is up, keep its processes in
    ``runs_dir/ray-local/<pid>.json``; the file goes when the block ends normally or by an
    exception (ray.shutdown has stopped them by then)."""
    if not supported():
        yield None
        return
    path = runs_dir / LEFTOVERS_DIR / f"{os.getpid()}.json"
    me = os.getpid()
    base = {"driver": {"pid": me, "start": start_time(me)}, "boot_id": _boot_id(),
            "session_dir": _session_dir()}
    known: dict[int, int] = {}
    stop = threading.Event()

    def refresh() -> None:
        current = descendants(me)
        if current.keys() - known.keys():
            known.update(current)  # a process that exited stays listed; its start time
            write_json_atomic(path, {**base, "processes": [  # keeps a reused pid safe
                {"pid": pid, "start": started} for pid, started in sorted(known.items())]})

    def keep_fresh() -> None:
        while not stop.wait(REFRESH_SECONDS):
            with contextlib.suppress(OSError):
                refresh()

    refresh()
    thread = threading.Thread(target=keep_fresh, daemon=True, name="ray-leftovers")
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        path.unlink(missing_ok=True)


def _alive(entry: dict[str, Any]) -> bool:
    return entry.get("start") is not None and start_time(entry["pid"]) == entry["start"]


def _open_if_same(entry: dict[str, Any]) -> int | None:
    """A pidfd on the recorded process, or None when it is gone or its pid was reused."""
    try:
        fd = os.pidfd_open(entry["pid"])
    except OSError:  # ProcessLookupError: gone
        return None
    if start_time(entry["pid"]) != entry["start"]:  # checked after opening: no swap possible
        os.close(fd)
        return None
    return fd


def wait_exit(fds: dict[int, int], seconds: float) -> None:
    """Wait until the processes behind ``fds`` (pidfd -> pid) exit, or ``seconds`` pass;
    exited ones are removed from ``fds`` and closed. No polling: a pidfd turns readable
    when its process exits."""
    deadline = time.monotonic() + seconds
    while fds and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(list(fds), [], [], left)
        for fd in ready:
            fds.pop(fd)
            os.close(fd)


def wait_gone(pids: Iterable[int], seconds: float) -> None:
    """Wait until every process in ``pids`` has exited, or ``seconds`` pass."""
    fds: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # already gone
            fds[os.pidfd_open(pid)] = pid
    try:
        wait_exit(fds, seconds)
    finally:
        for fd in fds:
            os.close(fd)


def kill_own_processes() -> int:
    """SIGKILL every live process this one started (its local Ray instance's): the last
    resort of a run that must exit now (harness.termination). Returns how many."""
    if not supported():
        return 0
    killed = 0
    for pid, started in descendants(os.getpid()).items():
        fd = _open_if_same({"pid": pid, "start": started})
        if fd is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            killed += 1
        os.close(fd)
    return killed


def end_leftovers(runs_dir: Path) -> str | None:
    """End what local Ray instances of killed runs left in ``runs_dir``; one line saying
    what was ended, or None. Records of runs still going are left as they are."""
    folder = runs_dir / LEFTOVERS_DIR
    if not supported() or not folder.is_dir():
        return None
    boot = _boot_id()
    ended: list[str] = []
    sessions: list[str] = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            processes = list(record["processes"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours to judge: leave it
        if record.get("boot_id") == boot and _alive(record["driver"]):
            continue  # its run is still going
        fds: dict[int, int] = {}
        if record.get("boot_id") == boot:
            for entry in processes:
                if (fd := _open_if_same(entry)) is not None:
                    ended.append(f"{_title(entry['pid'])} (pid {entry['pid']})")
                    fds[fd] = entry["pid"]
        for sig, grace in ((signal.SIGTERM, TERM_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            for fd in list(fds):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, sig)
            wait_exit(fds, grace)
        for fd in fds:
            os.close(fd)
        if fds:
            continue  # still alive after SIGKILL: keep the record for the next run
        path.unlink(missing_ok=True)
        if record.get("session_dir"):
            sessions.append(Path(record["session_dir"]).name)
    if not ended:
        return None
    where = f" of {', '.join(sessions)}" if sessions else ""
    return (f"ended {len(ended)} Ray processes that a killed run's local Ray instance{where} "
            f"left running: {', '.join(ended)}")
