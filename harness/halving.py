"""Deterministic search: a stage's trials drawn in fixed batches from a seeded searcher,
each batch run as one bracket of synchronous successive halving.

Why: Ray's ASHA decides at each report against whatever its rung holds at that moment,
and a searcher inside Tune's loop suggests from whichever trials happened to finish
first, so one command gives different trial sets from run to run. Here every decision
is a function of the metrics alone: a batch is drawn before it runs; a rung decides only
once every trial of the batch has reported there (or ended), ranking by the metric with
ties broken by draw order; the searcher learns the batch's results, in draw order, before
it draws the next batch.

No Ray here: ``harness.tune`` hands in the functions that draw, learn and run trials.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from harness.study import Stage

SYNCHRONOUS_HALVING = "synchronous-halving"
ASYNCHRONOUS_HALVING = "asha"
# The record status of a trial that reached its rung's epoch and waits for the decision.
AT_RUNG = "stopped"


def scheduler_name(stage: Stage) -> str:
    """What a stage's records say ran it: "fifo", "synchronous-halving" or "asha"."""
    if stage.scheduler != "asha":
        return stage.scheduler
    return SYNCHRONOUS_HALVING if stage.deterministic else ASYNCHRONOUS_HALVING


def runs_in_batches(stage: Stage) -> bool:
    """Whether the harness drives the stage batch by batch and rung by rung. A grid or
    seeded random search under FIFO is deterministic as one Tune run already."""
    return stage.deterministic and (stage.scheduler == "asha" or stage.searcher == "optuna")


def rung_epochs(grace_period: int, reduction_factor: int, max_epochs: int) -> list[int]:
    """The epochs at which a bracket is halved: grace_period x reduction_factor^k below
    max_epochs (ASHA's rungs); the trials kept at the last rung train to their end."""
    epochs, epoch = [], grace_period
    while epoch < max_epochs:
        epochs.append(epoch)
        epoch *= reduction_factor
    return epochs


def promoted(
    scores: Sequence[tuple[int, float | None]], mode: str, reduction_factor: int
) -> list[int]:
    """The draw indices of the best 1/reduction_factor of a rung (rounded up, so a rung
    never empties), ranked by the metric; a missing or NaN metric ranks last and equal
    metrics go by draw index, so the choice depends on the values alone, never on the
    order the trials reported in."""

    def rank(item: tuple[int, float | None]) -> tuple[bool, float, int]:
        index, value = item
        missing = value is None or not math.isfinite(value)
        key = 0.0 if missing else (-value if mode == "max" else value)
        return missing, key, index

    keep = math.ceil(len(scores) / reduction_factor)
    return sorted(index for index, _ in sorted(scores, key=rank)[:keep])


class Outcome(Protocol):
    """What running one trial for a rung gave (harness.tune.TrialOutcome)."""

    trial_id: str
    record: dict[str, Any] | None
    error: str | None
    checkpoint: Any


@dataclass(frozen=True)
class RungTrial:
    """A trial entering a rung: its draw index, its values, the Tune id of its first rung
    (which it keeps in its record), and the checkpoint its last rung ended on."""

    index: int
    values: Mapping[str, Any]
    trial_id: str | None = None
    continue_from: Any = None


Draw = Callable[[int, int], list[dict[str, Any]]]  # (first index, count) -> values
Learn = Callable[[list[tuple[int, dict[str, Any] | None]]], None]  # (index, final record)
RunRung = Callable[[str, Sequence[RungTrial], "int | None"], list[Outcome]]


def metric_value(record: Mapping[str, Any] | None, metric: str) -> float | None:
    if record is None:
        return None
    value = (record.get("final") or {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def run_bracket(
    name: str,
    trials: Sequence[RungTrial],
    rungs: Sequence[int],
    *,
    metric: str,
    mode: str,
    reduction_factor: int,
    run_rung: RunRung,
    on_final: Callable[[Outcome], None] | None = None,
) -> dict[int, Outcome]:
    """Successive halving of ``trials``: each rung is one run of the trials still in, to
    the rung's epoch (None: to their end). Returns each trial's final outcome by index; a
    rung with an error ends the bracket there (the caller reports it; --resume goes on)."""
    finals: dict[int, Outcome] = {}
    first_ids: dict[int, str] = {}
    entering = list(trials)
    for rung, stop_at in enumerate([*rungs, None]):
        if not entering:
            break
        outcomes = run_rung(f"{name}-rung{rung}", entering, stop_at)
        by_index = dict(zip((t.index for t in entering), outcomes, strict=True))
        for index, outcome in by_index.items():
            first_ids.setdefault(index, outcome.trial_id)
            # Every rung's Tune run names its trials anew; a trial keeps its first id.
            by_index[index] = replace(outcome, trial_id=first_ids[index])
        waiting = {
            i: o for i, o in by_index.items()
            if stop_at is not None and o.error is None and o.record is not None
            and o.record["status"] == AT_RUNG
        }
        ended = [i for i in by_index if i not in waiting]
        if any(by_index[i].error for i in ended):
            finals.update(by_index)
            return finals
        keep = set(promoted([(i, metric_value(o.record, metric)) for i, o in waiting.items()],
                            mode, reduction_factor))
        for index in sorted(by_index):
            if index not in keep:
                finals[index] = by_index[index]
                if on_final is not None and by_index[index].record is not None:
                    on_final(by_index[index])
        values = {t.index: t.values for t in entering}
        entering = [RungTrial(i, values[i], first_ids[i], by_index[i].checkpoint)
                    for i in sorted(keep)]
    return finals


def run_batches(
    *,
    num_trials: int,
    batch_size: int,
    rungs: Sequence[int],
    metric: str,
    mode: str,
    reduction_factor: int,
    draw: Draw,
    learn: Learn,
    run_rung: RunRung,
    on_final: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """The stage's ``num_trials`` trials in batches of ``batch_size`` (0: one batch), each
    drawn, run as a bracket, and learnt from before the next is drawn. Returns the final
    outcomes in draw order; it stops after a batch with an error."""
    size = batch_size or num_trials
    finals: dict[int, Outcome] = {}
    for batch, start in enumerate(range(0, num_trials, size)):
        values = draw(start, min(size, num_trials - start))
        trials = [RungTrial(start + i, v) for i, v in enumerate(values)]
        done = run_bracket(f"batch{batch}", trials, rungs, metric=metric, mode=mode,
                           reduction_factor=reduction_factor, run_rung=run_rung,
                           on_final=on_final)
        finals.update(done)
        if any(o.error for o in done.values()):
            break
        learn([(t.index, done[t.index].record) for t in trials])
    return [finals[i] for i in sorted(finals)]
