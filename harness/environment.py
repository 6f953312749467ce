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


# What a run writes inside the checkout: outputs, not code, so they never make it dirty. A
# study run after another in one checkout would otherwise name "-dirty" for the first
# run's uncommitted results, though both ran the same code.
OUTPUT_FOLDERS = ("results", "runs")


@functools.cache
def git_commit() -> str | None:
    """The commit of the harness checkout, "-dirty" when tracked files other than the run
    outputs (OUTPUT_FOLDERS) differ from it; HARNESS_GIT_COMMIT wins (e.g. on a machine
    without git)."""
    if os.environ.get("HARNESS_GIT_COMMIT"):
        return os.environ["HARNESS_GIT_COMMIT"]
    where = Path(harness.__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip() + ("-dirty" if code_changed(where) else "")
    except (OSError, subprocess.SubprocessError):
        return None


def code_changed(inside: Path) -> bool:
    """Whether the checkout holding ``inside`` has tracked changes outside OUTPUT_FOLDERS."""
    excluded = [f":(top,exclude){folder}" for folder in OUTPUT_FOLDERS]
    status = subprocess.run(
        ["git", "-C", str(inside), "status", "--porcelain", "--untracked-files=no", "--",
         ":(top)", *excluded],
        capture_output=True, text=True, timeout=5,
    )
    return bool(status.stdout.strip())


def environment_facts(device: torch.device) -> dict[str, str | None]:
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "harness": harness.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
    }
