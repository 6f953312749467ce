"""How much GPU a stage's trials ask Ray for, and a line saying where they run.

Ray hides the GPUs from a trial that asked for none (``CUDA_VISIBLE_DEVICES=""``), so a
trial with ``device=auto`` trains on the GPU only if its stage asked for a share. A
profile that names no share (smoke, mini: ``gpus_per_trial=0``) would therefore train on
the CPUs of a GPU machine without a word. Instead, when the Ray cluster has GPUs, such a
stage asks for ``DEFAULT_GPU_SHARE`` per trial. A trial kind that never uses a GPU (the
theory checks) asks for none, whatever ``--gpus-per-trial`` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.space import is_domain

# Four trials per card: the studies' trials are small (a CIFAR net, batches of a few
# hundred images), so one alone leaves most of a card idle; the paper profiles use the same.
DEFAULT_GPU_SHARE = 0.25
# Trial kinds (harness.trials.TRIAL_KINDS) whose run function never touches a GPU.
CPU_ONLY_KINDS = frozenset({"check"})


def stage_device(stage: Any, overrides: Mapping[str, Any]) -> str:
    """The ``device`` the stage's trials ask for: a --set override, else the stage's own
    constant, else the default ``auto`` (a space built from earlier records, or a device
    that varies, counts as ``auto``)."""
    if "device" in overrides:
        return str(overrides["device"])
    space = stage.space if not callable(stage.space) else {}
    device = space.get("device", "auto")
    return "auto" if is_domain(device) else str(device)


def gpus_per_trial(stage: Any, given: float | None, device: str, cluster_gpus: float) -> float:
    """The GPU share one trial of ``stage`` asks Ray for: none for a CPU-only kind; else
    ``--gpus-per-trial`` (``given``) when set; none for ``device=cpu``; the stage's own
    share when it names one; DEFAULT_GPU_SHARE when the cluster has GPUs; else none."""
    if stage.trial in CPU_ONLY_KINDS:
        return 0.0
    if given is not None:
        return float(given)
    if device == "cpu":
        return 0.0
    if stage.gpus_per_trial > 0:
        return float(stage.gpus_per_trial)
    return min(DEFAULT_GPU_SHARE, cluster_gpus) if cluster_gpus > 0 else 0.0


def cluster_gpus() -> float:
    """GPUs in the connected Ray cluster (0 without Ray)."""
    import ray

    return float(ray.cluster_resources().get("GPU", 0.0)) if ray.is_initialized() else 0.0


def where_trials_run(stage: Any, gpus: float, cluster: float) -> str:
    """One line for the start of a run: where the stage's trials train."""
    if gpus > 0:
        per_card = f", {int(1 / gpus)} at a time per card" if gpus < 1 else ""
        return f"stage {stage.name}: trials on GPU ({gpus:g} GPU per trial{per_card})"
    if stage.trial in CPU_ONLY_KINDS:
        return f"stage {stage.name}: trials on CPU (its checks use no GPU)"
    if cluster > 0:
        return (f"stage {stage.name}: trials on CPU although the cluster has {cluster:g} "
                "GPU (device=cpu or --gpus-per-trial 0)")
    return f"stage {stage.name}: trials on CPU (no GPU in the Ray cluster)"
