"""Where a trial runs: device choice and the facts a record keeps about the machine."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

import torch

import harness
from harness.errors import ConfigError


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for but no CUDA GPU is visible; use --device cpu")
    return torch.device(requested)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


@functools.cache
def git_commit() -> str | None:
    """The commit of the harness checkout; HARNESS_GIT_COMMIT wins (e.g. on a machine without git)."""
    if os.environ.get("HARNESS_GIT_COMMIT"):
        return os.environ["HARNESS_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(harness.__file__).resolve().parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )
        commit = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(Path(harness.__file__).resolve().parent), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment_facts(device: torch.device) -> dict[str, str | None]:
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "harness": harness.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
    }
