"""The time budget: the whole suite's, counted from the first import, and each part's share
of it, enforced inside the part.

A part gets ``min(its share, what is left once the later parts' needs are kept)`` seconds.
Inside that window two things stop it: the part's own loops call ``Deadline.check()`` (per
epoch, per timed step, per sharing count), and, for code that checks nothing (a stuck
DataLoader, a long compile), a SIGALRM a few seconds after the deadline raises ``OverBudget``
in the suite's main thread. Worker processes get the remaining seconds as their timeout.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

STARTED = time.perf_counter()  # the budget counts from here: imports and data included
# How long past its deadline a part that never checks it is left before the alarm stops it.
ALARM_GRACE_S = 5.0


class OverBudget(BaseException):
    """A part ran past its share of the time budget; the message says which and how long.
    A BaseException, like KeyboardInterrupt: the ``except Exception`` that keeps one
    study's or one workload's failure from stopping a part must not swallow it."""


@dataclass(frozen=True)
class Deadline:
    """The moment (time.perf_counter) a part must stop by, and its name for the message."""

    part: str
    at: float
    share: float

    def left(self) -> float:
        return self.at - time.perf_counter()

    def check(self) -> None:
        """Raise OverBudget once the part's share is spent: call it in every loop."""
        if time.perf_counter() > self.at:
            raise OverBudget(f"{self.part} overran its share of {self.share:.3g}s of the budget "
                             "and was stopped")

    @classmethod
    def never(cls, part: str = "part") -> Deadline:
        return cls(part, math.inf, math.inf)


@contextlib.contextmanager
def part_deadline(part: str, seconds: float, grace: float = ALARM_GRACE_S) -> Iterator[Deadline]:
    """A Deadline ``seconds`` from now, with a SIGALRM backstop ``grace`` seconds after it
    (main thread on POSIX only; elsewhere the part's own checks are the only stop)."""
    deadline = Deadline(part, time.perf_counter() + max(0.0, seconds), seconds)
    use_alarm = (hasattr(signal, "setitimer") and math.isfinite(seconds)
                 and threading.current_thread() is threading.main_thread())
    if not use_alarm:
        yield deadline
        return

    def on_alarm(_signum: int, _frame: object) -> None:
        raise OverBudget(f"{part} overran its share of {seconds:.3g}s of the budget and was "
                         f"stopped by the alarm {grace:.3g}s past it (no check of its own "
                         "came in time)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(0.001, seconds + grace))
    try:
        yield deadline
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
