"""What a study's profile will cost, before anything runs: `harness run STUDY --profile P
--dry-run`.

Three steps, kept apart so the arithmetic can be tested without timing anything:

1. **Plan** (``plan_profile``): per stage, the number of trials (grid size x repeats x
   num_samples, as Ray Tune expands them; an Optuna stage draws num_samples and turns grids
   into choices), the most epochs a trial runs, the training and test images per epoch
   (subset, long tail), and the stage's *cost points*: the distinct
   ``Workload``s its trials train (model, model options, batch size, input shape, task,
   precision) with how many trials each stands for. Grids and variants are enumerated
   exactly; a searched space (choices, ranges) is enumerated up to ``MAX_ENUMERATED``
   configurations, and a stage with more than ``MAX_POINTS`` distinct workloads keeps a
   seeded, weighted sample of them (a Monte Carlo estimate of its mean trial). A stage
   whose space is a function of earlier stages' records (top-5 re-seeding, best setting
   carried on) is resolved with placeholder records of those stages: the *shape* of what
   it builds (how many variants, which models) is real, the configurations it picks are
   stand-ins. No Ray, no data: dataset sizes come from ``KNOWN_COUNTS`` or the embedded
   datasets, MACs from building each model on the meta device.
2. **Throughput** (``measure``): images/s of each workload, timed here with the engine
   itself (``harness.train.train`` on a synthetic dataset of the right shape: one warm-up
   epoch and one timed epoch of a few steps, then stopped), cached in
   ``runs/pricing/``, or read from a GPU suite's ``results/gpu/<card>-<date>/
   throughput.json`` (``benchmarks/gpu_suite.py``). Timing stops at a budget
   (``HARNESS_DRY_RUN_BUDGET`` seconds, default 90), biggest cost first; the rest is scaled
   from the timed workloads by MACs per image and marked "~".
3. **Estimate** (``estimate_profile``): a pure function of (plan, throughput tables).
   A trial's seconds = epochs x (train images x train_fraction + test images /
   ``EVAL_SPEEDUP``) / images per second; a stage's, the sum over its cost points divided
   by the trials Ray runs at once on a CPU (CPUs / cpus_per_trial; each was timed with
   cpus_per_trial threads, as Ray sets OMP_NUM_THREADS). On a GPU, one trial at a time:
   trials sharing a card split its throughput, and the GPU suite measures the aggregate
   gain. Compute only: Ray's start, data loading and checkpoints are extra.

Timing on a busy shared CPU reads slow: the dry run is a snapshot of this machine now.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.space import (
    Choice,
    Grid,
    IntRange,
    LogUniform,
    Uniform,
    grid_size,
)
from harness.study import Profile, Stage, Study

THROUGHPUT_SCHEMA = "harness-throughput/1"
# Evaluation is a forward pass only: about a third of a training step's work per image.
EVAL_SPEEDUP = 3.0
MAX_ENUMERATED = 512  # configurations of a searched space looked at per stage
MAX_POINTS = 12  # distinct workloads kept per stage; more are sampled down to this
INT_RANGE_VALUES = 16  # an int range wider than this is represented by 16 spread values
DEFAULT_BUDGET_S = 90.0
BUDGET_ENV = "HARNESS_DRY_RUN_BUDGET"
TEST_IMAGES = 32  # the synthetic test split of a timing run: evaluation is not timed
# Train-split class counts and test size of datasets too big to load for a dry run.
KNOWN_COUNTS: dict[str, tuple[tuple[int, ...], int]] = {"cifar10": ((5000,) * 10, 10000)}
# Keys that shape the trial's data, not the per-step work: neutral for a timing run on a
# synthetic dataset (a long tail of 64 synthetic images would be no tail at all).
_NEUTRAL_DATA = {"imbalance": "none", "train_limit": 0, "test_limit": 0, "label_noise": 0.0,
                 "input_corruption": "none"}
_RUNTIME_DEFAULTS = {"precision": "auto", "channels_last": True, "compile": False}
_SHOWN_RUNTIME = {**_RUNTIME_DEFAULTS, "threads": 1}


# ---------------------------------------------------------------------------- the plan


def _frozen(value: Any) -> Any:
    """A hashable form of a JSON-like value (lists become tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    return value


def _text(value: Any) -> str:
    return ",".join(_text(v) for v in value) if isinstance(value, tuple) else str(value)


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple | list) else value


@dataclass(frozen=True)
class Workload:
    """What one training step costs depends on: the key of a throughput table."""

    task: str
    model: str
    options: tuple[tuple[str, Any], ...]  # every model option, defaults filled in, sorted
    batch_size: int
    in_shape: tuple[int, int, int]
    outputs: int
    runtime: tuple[tuple[str, Any], ...] = ()  # precision, channels_last, compile, threads

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model,
                "options": {k: _plain(v) for k, v in self.options},
                "batch_size": self.batch_size, "in_shape": list(self.in_shape),
                "outputs": self.outputs, "runtime": dict(self.runtime)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Workload:
        return cls(
            task=str(data["task"]), model=str(data["model"]),
            options=tuple(sorted((k, _frozen(v)) for k, v in data["options"].items())),
            batch_size=int(data["batch_size"]),
            in_shape=tuple(int(s) for s in data["in_shape"]),  # type: ignore[arg-type]
            outputs=int(data["outputs"]),
            runtime=tuple(sorted(dict(data.get("runtime") or {}).items())),
        )

    def key(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def describe(self) -> str:
        """e.g. "resnet32(base_width=8, depth=20) bs 128 3x32x32": options off their defaults."""
        from harness.models import model_options

        try:
            defaults = model_options(self.model)
        except HarnessError:
            defaults = {}
        changed = [f"{k}={_text(v)}" for k, v in self.options if _frozen(defaults.get(k)) != v]
        changed += [f"{k}={v}" for k, v in self.runtime if _SHOWN_RUNTIME.get(k) != v]
        shape = "x".join(str(s) for s in self.in_shape)
        return (f"{self.model}" + (f"({', '.join(changed)})" if changed else "")
                + f" bs {self.batch_size} {shape}")


@dataclass(frozen=True)
class CostPoint:
    """Trials of a stage that cost alike: ``weight`` of them (fractional when sampled)."""

    workload: Workload
    weight: float
    epochs: int
    train_images: int  # per epoch, after subset and long tail
    test_images: int
    train_fraction: float = 1.0  # the last epoch may stop early (airbench's 9.9 epochs)


@dataclass(frozen=True)
class StagePlan:
    name: str
    trials: int | None  # None: a stage built from earlier records that could not be resolved
    epochs: int  # the most any trial runs
    scheduler: str = "fifo"
    trial_kind: str = "train"
    points: tuple[CostPoint, ...] = ()
    cpus_per_trial: float = 1.0
    depends_on: tuple[str, ...] = ()  # earlier stages whose records the space reads
    sampled: tuple[int, int] | None = None  # (kept, distinct) workloads when sampled
    error: str | None = None  # why a dependent stage could not be resolved
    gpus_per_trial: float = 0.0

    @property
    def upper_bound(self) -> bool:
        return self.scheduler == "asha"


@dataclass(frozen=True)
class ProfilePlan:
    study: str
    profile: str
    description: str
    stages: tuple[StagePlan, ...]
    # One full config per workload (what a timing run trains) and its MACs per image.
    examples: Mapping[Workload, Mapping[str, Any]] = field(default_factory=dict)
    macs: Mapping[Workload, int | None] = field(default_factory=dict)


def stage_trials(stage: Stage, space: Mapping[str, Any]) -> int:
    """Trials Tune runs for a stage: grid points x repeats x num_samples. Under Optuna a
    grid is a choice (harness.tune.to_tune_domain), so only num_samples are drawn."""
    points = 1 if stage.searcher == "optuna" else grid_size(dict(space))
    return points * stage.repeats * stage.num_samples


def _domain_values(value: Any) -> tuple[Any, ...] | None:
    """The values a domain contributes to cost enumeration; None for a constant. Float
    ranges (learning rates, dropout) do not change a step's cost: their middle stands in."""
    if isinstance(value, Grid | Choice):
        return tuple(value.values)
    if isinstance(value, IntRange):
        span = value.high - value.low
        if span < INT_RANGE_VALUES:
            return tuple(range(value.low, value.high + 1))
        return tuple(sorted({value.low + round(i * span / (INT_RANGE_VALUES - 1))
                             for i in range(INT_RANGE_VALUES)}))
    if isinstance(value, Uniform):
        return ((value.low + value.high) / 2,)
    if isinstance(value, LogUniform):
        return (math.sqrt(value.low * value.high),)
    return None


def enumerate_points(space: Mapping[str, Any], limit: int = MAX_ENUMERATED,
                     seed: int = 0) -> list[dict[str, Any]]:
    """Concrete configurations of a space, each standing for an equal share of its trials:
    every combination when there are at most ``limit``, else ``limit`` seeded draws."""
    constants = {k: v for k, v in space.items() if _domain_values(v) is None}
    keys = [k for k in space if _domain_values(space[k]) is not None]
    values = [_domain_values(space[k]) or () for k in keys]
    total = math.prod(len(v) for v in values)
    if total <= limit:
        import itertools

        combos: Iterable[tuple[Any, ...]] = itertools.product(*values)
    else:
        rng = random.Random(seed)
        combos = [tuple(rng.choice(v) for v in values) for _ in range(limit)]
    return [{**constants, **dict(zip(keys, combo, strict=True))} for combo in combos]


@dataclass(frozen=True)
class DatasetCounts:
    train: tuple[int, ...]  # per class
    test: int
    image_shape: tuple[int, int, int]


_COUNTS: dict[tuple[str, str | None], DatasetCounts] = {}


def dataset_counts(name: str, data_root: str | None = None) -> DatasetCounts:
    """Class counts and shape of a dataset: from KNOWN_COUNTS (CIFAR-10 is not read for a
    dry run), else by loading it (the embedded datasets load in a moment)."""
    key = (name, data_root)
    if key not in _COUNTS:
        from harness.data import dataset_facts

        facts = dataset_facts(name)
        if name in KNOWN_COUNTS and facts.get("image_shape"):
            train, test = KNOWN_COUNTS[name]
            _COUNTS[key] = DatasetCounts(tuple(train), test, tuple(facts["image_shape"]))
        else:
            import torch

            from harness.data import load_dataset

            data = load_dataset(name, data_root)
            counts = torch.bincount(data.train.labels, minlength=data.num_classes).tolist()
            _COUNTS[key] = DatasetCounts(tuple(counts), len(data.test), data.image_shape)
    return _COUNTS[key]


def train_images(config: Any, counts: DatasetCounts) -> int:
    """Training images per epoch after the subset (expected class shares) and long tail,
    as harness.trial_data prepares them."""
    from harness.data import long_tail_counts

    per_class = [float(c) for c in counts.train]
    total = sum(per_class)
    if config.train_limit and config.train_limit < total:
        per_class = [c * config.train_limit / total for c in per_class]
    if config.imbalance != "none":
        target = long_tail_counts(max(1, int(round(max(per_class)))), len(per_class),
                                  config.imbalance_factor, config.imbalance)
        per_class = [min(float(t), c) for t, c in zip(target, per_class, strict=True)]
    return int(round(sum(per_class)))


def evaluated_images(config: Any, counts: DatasetCounts) -> int:
    """Test images scored after every epoch (the test subset, or the whole split)."""
    return min(config.test_limit, counts.test) if config.test_limit else counts.test


def workload_of(config: Any, counts: DatasetCounts, threads: int = 1) -> Workload:
    from harness.models import model_options
    from harness.tasks import task_class

    outputs, in_shape = task_class(config.task).model_io(
        config, counts.image_shape, len(counts.train))
    options = {**model_options(config.model), **dict(config.model_options)}
    return Workload(
        task=config.task, model=config.model,
        options=tuple(sorted((k, _frozen(v)) for k, v in options.items())),
        batch_size=int(config.batch_size), in_shape=tuple(in_shape), outputs=int(outputs),
        runtime=tuple(sorted([*((k, getattr(config, k)) for k in _RUNTIME_DEFAULTS),
                              ("threads", threads)])),
    )


def macs_of(workload: Workload) -> int | None:
    """MACs per image, from the model built on the meta device (no memory, no time)."""
    try:
        import torch

        from harness.models import count_macs, create_model

        with torch.device("meta"):
            model = create_model(workload.model, workload.outputs, workload.in_shape,
                                 **{k: v for k, v in workload.options})
        return int(count_macs(model, workload.in_shape))
    except Exception:  # noqa: BLE001 - a model that cannot run on meta is priced without MACs
        return None


def trial_threads(stage: Stage) -> int:
    """CPU threads a trial of the stage gets: Ray sets OMP_NUM_THREADS to its CPUs."""
    return max(1, int(stage.cpus_per_trial))


@dataclass
class _Configs:
    """A stage's enumerated trial configs, for the cost points and placeholder records."""

    items: list[tuple[Any, str | None]]  # (config, variant label)
    skipped: int = 0


def _stage_configs(stage: Stage, space: Mapping[str, Any]) -> _Configs:
    from harness.trials import split_trial_values

    out = _Configs([])
    for point in enumerate_points(space, seed=zlib.crc32(stage.name.encode())):
        try:
            spec = split_trial_values(point, stage.trial)
        except ConfigError:
            out.skipped += 1  # a combination the study cannot run: Tune would fail it too
            continue
        out.items.append((spec.config, spec.label))
    return out


def _cost_points(stage: Stage, configs: _Configs, trials: int, data_root: str | None,
                 examples: dict[Workload, Mapping[str, Any]]
                 ) -> tuple[tuple[CostPoint, ...], tuple[int, int] | None]:
    if stage.trial != "train" or not configs.items:
        return (), None
    share = trials / len(configs.items)
    merged: dict[tuple, float] = {}
    first: dict[Workload, Mapping[str, Any]] = {}
    for config, _label in configs.items:
        counts = dataset_counts(config.dataset, data_root)
        workload = workload_of(config, counts, trial_threads(stage))
        first.setdefault(workload, config.to_dict())
        key = (workload, config.epochs, train_images(config, counts), evaluated_images(config, counts),
               float(getattr(config, "train_fraction", 1.0)))
        merged[key] = merged.get(key, 0.0) + share
    keys = sorted(merged, key=lambda k: (k[0].key(), k[1:]))
    sampled = None
    if len(keys) > MAX_POINTS:
        # A seeded draw weighted by share: each kept point stands for trials / MAX_POINTS.
        rng = random.Random(zlib.crc32(stage.name.encode()))
        picks = rng.choices(keys, weights=[merged[k] for k in keys], k=MAX_POINTS)
        sampled = (len(set(picks)), len(keys))
        merged = {k: 0.0 for k in picks}
        for k in picks:
            merged[k] += trials / MAX_POINTS
        keys = sorted(merged, key=lambda k: (k[0].key(), k[1:]))
    points = tuple(CostPoint(k[0], merged[k], k[1], k[2], k[3], k[4]) for k in keys)
    kept = {point.workload for point in points}
    for workload, config in first.items():  # in the study's order: the first is its first trial
        if workload in kept:
            examples.setdefault(workload, config)
    return points, sampled


@dataclass
class _Reads:
    """The earlier stages whose records the space builder running now has read."""

    stages: set[str] = field(default_factory=set)


class _Watched(dict):
    """A placeholder record that notes which stage's records a space builder reads
    beyond the stage and status every builder filters on."""

    def __init__(self, data: Mapping[str, Any], reads: _Reads) -> None:
        super().__init__(data)
        self._reads = reads

    def _note(self, key: Any) -> None:
        if key not in ("stage", "status"):
            self._reads.stages.add(str(dict.get(self, "stage")))

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)


def placeholder_records(stage: Stage, space: Mapping[str, Any], configs: _Configs,
                        reads: _Reads) -> list[dict[str, Any]]:
    """One finished record per enumerated config of an earlier stage, with a stand-in
    score (a hash of the config), for resolving a later stage's space before anything ran."""
    from harness.records import RECORD_SCHEMA_VERSION
    from harness.trials import stage_metric

    try:
        metric, _mode = stage_metric(stage, space)
    except ConfigError:
        metric = "test_acc"
    records = []
    for index, (config, label) in enumerate(configs.items):
        digest = config.config_hash()
        score = int(digest[:8], 16) / 0xFFFFFFFF
        final = {"epoch": config.epochs, metric: score}
        if metric == "test_acc":
            final["test_error"] = 1.0 - score
        record = {"schema_version": RECORD_SCHEMA_VERSION, "status": "completed",
                  "stage": stage.name, "trial_id": f"placeholder-{index}",
                  "config": config.to_dict(), "config_hash": digest, "final": final,
                  "history": [final], "placeholder": True}
        if label is not None:
            record["label"] = label
        records.append(_Watched(record, reads))
    return records


def check_profile(profile: Profile, raw_overrides: Mapping[str, Any]) -> dict[str, Any]:
    """What ``harness.plan.plan_run`` checks before Ray, minus Ray, MLflow and folders:
    the typed ``--set`` overrides, and every static stage's space."""
    from harness.plan import apply_overrides, typed_overrides, validate_space

    overrides = typed_overrides(profile, raw_overrides)
    for stage in profile.stages:
        if not callable(stage.space):
            validate_space(stage, apply_overrides(stage.space, overrides))
    return overrides


def plan_profile(study: Study, profile: Profile, overrides: Mapping[str, Any] | None = None,
                 data_root: str | None = None) -> ProfilePlan:
    """The cost plan of one profile (``overrides`` typed, as ``check_profile`` returns)."""
    from harness.plan import apply_overrides, validate_space
    from harness.trials import max_epochs

    overrides = dict(overrides or {})
    examples: dict[Workload, Mapping[str, Any]] = {}
    earlier: list[dict[str, Any]] = []
    stages: list[StagePlan] = []
    reads = _Reads()  # shared by every placeholder record; reset per stage
    for stage in profile.stages:
        reads.stages = set()
        if callable(stage.space):
            try:
                space = apply_overrides(dict(stage.space(earlier)), overrides)
                validate_space(stage, space)
            except Exception as error:  # noqa: BLE001 - any builder failure is reported
                stages.append(StagePlan(
                    stage.name, None, 0, stage.scheduler, stage.trial,
                    depends_on=tuple(s.name for s in profile.stages if s.name in reads.stages),
                    error=f"{type(error).__name__}: {error}",
                    gpus_per_trial=stage.gpus_per_trial))
                continue
        else:
            space = apply_overrides(stage.space, overrides)
        trials = stage_trials(stage, space)
        configs = _stage_configs(stage, space)
        points, sampled = _cost_points(stage, configs, trials, data_root, examples)
        try:
            epochs = max_epochs(space, default=max((c.epochs for c, _ in configs.items), default=1))
        except ConfigError:
            epochs = max((c.epochs for c, _ in configs.items), default=0)
        stages.append(StagePlan(
            stage.name, trials, epochs, stage.scheduler, stage.trial, points,
            depends_on=tuple(s.name for s in profile.stages if s.name in reads.stages),
            sampled=sampled, gpus_per_trial=stage.gpus_per_trial,
            cpus_per_trial=stage.cpus_per_trial))
        earlier += placeholder_records(stage, space, configs, reads)
    macs = {w: macs_of(w) for w in examples}
    return ProfilePlan(study.name, profile.name, profile.description, tuple(stages),
                       examples, macs)


# ---------------------------------------------------------------------------- throughput


@dataclass(frozen=True)
class Rate:
    images_per_second: float
    macs_per_image: int | None = None
    origin: str = "timed"  # "timed" here now, "cache" (runs/pricing), "file" (GPU suite)


@dataclass(frozen=True)
class ThroughputTable:
    device: str  # "cpu" | "cuda"
    device_name: str
    rates: Mapping[Workload, Rate]
    source: str = "timed on this machine"
    cpus: int = 1  # logical CPUs: how many CPU trials Ray runs at once
    torch: str = ""
    date: str = ""
    sharing: Mapping[str, Any] | None = None  # the GPU suite's trials-per-card figures

    def rate(self, workload: Workload, macs: int | None) -> tuple[float, bool] | None:
        """(images/s, scaled) for a workload: measured, else scaled by MACs per image
        from the median MAC throughput of the measured ones, else None."""
        if workload in self.rates:
            return self.rates[workload].images_per_second, False
        anchors = [r.images_per_second * r.macs_per_image for r in self.rates.values()
                   if r.macs_per_image and r.images_per_second > 0]
        if not anchors or not macs:
            return None
        # Small models are bound by per-step overheads, not MACs: never faster than the
        # fastest workload actually measured.
        fastest = max(r.images_per_second for r in self.rates.values())
        return min(statistics.median(anchors) / macs, fastest), True


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


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())[:60]


def machine_name(device: str | None = None) -> tuple[str, str]:
    """("cpu" | "cuda", the device's name) for the default device of this machine."""
    from harness.environment import device_name, resolve_device

    resolved = resolve_device(device or "auto")
    return resolved.type, device_name(resolved)


def table_json(table: ThroughputTable, **extra: Any) -> dict[str, Any]:
    return {
        "schema": THROUGHPUT_SCHEMA, "device": table.device, "device_name": table.device_name,
        "cpus": table.cpus, "torch": table.torch, "date": table.date,
        "method": "harness.pricing.time_workload: the engine on synthetic data, one warm-up "
                  "epoch then one timed epoch",
        "workloads": [{"workload": w.to_json(), "images_per_second": round(r.images_per_second, 2),
                       "macs_per_image": r.macs_per_image}
                      for w, r in sorted(table.rates.items(), key=lambda item: item[0].key())],
        **({"sharing": dict(table.sharing)} if table.sharing else {}),
        **extra,
    }


def load_table(path: Path, origin: str = "file") -> ThroughputTable:
    try:
        data = json.loads(Path(path).read_text())
        if data.get("schema") != THROUGHPUT_SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}, expected {THROUGHPUT_SCHEMA!r}")
        rates = {Workload.from_json(e["workload"]): Rate(float(e["images_per_second"]),
                                                         e.get("macs_per_image"), origin)
                 for e in data["workloads"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HarnessError(f"cannot read the throughput table {path}: {error}") from None
    return ThroughputTable(data["device"], data["device_name"], rates, str(path),
                           int(data.get("cpus", 1)), data.get("torch", ""), data.get("date", ""),
                           data.get("sharing"))


def find_gpu_table(results_dir: Path) -> Path | None:
    """The newest ``results/gpu/*/throughput.json`` a GPU suite wrote (by its date)."""
    found = []
    for path in sorted((Path(results_dir) / "gpu").glob("*/throughput.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("schema") == THROUGHPUT_SCHEMA and data.get("device") == "cuda":
            found.append((str(data.get("date", "")), str(path), path))
    return max(found)[2] if found else None


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
    cached = _read_cache(cache, name)
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
    _write_cache(cache, device_type, name, {w: r for w, r in rates.items() if r.origin == "timed"})
    return ThroughputTable(device_type, name, rates, "timed on this machine",
                           os.cpu_count() or 1, torch.__version__, time.strftime("%Y-%m-%d"))


def cache_path(runs_dir: Path, device_name: str) -> Path:
    import torch

    return Path(runs_dir) / "pricing" / f"throughput-{_slug(device_name)}-torch{torch.__version__}.json"


def _read_cache(path: Path | None, name: str) -> dict[Workload, Rate]:
    if path is None or not path.is_file():
        return {}
    try:
        table = load_table(path, origin="cache")
    except HarnessError:
        return {}  # a stale or broken cache is re-timed, not an error
    return dict(table.rates) if table.device_name == name else {}


def _write_cache(path: Path | None, device_type: str, name: str,
                 timed: Mapping[Workload, Rate]) -> None:
    if path is None or not timed:
        return
    import torch

    from harness.files import write_json_atomic

    merged = {**_read_cache(path, name), **timed}
    table = ThroughputTable(device_type, name, merged, cpus=os.cpu_count() or 1,
                            torch=torch.__version__, date=time.strftime("%Y-%m-%d"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, table_json(table))
    except OSError:
        pass  # the cache only saves time


# ---------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class StageEstimate:
    name: str
    trials: int | None
    epochs: int
    upper_bound: bool
    images: tuple[int, int] | None  # (min, max) training images per epoch of one trial
    seconds: float | None  # this machine; None: not priced
    gpu_hours: float | None
    scaled: bool = False  # some of this machine's cost was scaled by MACs, not timed
    notes: tuple[str, ...] = ()
    kind: str = "train"  # the stage's trial kind
    gpu_scaled: bool = False  # likewise for the GPU's


@dataclass(frozen=True)
class ProfileEstimate:
    plan: ProfilePlan
    stages: tuple[StageEstimate, ...]
    local: ThroughputTable | None
    gpu: ThroughputTable | None

    @property
    def trials(self) -> int:
        return sum(s.trials or 0 for s in self.stages)

    @property
    def unknown_trials(self) -> bool:
        return any(s.trials is None for s in self.stages)

    @property
    def priced(self) -> tuple[StageEstimate, ...]:
        """Stages whose cost counts: training trials (check trials are not priced)."""
        return tuple(s for s in self.stages if s.kind == "train")

    @property
    def seconds(self) -> Total:
        return Total.of(s.seconds for s in self.priced)

    @property
    def gpu_hours(self) -> Total:
        return Total.of(s.gpu_hours for s in self.priced)


@dataclass(frozen=True)
class Total:
    """A sum that knows whether some of its parts were unknown (then it is a lower bound)."""

    value: float | None
    complete: bool

    @classmethod
    def of(cls, values: Iterable[float | None | Total]) -> Total:
        items = [v for v in values]
        parts = [v.value if isinstance(v, Total) else v for v in items]
        known = [v for v in parts if v is not None]
        complete = len(known) == len(parts) and all(
            v.complete for v in items if isinstance(v, Total))
        return cls(sum(known) if known else None, complete)


def trial_seconds(point: CostPoint, images_per_second: float) -> float:
    """One trial of a cost point: every epoch trains (a fraction of the last) and evaluates."""
    per_epoch_train = point.train_images * point.train_fraction
    return point.epochs * (per_epoch_train + point.test_images / EVAL_SPEEDUP) / images_per_second


def concurrent_trials(stage: StagePlan, table: ThroughputTable) -> int:
    """Trials of a stage that run at once on a CPU table's machine: Ray places one per
    cpus_per_trial CPUs (each timed with that many threads). A GPU's are counted one at a
    time: trials sharing a card split its throughput (the GPU suite measures the gain)."""
    if table.device != "cpu" or not stage.trials:
        return 1
    return max(1, min(stage.trials, int(table.cpus // max(stage.cpus_per_trial, 1e-9))))


def _price(stage: StagePlan, table: ThroughputTable | None,
           macs: Mapping[Workload, int | None]) -> tuple[float | None, bool]:
    """Wall seconds of a stage on a table's machine, and whether MACs scaling was used."""
    if table is None or stage.trials is None or not stage.points:
        return None, False
    total, scaled = 0.0, False
    for point in stage.points:
        found = table.rate(point.workload, macs.get(point.workload))
        if found is None:
            return None, False
        rate, was_scaled = found
        scaled |= was_scaled
        total += point.weight * trial_seconds(point, rate)
    return total / concurrent_trials(stage, table), scaled


def estimate_profile(plan: ProfilePlan, local: ThroughputTable | None,
                     gpu: ThroughputTable | None) -> ProfileEstimate:
    """Seconds per stage on this machine and GPU-hours on the GPU table's card: a pure
    function of the plan and the two tables."""
    out = []
    for stage in plan.stages:
        seconds, scaled_here = _price(stage, local, plan.macs)
        gpu_seconds, scaled_gpu = _price(stage, gpu, plan.macs)
        images = None
        if stage.points:
            sizes = [p.train_images for p in stage.points]
            images = (min(sizes), max(sizes))
        notes = []
        if stage.trials is None:
            notes.append("depends on " + (", ".join(stage.depends_on) or "earlier stages")
                         + f"; not resolved before they run ({stage.error})")
        elif stage.depends_on:
            notes.append("built from " + ", ".join(stage.depends_on)
                         + " (shape from placeholder records)")
        if stage.trial_kind != "train":
            notes.append(f"{stage.trial_kind} trials: not priced")
        if stage.sampled:
            notes.append(f"cost from a sample of {stage.sampled[0]} of {stage.sampled[1]} "
                         "workloads")
        out.append(StageEstimate(stage.name, stage.trials, stage.epochs, stage.upper_bound,
                                 images, seconds,
                                 gpu_seconds / 3600 if gpu_seconds is not None else None,
                                 scaled_here, tuple(notes), stage.trial_kind, scaled_gpu))
    return ProfileEstimate(plan, tuple(out), local, gpu)


# ---------------------------------------------------------------------------- output


def human_seconds(seconds: float | Total | None) -> str:
    if isinstance(seconds, Total):
        return _bound(seconds, human_seconds)
    if seconds is None:
        return "—"
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _bound(total: Total, show: Callable[[float | None], str]) -> str:
    # A total missing some stages is at least what the priced ones add up to.
    return show(total.value) if total.complete or total.value is None else f"≥ {show(total.value)}"


def human_hours(hours: float | Total | None) -> str:
    if isinstance(hours, Total):
        return _bound(hours, human_hours)
    if hours is None:
        return "—"
    return f"{hours:.3f}" if hours < 0.1 else f"{hours:.2f}" if hours < 10 else f"{hours:.1f}" \
        if hours < 100 else f"{hours:,.0f}"


def _images(images: tuple[int, int] | None) -> str:
    if images is None:
        return "—"
    low, high = images
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def _device_label(table: ThroughputTable | None) -> str:
    if table is None:
        return "this machine"
    return "this GPU" if table.device == "cuda" else "this CPU"


def render_estimate(estimate: ProfileEstimate) -> str:
    """A Markdown table per profile (pastes into a README), with the assumptions under it."""
    plan, local, gpu = estimate.plan, estimate.local, estimate.gpu
    gpu_name = gpu.device_name if gpu is not None else "one GPU"
    lines = [
        f"{plan.study} / {plan.profile}: {plan.description}",
        "",
        f"| stage | trials | epochs | images / epoch | est. time, {_device_label(local)} "
        f"| est. GPU-h, {gpu_name} | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in estimate.stages:
        epochs = f"≤ {s.epochs}" if s.upper_bound else str(s.epochs)
        lines.append(
            f"| {s.name} | {s.trials if s.trials is not None else '?'} | "
            f"{epochs if s.trials is not None else '?'} | {_images(s.images)} | "
            f"{_mark(s.scaled, human_seconds(s.seconds))} | "
            f"{_mark(s.gpu_scaled, human_hours(s.gpu_hours))} | {'; '.join(s.notes)} |")
    trials = f"{estimate.trials}" + (" + ?" if estimate.unknown_trials else "")
    seconds = _mark(any(s.scaled for s in estimate.stages), human_seconds(estimate.seconds))
    hours = _mark(any(s.gpu_scaled for s in estimate.stages), human_hours(estimate.gpu_hours))
    lines.append(f"| **total** | **{trials}** | | | **{seconds}** | **{hours}** | |")
    return "\n".join(lines)


def _mark(scaled: bool, text: str) -> str:
    """"~" before a figure that rests partly on MACs scaling rather than timing."""
    return f"~{text}" if scaled and text != "—" else text


def render_assumptions(local: ThroughputTable | None, gpu: ThroughputTable | None,
                       plans: Sequence[ProfilePlan]) -> str:
    workloads = {p.workload for plan in plans for s in plan.stages for p in s.points}
    lines = []
    if local is not None:
        timed = sum(1 for w in workloads if w in local.rates and local.rates[w].origin == "timed")
        cached = sum(1 for w in workloads if w in local.rates and local.rates[w].origin == "cache")
        filed = sum(1 for w in workloads if w in local.rates and local.rates[w].origin == "file")
        rest = len(workloads) - timed - cached - filed
        lines.append(
            f"- This machine: {local.device_name} (torch {local.torch}); of {len(workloads)} "
            f"workloads {timed} timed now, {cached} from the cache, {filed} from the GPU suite, "
            f"{rest} " + ("scaled by MACs (~)" if local.rates else "not priced")
            + f" (timing stops after {BUDGET_ENV}={budget_seconds():g} s). Timing: the engine "
            "on synthetic data, one warm-up epoch and one timed epoch of a few steps.")
    if gpu is not None and gpu.source == ANCHOR_SOURCE:
        lines.append(f"- GPU-hours: {ANCHOR_SOURCE}; a rough guide until "
                     "benchmarks/gpu_suite.py has run on a GPU (it writes "
                     "results/gpu/<card>-<date>/throughput.json, which replaces it). Small "
                     "models do not fill a GPU, so they are slower than MACs suggest.")
    elif gpu is not None:
        lines.append(f"- GPU figures: {gpu.source} ({gpu.device_name}, torch {gpu.torch}, "
                     f"{gpu.date}); workloads it lacks are scaled by MACs (~).")
        sharing = (gpu.sharing or {}).get("speedup")
        if sharing:
            best = max(sharing.items(), key=lambda kv: float(kv[1]))
            lines.append(f"- Trials sharing the card (gpus_per_trial < 1) went {float(best[1]):.1f}x "
                         f"faster in aggregate at {best[0]} per card ({gpu.sharing.get('model')}, "
                         "GPU suite); GPU-hours above are one trial at a time.")
    else:
        lines.append("- GPU-hours: no GPU figures yet; run benchmarks/gpu_suite.py on a GPU "
                     "(it writes results/gpu/<card>-<date>/throughput.json).")
    lines += [
        "- Compute only: train images x epochs (x train_fraction) plus a test pass per epoch at "
        f"{EVAL_SPEEDUP:g}x the training speed; on a CPU as many trials at once as Ray places "
        "(CPUs / cpus_per_trial, each timed with that many threads), on a GPU one at a time. "
        "Ray's start (~6 s), data loading and per-epoch checkpoints are extra.",
        "- ≤: ASHA stage, every trial counted at its full epochs (an upper bound); so are "
        "tasks that stop early (e.g. task.stop_at_train_acc).",
        "- A stage built from earlier stages' records is resolved with placeholder records: "
        "its trial count and models are the study's own, the configurations it picks stand-ins.",
    ]
    return "\n".join(lines)


# DESIGN.md's measurement on an H100: airbench94's network, data resident on the GPU,
# batch 512, trained at 139,000 images/s. Until the GPU suite has run on a card, GPU time is
# estimated from this one figure, every other model scaled by its MACs per image.
ANCHOR_IMAGES_PER_SECOND = 139_000.0
ANCHOR_SOURCE = ("anchor, not measured by this project: airbench94 on an H100 at 139,000 "
                 "images/s (batch 512, data on the GPU; DESIGN.md), other models scaled by "
                 "MACs per image")


def anchor_gpu_table() -> ThroughputTable:
    """A GPU throughput table holding only the H100 anchor (see ANCHOR_SOURCE)."""
    from harness.models import model_options

    options = tuple(sorted((k, _frozen(v)) for k, v in model_options("fastnet").items()))
    workload = Workload("classify", "fastnet", options, 512, (3, 32, 32), 10)
    rate = Rate(ANCHOR_IMAGES_PER_SECOND, macs_of(workload), origin="anchor")
    return ThroughputTable("cuda", "H100 (anchor)", {workload: rate}, source=ANCHOR_SOURCE,
                           torch="-", date="-")


def _local_and_gpu(plans: Sequence[ProfilePlan], options: Any,
                   echo: Callable[[str], None]) -> tuple[ThroughputTable, ThroughputTable | None]:
    from harness.plan import resolve_results_dir, resolve_runs_dir

    device_type, name = machine_name()
    gpu_path = find_gpu_table(resolve_results_dir(options.results_dir))
    gpu = load_table(gpu_path) if gpu_path is not None else None
    # The suite's figures stand for this machine only when it is the same card.
    known = gpu if gpu is not None and device_type == "cuda" and gpu.device_name == name else None
    local = measure(plans, budget_seconds(), known=known, echo=echo,
                    cache=cache_path(resolve_runs_dir(options.runs_dir), name))
    if gpu is None:
        gpu = local if device_type == "cuda" else anchor_gpu_table()
    return local, gpu


def dry_run_text(options_list: Sequence[Any], echo: Callable[[str], None] | None = None) -> str:
    """The dry-run report of one or more (study, profile) runs: plans, timing, tables."""
    from harness.study import get_study

    echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    plans, skipped = [], []
    several = len(options_list) > 1
    for options in options_list:
        study = get_study(options.study)
        if options.profile not in study.profiles and several:
            skipped.append(f"{study.name} has no profile {options.profile!r}")
            continue
        profile = study.profile(options.profile)
        try:
            overrides = check_profile(profile, options.overrides)
        except HarnessError as error:
            if not several:
                raise  # one study: the same error `harness run` would give
            skipped.append(f"{study.name}: its {profile.name} profile does not validate: {error}")
            continue
        plans.append(plan_profile(study, profile, overrides, options.data_root))
    if not plans:
        raise ConfigError("no study has profile " + repr(options_list[0].profile))
    local, gpu = _local_and_gpu(plans, options_list[0], echo)
    estimates = [estimate_profile(plan, local, gpu) for plan in plans]
    parts = [render_estimate(e) for e in estimates]
    if len(estimates) > 1:
        parts.append(
            f"All {len(estimates)} studies, profile {plans[0].profile}: "
            f"{sum(e.trials for e in estimates)} trials, "
            f"{human_seconds(Total.of(e.seconds for e in estimates))} on {_device_label(local)}, "
            f"{human_hours(Total.of(e.gpu_hours for e in estimates))} GPU-hours"
            + (f" on {gpu.device_name}" if gpu else ""))
    parts += [f"- Skipped: {line}." for line in skipped]
    parts.append(render_assumptions(local, gpu, plans))
    return "\n\n".join(parts)


def print_dry_run(options: Any) -> None:
    """`harness run STUDY --profile P --dry-run`: stages, trials, epochs, estimated cost."""
    print(dry_run_text([options]), flush=True)


def print_dry_runs(options_list: Sequence[Any]) -> None:
    """`harness run --all-studies --profile P --dry-run`: every study's table, one timing."""
    print(dry_run_text(options_list), flush=True)
