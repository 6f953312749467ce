"""SIGTERM and SIGHUP stop a command as Ctrl-C does.

A cluster scheduler, ``timeout`` or ``kill`` stops a job with SIGTERM (a closed terminal
sends SIGHUP). Without a handler of ours, Ray's driver handler (set by ``ray.init``) calls
``sys.exit`` wherever the main thread happens to be, which can land in garbage collection
and be lost, and the process dies in Ray's C++ signal dump. Instead the signal is handed to
whatever handles Ctrl-C at that moment: inside ``Tuner.fit`` that is Tune's own handler,
which stops the trials after saving the experiment (the stage ends as interrupted, the
state is kept for ``--resume``); elsewhere it is Python's KeyboardInterrupt. The command
then exits with 128 + the signal's number (143, 129) and one ``harness:`` line, and the
MLflow runs are marked KILLED as after Ctrl-C.

A scheduler sends SIGKILL after a grace period (Slurm's KillWait and Kubernetes'
terminationGracePeriodSeconds are 30 s by default): a command still stopping
``GRACE_SECONDS`` after the signal exits at once, with the same code, after marking its
MLflow runs KILLED (``at_deadline``) and killing the processes it started (its local Ray
instance's). Stopping takes about 20 s on a busy 2-core machine: Tune gives a running
trial 10 s to end before it kills it, then Ray shuts down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from harness.errors import HarnessError

GRACE_SECONDS = 25.0  # under the schedulers' usual 30 s before SIGKILL
HANDLED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_received: list[int] = []  # the first signal received while handled


class Terminated(HarnessError):
    """Stopped by SIGTERM; the state is kept."""

    exit_code = 143


class HungUp(Terminated):
    """Stopped by SIGHUP (the terminal closed); the state is kept."""

    exit_code = 129


_at_deadline: list[Callable[[], None]] = []


@contextlib.contextmanager
def at_deadline(callback: Callable[[], None]) -> Iterator[None]:
    """Run ``callback`` (best effort, from the timer's thread) if the command is still
    stopping at the grace period: what must not be left undone (the MLflow run's status)."""
    _at_deadline.append(callback)
    try:
        yield
    finally:
        _at_deadline.remove(callback)


def _exit_now(signum: int, grace: float) -> None:
    print(f"harness: error: stopped by {signal.Signals(signum).name}: still stopping "
          f"{grace:g}s after the signal, so exiting now; run the same command with --resume "
          "to continue", file=sys.stderr, flush=True)
    for callback in reversed(_at_deadline):
        with contextlib.suppress(Exception):
            callback()
    with contextlib.suppress(Exception):
        from harness.ray_leftovers import kill_own_processes

        kill_own_processes()  # the local Ray instance's; the next run would end them anyway
    os._exit(128 + signum)


def _on_signal(signum: int, frame: Any) -> None:
    if _received:
        return  # stopping already; the grace timer bounds how long
    _received.append(signum)
    timer = threading.Timer(GRACE_SECONDS, _exit_now, (signum, GRACE_SECONDS))
    timer.daemon = True
    timer.start()
    interrupt = signal.getsignal(signal.SIGINT)
    if callable(interrupt) and interrupt is not signal.default_int_handler:
        interrupt(signal.SIGINT, frame)  # Tune's: stop the trials after saving the state
    else:
        raise KeyboardInterrupt


def is_ours(handler: Any) -> bool:
    return handler is _on_signal


@contextlib.contextmanager
def signals_stop_like_ctrl_c() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP stop it like Ctrl-C (see the module);
    the earlier handlers come back afterwards. Only on the main thread (elsewhere Python
    cannot set handlers, and nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in HANDLED}
    _received.clear()
    for sig in HANDLED:
        signal.signal(sig, _on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def received() -> int | None:
    """The signal that is stopping the command, or None."""
    return _received[0] if _received else None


def stopped_error(error: BaseException) -> Terminated | None:
    """How to report ``error`` when a handled signal is what stopped the command: one
    error with the signal's exit code, keeping what ``error`` said (which trials were
    unfinished, where the state is); None when no signal came."""
    signum = received()
    if signum is None:
        return None
    kind = HungUp if signum == getattr(signal, "SIGHUP", None) else Terminated
    detail = str(error) if isinstance(error, HarnessError) and str(error) else (
        "the state is kept: run the same command with --resume to continue")
    return kind(f"stopped by {signal.Signals(signum).name}: {detail}")
