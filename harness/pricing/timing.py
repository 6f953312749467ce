"""Images/s of each workload, timed here with the engine itself on synthetic data of the
right shape, biggest cost first until the timing budget is spent."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.pricing.cache import read_cache, write_cache
from harness.pricing.counts import dataset_counts
from harness.pricing.estimate import EVAL_SPEEDUP
from harness.pricing.stages import ProfilePlan
from harness.pricing.tables import Rate, ThroughputTable
from harness.pricing.workload import Workload

DEFAULT_BUDGET_S = 90.0
BUDGET_ENV = "HARNESS_DRY_RUN_BUDGET"
TEST_IMAGES = 32  # the synthetic test split of a timing run: evaluation is not timed
# Keys that shape the trial's data, not the per-step work: neutral for a timing run on a
# synthetic dataset (a long tail of 64 synthetic images would be no tail at all).
_NEUTRAL_DATA = {"imbalance": "none", "train_limit": 0, "test_limit": 0, "label_noise": 0.0,
                 "input_corruption": "none", "val_size": 0}


def synthetic_dataset(name: str, image_shape: Sequence[int], num_classes: int,
                      train: int, test: int, seed: int = 0) -> Any:
    """Random uint8 images of a dataset's shape, balanced labels: a step costs the same
    on them, and nothing has to be read or decoded."""
    import torch

    from harness.data import ImageDataset, ImageSplit

    generator = torch.Generator().manual_seed(seed)

    def split(n: int) -> ImageSplit:
        images = torch.randint(0, 256, (n, *image_shape), dtype=torch.uint8, generator=generator)
        return ImageSplit(images, torch.arange(n, dtype=torch.int64) % num_classes)

    return ImageDataset(name=name, source=f"synthetic-{name}", sha256="0" * 64,
                        classes=tuple(str(i) for i in range(num_classes)),
                        train=split(train), test=split(test))


def timing_steps(device_type: str, batch_size: int) -> int:
    """Steps per timed epoch: a few on a CPU (each may take seconds), enough on a GPU
    that launch overhead and clocks settle."""
    if device_type == "cuda":
        return max(20, math.ceil(8192 / batch_size))
    return max(2, math.ceil(128 / batch_size))


def _shape_and_classes(name: str) -> tuple[tuple[int, int, int], int]:
    """A dataset's image shape and class count: as registered, else from its counts."""
    from harness.data import dataset_facts

    facts = dataset_facts(name)
    if facts.get("image_shape") and facts.get("num_classes"):
        return tuple(facts["image_shape"]), int(facts["num_classes"])  # type: ignore[return-value]
    counts = dataset_counts(name)
    return counts.image_shape, len(counts.train)


class _Timed(Exception):
    """Raised from the report callback once the timed epoch is in: the trial stops there."""


def time_workload(example: Mapping[str, Any], device: str | None = None,
                  steps: int | None = None, threads: int | None = None) -> Rate:
    """Images/s of the trial ``example`` describes, trained by the engine itself on a
    synthetic dataset: one warm-up epoch (cuDNN autotuning, torch.compile), one timed.
    ``threads``: torch's CPU threads meanwhile (a Ray trial gets as many as its CPUs)."""
    import torch

    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _time_workload(example, device, steps)
    finally:
        torch.set_num_threads(saved)


def _time_workload(example: Mapping[str, Any], device: str | None, steps: int | None) -> Rate:
    from harness.config import TrialConfig
    from harness.environment import resolve_device
    from harness.train import train

    values = {**example, **_NEUTRAL_DATA}
    if device is not None:
        values["device"] = device
    config = TrialConfig.from_dict(values)
    shape, classes = _shape_and_classes(config.dataset)
    steps = steps or timing_steps(resolve_device(config.device).type, config.batch_size)
    images = config.batch_size * steps
    dataset = synthetic_dataset(config.dataset, shape, classes, images, TEST_IMAGES)
    epochs: list[dict[str, Any]] = []

    def report(metrics: dict[str, Any], _state: Any) -> None:
        epochs.append(dict(metrics))
        if len(epochs) >= 2:
            raise _Timed

    try:
        record = train(config, report, dataset=dataset)
        epochs = epochs or list(record["history"])  # diverged: history has the epoch
    except _Timed:
        pass
    last = epochs[-1]
    speed = last.get("images_per_second")
    if not speed or not math.isfinite(speed):
        speed = images / last["epoch_seconds"]
    return Rate(float(speed))


def machine_name(device: str | None = None) -> tuple[str, str]:
    """("cpu" | "cuda", the device's name) for the default device of this machine."""
    from harness.environment import device_name, resolve_device

    resolved = resolve_device(device or "auto")
    return resolved.type, device_name(resolved)


def budget_seconds() -> float:
    raw = os.environ.get(BUDGET_ENV, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_BUDGET_S
    except ValueError:
        raise ConfigError(f"{BUDGET_ENV} must be a number of seconds, got {raw!r}") from None


def _cost_share(plans: Sequence[ProfilePlan]) -> dict[Workload, float]:
    """How much of the plans' work each workload carries (MAC-images): time it first."""
    share: dict[Workload, float] = {}
    for plan in plans:
        for stage in plan.stages:
            for p in stage.points:
                work = p.weight * p.epochs * (p.train_images + p.test_images / EVAL_SPEEDUP)
                share[p.workload] = share.get(p.workload, 0.0) + work * (plan.macs.get(p.workload) or 1)
    return share


def measure(plans: Sequence[ProfilePlan], budget_s: float, *, device: str | None = None,
            cache: Path | None = None, known: ThroughputTable | None = None,
            echo: Callable[[str], None] | None = None) -> ThroughputTable:
    """Time the plans' workloads on this machine, biggest share first, until ``budget_s``
    has passed (at least one is timed when any is left, so others can scale from it).
    ``known`` rates (a GPU suite's, for this card) and ``cache`` entries are not re-timed."""
    import torch

    device_type, name = machine_name(device)
    examples: dict[Workload, Mapping[str, Any]] = {}
    macs: dict[Workload, int | None] = {}
    for plan in plans:
        examples.update(plan.examples)
        macs.update(plan.macs)
    rates: dict[Workload, Rate] = {}
    if known is not None:
        rates.update({w: r for w, r in known.rates.items() if w in examples})
    cached = read_cache(cache, name)
    rates.update({w: r for w, r in cached.items() if w in examples and w not in rates})
    share = _cost_share(plans)
    todo = sorted((w for w in examples if w not in rates), key=lambda w: -share.get(w, 0.0))
    start = time.perf_counter()
    for index, workload in enumerate(todo):
        spent = time.perf_counter() - start
        if spent >= budget_s and (index > 0 or rates or budget_s <= 0):
            if echo:
                echo(f"timing budget of {budget_s:g}s spent ({BUDGET_ENV}): {len(todo) - index} "
                     "workloads left to scale by MACs")
            break
        began = time.perf_counter()
        try:
            rate = time_workload(examples[workload], device=device,
                                 threads=dict(workload.runtime).get("threads"))
        except Exception as error:  # noqa: BLE001 - one model that cannot train here is priced by MACs
            if echo:
                echo(f"timing {workload.describe()} failed ({type(error).__name__}: {error}); "
                     "priced by MACs")
            continue
        rates[workload] = replace(rate, macs_per_image=macs.get(workload))
        if echo:
            echo(f"timed {index + 1}/{len(todo)}: {workload.describe()}: "
                 f"{rate.images_per_second:,.0f} images/s ({time.perf_counter() - began:.1f}s)")
    write_cache(cache, device_type, name, {w: r for w, r in rates.items() if r.origin == "timed"})
    return ThroughputTable(device_type, name, rates, "timed on this machine",
                           os.cpu_count() or 1, torch.__version__, time.strftime("%Y-%m-%d"))
