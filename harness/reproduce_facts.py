"""Then and now: what a record says about the machine and mode that made it, the same
facts for re-training it here, and whether bit-for-bit agreement can be expected;
``harness reproduce`` prints them side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# What differs between then and now, in the order the table shows it.
FACTS = ("commit", "torch", "CPU model", "device", "deterministic", "precision")


def _precision(setting: Any, device: Any) -> Any:
    """The precision an older record (one whose environment does not name it) ran in, in
    harness.environment.resolve_precision's words: its config's setting on its device."""
    if setting is None:
        return None
    if setting == "fp32" or (setting == "auto" and device != "cuda"):
        return "float32"
    return "bf16"  # asked for, or auto on CUDA (a card before Ampere would have said so)


def recorded_facts(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the record says about the machine and mode that made it; records written
    before their environment named the device kind, deterministic flag and precision
    fall back to environment.device and the config."""
    env = record.get("environment") or {}
    config = record.get("config") or {}
    device = env.get("device_kind") or env.get("device")
    cpu = env.get("cpu_model") or (env.get("device_name") if device == "cpu" else None)
    return {
        "commit": env.get("git_commit"),
        "torch": env.get("torch"),
        "CPU model": cpu,
        "device": device,
        "deterministic": env.get("deterministic", config.get("deterministic")),
        "precision": env.get("precision") or _precision(config.get("precision"), device),
    }


def current_facts(config: Any) -> dict[str, Any]:
    """The same facts for re-training ``config`` on this machine."""
    import torch

    from harness.environment import (
        device_name,
        environment_facts,
        resolve_device,
        resolve_precision,
    )

    device = resolve_device(getattr(config, "device", "cpu"))
    env = environment_facts(device)
    return {
        "commit": env["git_commit"],
        "torch": env["torch"],
        "CPU model": device_name(torch.device("cpu")),
        "device": device.type,
        "deterministic": getattr(config, "deterministic", None),
        "precision": resolve_precision(getattr(config, "precision", "auto"), device)[0],
    }


def not_repeatable(then: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
    """Whether bit-for-bit agreement cannot be expected: another device kind, another CPU
    model, or CUDA without deterministic algorithms on either side. A CPU run repeats bit
    for bit only on the same CPU model: PyTorch picks its vector kernels by instruction set,
    so float sums differ in their last bits on another CPU and training drifts from there
    (a 7 s cnn_search record made on an Intel Xeon came back at 22% test accuracy instead of
    29.45% on an AMD EPYC)."""
    if then["device"] != now["device"]:
        return True
    if then["device"] == "cpu" and then.get("CPU model") and now.get("CPU model") and (
            then["CPU model"] != now["CPU model"]):
        return True
    return any(side["device"] == "cuda" and not side["deterministic"] for side in (then, now))


def shown(value: Any) -> str:
    if value is None:
        return "-"
    return repr(value) if isinstance(value, float) else str(value)


def then_and_now_lines(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> list[str]:
    """One line per fact: its recorded values, its values here, and whether they differ."""
    lines = ["then -> now (the records' environment and config -> this machine):"]
    for fact in FACTS:
        then = list(dict.fromkeys(shown(t[fact]) for t, _ in pairs))
        now = list(dict.fromkeys(shown(n[fact]) for _, n in pairs))
        same = "same" if then == now and len(then) == 1 else "DIFFERS"
        lines.append(f"  {fact:<14} {', '.join(then)} -> {', '.join(now)}  ({same})")
    return lines
