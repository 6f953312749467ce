"""What a trial costs besides its training and evaluation images: the launch-bound floor of
a step on a GPU, and the fixed costs of a trial (its process start, a Tune report and a
checkpoint per epoch).

These are assumptions, not measurements of this project (no GPU has run it yet); the dry
run prints them (``describe_overheads``) so an estimate says what it rests on, and a GPU
suite's measured throughput (results/gpu/*/throughput.json) replaces the floor for every
workload it timed, since a measured rate already holds whatever bound it.
"""

from __future__ import annotations

# Eager PyTorch on a GPU: each aten op is one kernel launch, about 10 us of host time
# (Python dispatch plus cudaLaunchKernel); a small model at a small batch waits on these,
# not on its MACs. A training step launches its forward's ops about three times over
# (forward, and backward's roughly two kernels per op).
LAUNCH_SECONDS = 10e-6
LAUNCHES_PER_FORWARD_OP = 3
# A trial's start in its Ray worker: the process, importing torch and the harness,
# preparing its data and moving it to the device, building the model.
TRIAL_START_SECONDS = 5.0
# Per epoch: tune.report with its metrics, and a checkpoint of the model and optimizer
# state (weights, momentum, the record so far: about three copies of the parameters in
# float32) written to local disk.
REPORT_SECONDS = 0.05
CHECKPOINT_FIXED_SECONDS = 0.02
CHECKPOINT_COPIES = 3
CHECKPOINT_BYTES_PER_SECOND = 200e6


def step_floor_seconds(forward_ops: int) -> float:
    """The least a training step takes on a GPU in eager mode: its kernel launches."""
    return forward_ops * LAUNCHES_PER_FORWARD_OP * LAUNCH_SECONDS


def launch_bound_rate(batch_size: int, forward_ops: int | None) -> float | None:
    """Images/s a step's launches allow at this batch size (None: ops not counted)."""
    if not forward_ops:
        return None
    return batch_size / step_floor_seconds(forward_ops)


def checkpoint_seconds(parameters: int | None) -> float:
    """One per-epoch checkpoint of a model with ``parameters`` parameters."""
    size = (parameters or 0) * 4 * CHECKPOINT_COPIES
    return CHECKPOINT_FIXED_SECONDS + size / CHECKPOINT_BYTES_PER_SECOND


def trial_fixed_seconds(epochs: int, parameters: int | None) -> float:
    """A trial's cost that does not scale with images: start-up, then per epoch a Tune
    report and a checkpoint."""
    return TRIAL_START_SECONDS + epochs * (REPORT_SECONDS + checkpoint_seconds(parameters))


def describe_overheads() -> list[str]:
    """The fixed costs and the launch floor, as the dry run prints them."""
    return [
        f"process start-up {TRIAL_START_SECONDS:g} s per trial (worker, imports, data to the "
        "device, model)",
        f"per epoch a Tune report ({REPORT_SECONDS * 1000:g} ms) and a checkpoint "
        f"({CHECKPOINT_FIXED_SECONDS * 1000:g} ms + {CHECKPOINT_COPIES} x the float32 "
        f"parameters at {CHECKPOINT_BYTES_PER_SECOND / 1e6:g} MB/s)",
        f"on a GPU, a step takes at least its kernel launches: {LAUNCHES_PER_FORWARD_OP} x "
        f"the forward's aten ops x {LAUNCH_SECONDS * 1e6:g} us (eager mode), so a small "
        "model at a small batch is launch-bound, whatever its MACs",
    ]
