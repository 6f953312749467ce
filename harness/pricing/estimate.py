"""The estimate: a pure function of (plan, throughput tables), seconds per stage on this
machine and GPU-hours on the GPU table's card."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.pricing.overheads import trial_fixed_seconds
from harness.pricing.stages import CostPoint, ProfilePlan, StagePlan
from harness.pricing.tables import ThroughputTable

# Evaluation is a forward pass only: about a third of a training step's work per image.
EVAL_SPEEDUP = 3.0


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


def evaluated_per_trial(point: CostPoint) -> float:
    """Images one trial scores: every epoch its test and validation splits, the whole
    training split when the task scores it, the photographs; TTA's extra views once."""
    per_epoch = point.test_images + point.train_eval_images + point.photo_images
    return point.epochs * per_epoch + point.tta_images


def trial_seconds(point: CostPoint, images_per_second: float,
                  parameters: int | None = None) -> float:
    """One trial of a cost point: every epoch trains (a fraction of the last) and every
    evaluation pass scores at EVAL_SPEEDUP x the training speed; plus its fixed costs
    (start-up, a report and a checkpoint per epoch: harness.pricing.overheads)."""
    trained = point.epochs * point.train_images * point.train_fraction
    images = trained + evaluated_per_trial(point) / EVAL_SPEEDUP
    return images / images_per_second + trial_fixed_seconds(point.epochs, parameters)


def concurrent_trials(stage: StagePlan, table: ThroughputTable) -> int:
    """Trials of a stage that run at once on a CPU table's machine: Ray places one per
    cpus_per_trial CPUs (each timed with that many threads). A GPU's are counted one at a
    time: trials sharing a card split its throughput (the GPU suite measures the gain)."""
    if table.device != "cpu" or not stage.trials:
        return 1
    return max(1, min(stage.trials, int(table.cpus // max(stage.cpus_per_trial, 1e-9))))


def _price(stage: StagePlan, table: ThroughputTable | None,
           plan: ProfilePlan) -> tuple[float | None, bool]:
    """Wall seconds of a stage on a table's machine, and whether MACs scaling was used."""
    if table is None or stage.trials is None or not stage.points:
        return None, False
    total, scaled = 0.0, False
    for point in stage.points:
        w = point.workload
        found = table.rate(w, plan.macs.get(w), plan.forward_ops.get(w))
        if found is None:
            return None, False
        rate, was_scaled = found
        scaled |= was_scaled
        total += point.weight * trial_seconds(point, rate, plan.parameters.get(w))
    return total / concurrent_trials(stage, table), scaled


def estimate_profile(plan: ProfilePlan, local: ThroughputTable | None,
                     gpu: ThroughputTable | None) -> ProfileEstimate:
    """Seconds per stage on this machine and GPU-hours on the GPU table's card: a pure
    function of the plan and the two tables."""
    out = []
    for stage in plan.stages:
        seconds, scaled_here = _price(stage, local, plan)
        gpu_seconds, scaled_gpu = _price(stage, gpu, plan)
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
