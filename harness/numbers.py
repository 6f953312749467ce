"""Numbers as text that never rounds into a different claim.

A training accuracy of 99.998% printed with two decimals reads "100.00", which says the
labels were fitted when they were not; an interval's bound of 0.996 printed as "1.00" sits
on a threshold of 1 it does not reach. The helpers here keep the fewest decimals at which
every value still reads apart from the marks (a ceiling such as 100, a threshold) it does
not equal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

MOST_DECIMALS = 6  # beyond this a value that close to a mark is the mark, for a reader


def fixed(value: float, decimals: int, signed: bool = False) -> str:
    """``value`` with ``decimals`` decimals; a rounded zero reads "0.00", never "-0.00"
    (or "+0.00" when ``signed``), since "-0.00" reads like a real negative number."""
    text = f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"
    if text[0] == "-" and float(text) == 0:
        text = ("+" if signed else "") + text[1:]
    return text


def decimals_apart(values: Iterable[float], marks: Iterable[float], decimals: int = 2,
                   most: int = MOST_DECIMALS) -> int:
    """The fewest decimals, at least ``decimals``, at which no value prints as a mark it
    does not equal: ``decimals_apart([99.998], [100.0])`` is 3 ("99.998", not "100.00")."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    targets = [float(m) for m in marks if m is not None and math.isfinite(float(m))]
    for places in range(decimals, most + 1):
        if not any(fixed(v, places) == fixed(m, places) and v != m
                   for v in finite for m in targets):
            return places
    return most


def fixed_apart(value: float, marks: Iterable[float], decimals: int = 2,
                signed: bool = False) -> str:
    """``value`` with as many decimals as keep it apart from ``marks`` (at least
    ``decimals``): 0.99998 x 100 against 100 prints "99.998"."""
    return fixed(value, decimals_apart([value], marks, decimals), signed)
