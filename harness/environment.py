"""Where a trial runs: device choice and the facts a record keeps about the machine."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

import harness
from harness.errors import ConfigError

# Set in every process that may train before CUDA starts (Ray workers get it from their
# environment; harness.train sets it on import too): cuBLAS reads it once, when it first
# allocates its workspace, so a trial that asks for determinism in a reused worker would
# set it too late. A user's own value is kept. ":4096:8" (8 buffers of 4 MiB) is one of
# the two values PyTorch documents for deterministic cuBLAS.
WORKER_ENV = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


def prepare_worker_environment() -> None:
    """Put WORKER_ENV into this process's environment (keeping values already set)."""
    for key, value in WORKER_ENV.items():
        os.environ.setdefault(key, value)


def resolve_precision(
    requested: str, device: torch.device, bf16_supported: bool | None = None
) -> tuple[str, str | None]:
    """(the precision a trial runs in: "float32" or "bf16", a note when that differs from
    what was asked). ``auto`` is bf16 on a CUDA card with native bf16, else float32; bf16
    asked on a card without it (before Ampere) runs in float32, with the note saying so.
    ``bf16_supported`` overrides the card's answer (tests)."""
    if requested == "fp32" or (requested == "auto" and device.type != "cuda"):
        return "float32", None
    if device.type != "cuda":
        return "bf16", None  # CPU autocast has bf16 everywhere
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported(including_emulation=False)
    if bf16_supported:
        return "bf16", None
    # The card's name is the record's device_name.
    return "float32", (f"precision={requested}: the card has no native bf16 (compute "
                       "capability 8.0, Ampere, and later have it), so the trial ran in float32")


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


def environment_facts(device: torch.device, **run: Any) -> dict[str, Any]:
    """The machine and software of a trial, then ``run``: what its numbers depend on
    (device_kind, deterministic, precision, precision_note, compiled, random_draws)."""
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "harness": harness.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        **run,
    }
