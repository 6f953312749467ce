"""The scale a verdict was judged at, read from its records: "at mini scale (5,000 training
images, 2,000 test images, 6 epochs, widths 8-24)". Every verdict string carries it
(``harness.evidence.Evidence.verdict_text``), so none reads as a finding at full scale."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.records import is_finished


def _span(values: Iterable[Any]) -> tuple[float, float] | None:
    numbers = sorted({float(v) for v in values if isinstance(v, int | float)
                      and not isinstance(v, bool)})
    return (numbers[0], numbers[-1]) if numbers else None


def _count(span: tuple[float, float], unit: str) -> str:
    low, high = span
    shown = f"{low:,.0f}" if low == high else f"{low:,.0f}-{high:,.0f}"
    return f"{shown} {unit}"


def scale_text(records: Iterable[Mapping[str, Any]], profile: str) -> str:
    """The finished records' scale: training and test images, epochs, and the widths where
    they vary; a check that trains nothing (theory) by its seeds."""
    done = [r for r in records if is_finished(r)]
    data = [r.get("data") or {} for r in done]
    configs = [r.get("config") or {} for r in done]
    parts = []
    train = _span(d.get("train_size") for d in data)
    if train:
        parts.append(_count(train, "training images"))
    test = _span(d.get("test_size") for d in data)
    if test:
        parts.append(_count(test, "test images"))
    epochs = _span(c.get("epochs") for c in configs)
    if epochs:
        parts.append(_count(epochs, "epochs" if epochs != (1.0, 1.0) else "epoch"))
    widths = _span(c.get("model.base_width") for c in configs)
    if widths and widths[0] != widths[1]:
        parts.append(f"widths {widths[0]:g}-{widths[1]:g}")
    if not parts:
        repeats = {c.get("repeat", 0) for c in configs}
        parts.append(f"{len(repeats)} seed{'s' if len(repeats) != 1 else ''} of random "
                     "problems")
    return f"at {profile} scale ({', '.join(parts)})"
