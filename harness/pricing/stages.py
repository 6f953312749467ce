"""The plan of a profile: per stage its trial count, epochs and cost points (the distinct
``Workload``s its trials train, each with how many trials it stands for). See the
package docstring for how searched spaces and dependent stages are enumerated."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.expansion import (  # noqa: F401 - the limits re-exported for harness.pricing
    INT_RANGE_VALUES,
    MAX_ENUMERATED,
    build_trial,
    check_profile,
    enumerate_points,
    resolve_space,
    stage_space,
)
from harness.pricing.counts import dataset_counts, eval_extras, evaluated_images, train_images
from harness.pricing.placeholders import Reads, StageConfigs, placeholder_records
from harness.pricing.workload import Workload, macs_of, model_costs, workload_of
from harness.space import grid_size
from harness.study import Profile, Stage, Study

MAX_POINTS = 12  # distinct workloads kept per stage; more are sampled down to this


@dataclass(frozen=True)
class CostPoint:
    """Trials of a stage that cost alike: ``weight`` of them (fractional when sampled)."""

    workload: Workload
    weight: float
    epochs: int
    train_images: int  # per epoch, after subset and long tail
    test_images: int  # scored every epoch: the test split (or subset) and the validation split
    train_fraction: float = 1.0  # the last epoch may stop early (airbench's 9.9 epochs)
    train_eval_images: int = 0  # scored every epoch too: the whole training split (train_eval)
    tta_images: int = 0  # scored once, at the last epoch: the test split's extra TTA views
    photo_images: int = 0  # scored every epoch: photographs, in images of the trial's shape


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
    # Aten ops of one forward (a GPU step's launches) and parameters, per workload.
    forward_ops: Mapping[Workload, int | None] = field(default_factory=dict)
    parameters: Mapping[Workload, int | None] = field(default_factory=dict)


def stage_trials(stage: Stage, space: Mapping[str, Any]) -> int:
    """Trials Tune runs for a stage: grid points x repeats x num_samples. Under Optuna a
    grid is a choice (harness.tune.to_tune_domain), so only num_samples are drawn."""
    points = 1 if stage.searcher == "optuna" else grid_size(dict(space))
    return points * stage.repeats * stage.num_samples


def trial_threads(stage: Stage) -> int:
    """CPU threads a trial of the stage gets: Ray sets OMP_NUM_THREADS to its CPUs."""
    return max(1, int(stage.cpus_per_trial))


def _stage_configs(stage: Stage, space: Mapping[str, Any]) -> StageConfigs:
    out = StageConfigs([])
    for point in enumerate_points(space, seed=zlib.crc32(stage.name.encode())):
        try:
            spec = build_trial(point, stage.trial)
        except ConfigError:
            out.skipped += 1  # a combination the study cannot run: Tune would fail it too
            continue
        out.items.append((spec.config, spec.label))
    return out


def resolved_stage_configs(profile: Profile, labels: bool = False) -> Iterable[tuple[Stage, list[Any]]]:
    """Each stage of a profile with its enumerated trial configs, a stage built from
    earlier records resolved from placeholder records of the stages before it (as the dry
    run resolves it); a builder that cannot resolve yields no configs. ``labels``: yield
    (config, variant label) pairs instead of configs."""
    earlier: list[dict[str, Any]] = []
    reads = Reads()
    for stage in profile.stages:
        reads.stages = set()
        try:
            space = resolve_space(stage, {}, earlier)
        except Exception:  # noqa: BLE001 - an unresolvable builder has nothing to list
            yield stage, []
            continue
        configs = _stage_configs(stage, space)
        yield stage, list(configs.items) if labels else [config for config, _ in configs.items]
        earlier += placeholder_records(stage, space, configs, reads)


def _cost_points(stage: Stage, configs: StageConfigs, trials: int, data_root: str | None,
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
        extras = eval_extras(config, counts)
        key = (workload, config.epochs, train_images(config, counts), evaluated_images(config, counts),
               float(getattr(config, "train_fraction", 1.0)), extras.train_eval, extras.tta,
               extras.photos)
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
    points = tuple(CostPoint(k[0], merged[k], *k[1:]) for k in keys)
    kept = {point.workload for point in points}
    for workload, config in first.items():  # in the study's order: the first is its first trial
        if workload in kept:
            examples.setdefault(workload, config)
    return points, sampled


def plan_profile(study: Study, profile: Profile, overrides: Mapping[str, Any] | None = None,
                 data_root: str | None = None) -> ProfilePlan:
    """The cost plan of one profile (``overrides`` typed, as ``check_profile`` returns)."""
    from harness.trials import max_epochs

    overrides = dict(overrides or {})
    examples: dict[Workload, Mapping[str, Any]] = {}
    earlier: list[dict[str, Any]] = []
    stages: list[StagePlan] = []
    reads = Reads()  # shared by every placeholder record; reset per stage
    for stage in profile.stages:
        reads.stages = set()
        try:
            space = stage_space(stage, overrides, earlier)  # a static one: checked already
        except Exception as error:  # noqa: BLE001 - any builder failure is reported
            stages.append(StagePlan(
                stage.name, None, 0, stage.scheduler, stage.trial,
                depends_on=tuple(s.name for s in profile.stages if s.name in reads.stages),
                error=f"{type(error).__name__}: {error}",
                gpus_per_trial=stage.gpus_per_trial))
            continue
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
    costs = {w: model_costs(w) for w in examples}
    return ProfilePlan(study.name, profile.name, profile.description, tuple(stages),
                       examples, macs, {w: c[0] for w, c in costs.items()},
                       {w: c[1] for w, c in costs.items()})
