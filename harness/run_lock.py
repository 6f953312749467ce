"""One run at a time per runs folder, study and profile.

Two runs of one study and profile (a second terminal, a re-submitted job) would share one
Tune folder, one records folder and one MLflow parent run, and each would delete what the
other wrote. So ``harness run`` takes ``runs/locks/<study>-<profile>.lock`` before it writes
anything and a second run is refused, naming the holder.

The lock is an ``flock`` on the file, which the kernel drops when its holder dies however it
dies; the file also names the holder (pid, its start time in clock ticks since boot, the
boot, host and wall-clock start), which the refusal shows. On a file system without
``flock`` the record alone decides: a holder whose pid and start time no longer match a
live process of this boot is gone. A lock a dead run left is taken over, saying so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

LOCKS_DIR = "locks"


class RunLocked(HarnessError):
    """Another run of the same study and profile is using the runs folder."""

    exit_code = 8


def lock_path(runs_dir: Path, study: str, profile: str) -> Path:
    return runs_dir / LOCKS_DIR / f"{study}-{profile}.lock"


def _holder() -> dict[str, Any]:
    from harness.ray_leftovers import start_time

    pid = os.getpid()
    return {"pid": pid, "start": start_time(pid), "boot_id": _boot_id(),
            "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def holder_alive(holder: dict[str, Any]) -> bool:
    """The recorded holder is a live process: same host and boot, and its pid has the
    recorded start time (a pid reused since has another)."""
    from harness.ray_leftovers import start_time

    if holder.get("host") != socket.gethostname() or holder.get("boot_id") != _boot_id():
        return False
    pid = holder.get("pid")
    return isinstance(pid, int) and holder.get("start") is not None \
        and start_time(pid) == holder["start"]


def _read(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    try:
        holder = json.loads(data)
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


def _write(fd: int, holder: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(holder, sort_keys=True) + "\n").encode())
    os.fsync(fd)


def _flock(fd: int) -> bool | None:
    """True: locked; False: another process holds it; None: no flock on this file system."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise
    return True


def _refusal(path: Path, holder: dict[str, Any] | None, what: str) -> RunLocked:
    if holder:
        who = (f"pid {holder.get('pid')} on {holder.get('host')}, started "
               f"{holder.get('started')}")
    else:
        who = "a process that has not written its name yet"
    return RunLocked(
        f"another run of {what} is using this runs folder ({who}; lock {path}): wait for it "
        f"to finish or stop it (kill {holder.get('pid') if holder else '<pid>'}; it keeps its "
        "state for --resume), or give this run its own --runs-dir"
    )


@contextlib.contextmanager
def run_lock(runs_dir: Path, study: str, profile: str,
             echo: Callable[[str], None] = print) -> Iterator[Path]:
    """Hold the lock of ``study``/``profile`` in ``runs_dir`` while the block runs; a run
    already holding it is refused (RunLocked), a dead run's lock is taken over."""
    path = lock_path(runs_dir, study, profile)
    what = f"{study}/{profile}"
    # Folders this run makes only for its lock go again with it: a run refused later
    # (a Ray cluster that refuses it) leaves nothing behind.
    made = [folder for folder in (path.parent, runs_dir) if not folder.exists()]
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            continue  # another run removed the empty lock folder just then
        except OSError as error:
            raise HarnessError(f"cannot create the lock {path}: "
                               f"{error.strerror or error}") from None
        try:
            locked = _flock(fd)
            earlier = _read(fd)
            if locked is False or (locked is None and earlier and holder_alive(earlier)):
                raise _refusal(path, earlier, what)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed the file as we opened it: take the new one
                os.close(fd)
                continue
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        break
    try:
        if earlier and earlier.get("pid") != os.getpid():
            echo(f"took over the lock of an earlier run of {what} that is gone (pid "
                 f"{earlier.get('pid')}, started {earlier.get('started')}: killed?)")
        _write(fd, _holder())
        yield path
    finally:
        # Removed before it is released, so whoever opens the path next finds no holder.
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        for folder in made:
            with contextlib.suppress(OSError):  # not empty (the run wrote there): kept
                folder.rmdir()
