"""Verdicts a reviewer accepts: a claim registered before its run (the effect it measures,
its threshold, its n, the regime it means something in), judged by a 95% interval rather
than a point estimate, and always said with the scale it was judged at.

- ``supported``: the interval lies on the claim's side of the threshold (for an
  equivalence claim, inside the margin: two one-sided tests, TOST, each at 2.5%; for a
  two-sided "between" reading, inside both bounds);
- ``contradicted``: the interval lies wholly on the other side (outside the margin);
- ``inconclusive at this scale``: the interval straddles the threshold, and the seeds run
  were enough by the study's pilot (or no pilot sized them);
- ``underpowered``: the interval straddles the threshold and the pilot's effect and spread
  need more seeds than ran for 80% power (``harness.power``): "underpowered (needs n ≈ K)";
- ``holds`` / ``fails``: a deterministic computation, or a check with no spread across its
  seeds, read by its computed value with no interval;
- ``not judged``: the claim's adequacy gate failed, so the records sit outside the regime
  in which the claim means anything.

A verdict is *post hoc* when its records carry no registration of the claim, or the claim
(any of statement, effect, kind, threshold, n, gate) changed after its run: the verdict
says so and names what changed (``Judging``, set by ``harness.study.Study.narrate`` from
the run's run.json).

Intervals: a t-interval over seeds (each seed's effect one observation); where the
records hold per-example test outcomes (a confusion matrix), the wider of that and a
seeded hierarchical bootstrap over seeds, then test images, so the interval carries the
test set's sampling variance too; for a cell with one seed, a percentile bootstrap over
the test examples' per-example effects. Each interval names its method (harness.intervals).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from harness.intervals import (
    EffectOf,
    Interval,
    SeedExamples,
    bootstrap_interval,
    hierarchical_bootstrap,
    t_interval,
)
from harness.numbers import decimals_apart, fixed

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive at this scale"
HOLDS, FAILS = "holds", "fails"
UNDERPOWERED, NOT_JUDGED = "underpowered", "not judged"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, UNDERPOWERED, HOLDS, FAILS, NOT_JUDGED)
POST_HOC = "post hoc"
# equivalence: |effect| <= threshold; greater: > threshold; less: < threshold;
# between: threshold < effect < upper, a two-sided reading tested on both sides.
Kind = Literal["equivalence", "greater", "less", "between"]


@dataclass(frozen=True)
class Claim:
    """What a study tests, declared in the study file and registered by ``harness run``
    before any trial runs (``harness.registration``)."""

    name: str
    statement: str  # e.g. "noisy-target and clean-target training reach the same PSNR"
    effect: str  # what is measured, e.g. "noisy - clean test PSNR (dB)"
    kind: Kind
    threshold: float
    # The values the effect can take (an accuracy in %: 0 to 100), None where unbounded.
    # The true mean lies inside them, so an interval cut at them keeps its coverage and
    # never reads "[99.47, 100.07]" for an accuracy.
    limits: tuple[float | None, float | None] = (None, None)
    upper: float | None = None  # kind "between": the upper bound of the two-sided reading
    stage: str = ""  # the stage whose seeds (repeats) the claim reads: its n
    # The regime in which the claim means something, checked from the records before
    # judging (the study's evidence function measures it and passes a Gate).
    gate: str = ""
    # A computation whose every seed gives the same answer (theory): holds / fails.
    deterministic: bool = False

    def __post_init__(self) -> None:
        if (self.kind == "between") != (self.upper is not None):
            raise ValueError(f"claim {self.name!r}: kind 'between' and upper go together")
        if self.upper is not None and not self.threshold < self.upper:
            raise ValueError(f"claim {self.name!r}: between needs threshold < upper")

    def threshold_text(self) -> str:
        if self.deterministic:  # a computation: each seed agrees with the claim or not
            return "every seed"
        if self.kind == "equivalence":
            return f"within ±{self.threshold:g}"
        if self.kind == "between":
            return f"inside ({self.threshold:g}, {self.upper:g})"
        return f"{'>' if self.kind == 'greater' else '<'} {self.threshold:g}"

    @property
    def marks(self) -> tuple[float, ...]:
        """The values the verdict turns on: an interval bound must never print as one of
        them unless it is one."""
        if self.kind == "equivalence":
            return (-self.threshold, self.threshold)
        if self.kind == "between":
            return (self.threshold, float(self.upper))
        return (self.threshold,)

    @property
    def signed(self) -> bool:
        """A difference (an equivalence margin, a threshold at or below zero) reads with
        its sign; an accuracy, a ratio or a share without one."""
        return self.kind == "equivalence" or self.threshold <= 0

    def on_its_side(self, value: float) -> bool:
        """Whether one value lies where the claim says it does (a deterministic check)."""
        t = self.threshold
        if self.kind == "equivalence":
            return -t <= value <= t
        if self.kind == "between":
            return t < value < float(self.upper)
        return value > t if self.kind == "greater" else value < t

    def registration(self, n: int | None) -> dict[str, Any]:
        """What ``harness run`` registers for the claim before any trial: every field a
        verdict turns on, n (the seeds the run gives it) included."""
        return {"statement": self.statement, "effect": self.effect, "kind": self.kind,
                "threshold": self.threshold, "upper": self.upper,
                "limits": list(self.limits), "gate": self.gate, "stage": self.stage,
                "deterministic": self.deterministic, "n": n}


@dataclass(frozen=True)
class Gate:
    """A claim's adequacy gate as the records show it: whether the records lie in the
    regime where the claim means something, and what was measured to decide it."""

    passed: bool
    measured: str  # e.g. "CE's lowest class accuracy is 0.0% (chance 10%)"


def above_chance(accuracies: Iterable[float], chance: float, what: str) -> Gate:
    """The gate "every trial the claim reads learned something": passed when the lowest of
    ``accuracies`` (fractions) is above ``chance``. A regime check on the claim's own
    metric, never a choice among trials; ``what`` names the lowest in the gate's text."""
    values = [float(value) for value in accuracies]
    if not values:
        return Gate(False, f"{what}: no finished trial")
    lowest = min(values)
    return Gate(lowest > chance, f"{what} is {lowest * 100:.1f}% (chance {chance * 100:g}%)")


@dataclass(frozen=True)
class Judging:
    """What a verdict is judged under besides its numbers, read by ``Study.narrate`` from
    the records and their run.json: the scale they ran at, the claims they were
    registered with, and the seeds the study's pilot says each claim needs."""

    scope: str = ""  # "at mini scale (5,000 training images, 6 epochs)"
    scopes: Mapping[str, str] = field(default_factory=dict)  # per claim, from its stage
    # Claim name -> its registration entry as run (run.json); None: the records carry none.
    registered: Mapping[str, Mapping[str, Any]] | None = None
    registered_at: str = ""  # when the run registered them (UTC)
    first_record: str = ""  # when the run's first trial started (UTC)
    registration_problem: str = ""  # e.g. the hash does not match the registered claims
    current: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # entries now
    unregistered: str = ""  # the study's declared history of records run before registration
    needed: Mapping[str, int] = field(default_factory=dict)  # claim name -> n for 80% power
    pilot: str = ""  # which records sized ``needed``


_JUDGING: contextvars.ContextVar[Judging | None] = contextvars.ContextVar("judging",
                                                                          default=None)


@contextlib.contextmanager
def judging(context: Judging) -> Iterator[None]:
    """Judge every claim inside under ``context`` (scope, registration, pilot)."""
    token = _JUDGING.set(context)
    try:
        yield
    finally:
        _JUDGING.reset(token)


def changes(registered: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What changed in a claim since its registration: "threshold 5 -> 4", "n 2 -> 3"."""
    out = []
    for key in sorted(set(registered) | set(now)):
        before, after = registered.get(key), now.get(key)
        if before != after and not (key == "limits" and list(before or []) == list(after or [])):
            out.append(f"{key} {before!r} -> {after!r}" if key in ("statement", "effect", "gate")
                       else f"{key} {before} -> {after}")
    return out


@dataclass(frozen=True)
class Evidence:
    claim: Claim
    interval: Interval | None  # None: no interval (too few seeds, a deterministic check)
    verdict: str
    # What the records lack, so the effect is not measured at all (an older record without
    # the column, a comparison not run); and what the reader needs beside the interval (a
    # seed left out, what was run). The reason says both: a verdict never hides them.
    missing: str = ""
    note: str = ""
    values: tuple[float, ...] = ()  # the effect per seed, as judged (the pilot reads them)
    value_text: str = ""  # holds / fails: the computed value
    gate: Gate | None = None
    covers: str = ""  # what ran, the only thing the verdict covers ("for the MLP 1x512")
    scope: str = ""  # the scale it was judged at, read from the records
    post_hoc: str = ""  # why the verdict is post hoc; empty: judged as registered
    registered: str = ""  # when registered, and when the first record was made
    needed_n: int | None = None  # underpowered: the seeds 80% power needs

    @property
    def is_post_hoc(self) -> bool:
        return bool(self.post_hoc)

    def verdict_text(self) -> str:
        """The verdict as every table, narrative and abstract says it: its outcome, post
        hoc where it is, and the scale it was judged at."""
        core = self.verdict
        if self.verdict == UNDERPOWERED:
            core = f"underpowered (needs n ≈ {self.needed_n})"
        elif self.verdict == NOT_JUDGED and self.gate is not None:
            core = f"not judged: {self.gate.measured}"
        parts = [core, *([POST_HOC] if self.post_hoc else []), *([self.scope] if self.scope else [])]
        return ", ".join(parts)

    def interval_text(self) -> str:
        """The estimate and its interval as the claim reads them; a computed value with no
        interval; or "—"."""
        if self.interval is None:
            return self.value_text or "—"
        return self.interval.text(marks=self.claim.marks, signed=self.claim.signed)

    def reason(self) -> str:
        """One sentence or a few: the value against the threshold, what would change it,
        what the verdict covers and under which registration it was judged."""
        return " ".join(part for part in (self._outcome(), self._registration()) if part)

    def _outcome(self) -> str:
        c, i = self.claim, self.interval
        left_out = f" ({self.note})" if self.note else ""
        covers = f" It covers only what ran: {self.covers}." if self.covers else ""
        if self.verdict == NOT_JUDGED and self.gate is not None:
            return (f"{c.effect}: not judged, since the claim means something only where "
                    f"{c.gate}, and the records show {self.gate.measured}{left_out}.{covers}")
        if i is None and self.missing:
            return (f"{c.effect}: not measured, since {self.missing}; a run that measures it, "
                    f"with two or more seeds, would judge it against {c.threshold_text()}"
                    f"{left_out}.")
        if self.verdict in (HOLDS, FAILS) and c.deterministic:
            return (f"{c.effect}: {self.value_text}; a deterministic computation, read by "
                    f"what it computes with no interval: it {self.verdict}{left_out}.{covers}")
        if self.verdict in (HOLDS, FAILS):
            return (f"{c.effect} = {self.value_text}: a check with no spread across its "
                    f"seeds, read by its value with no interval (a zero-width interval from "
                    f"identical repeats says nothing); it {self.verdict} against "
                    f"{c.threshold_text()}{left_out}.{covers}")
        if i is None:
            return (f"{c.effect}: fewer than two observations, so no interval; run more seeds "
                    f"to judge it against {c.threshold_text()}{left_out}.{covers}")
        said = (f"{c.effect} = {self.interval_text()} (95% interval, {i.method}, n = {i.n}), "
                f"threshold {c.threshold_text()}")
        if self.verdict == UNDERPOWERED:
            return (f"{said}: the interval straddles the threshold, and at the pilot's effect "
                    f"and spread 80% power needs n ≈ {self.needed_n} seeds, not the {i.n} run"
                    f"{left_out}.{covers}")
        if self.verdict == INCONCLUSIVE:
            return (f"{said}: the interval straddles the threshold; more seeds would narrow "
                    f"it{left_out}.{covers}")
        return (f"{said}: a verdict that would change only if the interval crossed the "
                f"threshold{left_out}.{covers}")

    def _registration(self) -> str:
        said = f" {self.registered}." if self.registered else ""
        if self.post_hoc:
            return f"Post hoc: {self.post_hoc}.{said}"
        return said.strip()


def judge(claim: Claim, interval: Interval | None) -> Evidence:
    """The verdict the interval gives the claim (see the module docstring)."""
    if interval is None:
        return _under_context(Evidence(claim, None, INCONCLUSIVE))
    low, high, t = interval.low, interval.high, claim.threshold
    if claim.kind == "equivalence":
        supported = -t <= low and high <= t
        contradicted = high < -t or low > t
    elif claim.kind == "between":
        # Two-sided: inside (t, upper) on both sides; contradicted wholly outside either.
        upper = float(claim.upper)  # type: ignore[arg-type]
        supported = t < low and high < upper
        contradicted = high <= t or low >= upper
    elif claim.kind == "greater":
        supported, contradicted = low > t, high < t
    else:
        supported, contradicted = high < t, low > t
    verdict = SUPPORTED if supported else CONTRADICTED if contradicted else INCONCLUSIVE
    return _under_context(Evidence(claim, interval, verdict))


def _value_text(claim: Claim, values: Sequence[float]) -> str:
    """A deterministic check's computed value: the value where every seed agrees, else how
    many seeds lie on the claim's side."""
    places = decimals_apart(values, claim.marks)
    if len(set(values)) == 1:
        seeds = f"in all {len(values)} seeds" if len(values) > 1 else "in its one seed"
        return f"{fixed(values[0], places, claim.signed)} {seeds}"
    agree = sum(claim.on_its_side(v) for v in values)
    return f"on the claim's side in {agree} of {len(values)} seeds"


def judge_seeds(claim: Claim, per_seed: Sequence[float],
                per_example: Sequence[float] | None = None, note: str = "",
                seed: int = 0, gate: Gate | None = None, covers: str = "",
                value_text: str = "", examples: Sequence[SeedExamples] | None = None,
                effect_of: EffectOf | None = None) -> Evidence:
    """The claim judged from its effect measured once per seed.

    First the adequacy ``gate`` (measured by the study from the records): a failed gate
    gives "not judged", whatever the numbers. Then a deterministic claim, or two or more
    seeds with no spread at all, reads holds / fails by its value (every seed on the
    claim's side), with no interval: a zero-width interval from identical repeats says
    nothing about sampling. Otherwise a t-interval over two or more seeds; with one seed,
    a bootstrap over that seed's per-example effects where the records carry them
    (``per_example``); otherwise no interval, so inconclusive until more seeds run.
    Non-finite effects (a seed that never measured it) are left out. The interval is cut
    at the claim's ``limits``. ``covers`` says what ran, the only thing the verdict
    covers; ``value_text`` says a deterministic check's computed value in the claim's
    words (else its value per seed). Where the records hold per-example test outcomes
    (``examples`` per seed, and ``effect_of`` one seed's effect from them), the interval
    is the wider of the t-interval over seeds and the hierarchical bootstrap (seeds, then
    test images), and its method names which one the verdict used."""
    values = tuple(float(v) for v in per_seed if math.isfinite(float(v)))
    extra = {"note": note, "values": values, "gate": gate, "covers": covers}
    if gate is not None and not gate.passed:
        return _under_context(Evidence(claim, None, NOT_JUDGED, **extra))
    if values and (claim.deterministic or (len(values) > 1 and len(set(values)) == 1)):
        verdict = HOLDS if all(claim.on_its_side(v) for v in values) else FAILS
        return _under_context(Evidence(claim, None, verdict,
                                       value_text=value_text or _value_text(claim, values),
                                       **extra))
    interval = t_interval(values)
    if interval is not None and examples is not None and effect_of is not None:
        boot = hierarchical_bootstrap(examples, effect_of, seed=seed)
        if boot is not None:
            wider, other = (boot, interval) if boot.high - boot.low > \
                interval.high - interval.low else (interval, boot)
            shown = other.within(claim.limits).text(marks=claim.marks, signed=claim.signed)
            said = f"the {other.method} gives the narrower {shown}"
            extra["note"] = f"{note}; {said}" if note else said
            interval = wider
    if interval is None and len(values) == 1 and per_example is not None:
        interval = bootstrap_interval(per_example, seed=seed)
    if interval is not None:
        interval = interval.within(claim.limits)
    judged = judge(claim, interval)
    return _under_context(replace(judged, **extra))


def not_measured(claim: Claim, missing: str) -> Evidence:
    """Inconclusive because the records do not measure the effect (an older record
    without the column, a comparison that was not run); ``missing`` says what lacked."""
    return _under_context(Evidence(claim, None, INCONCLUSIVE, missing=missing))


def _under_context(evidence: Evidence) -> Evidence:
    """The evidence with what the current ``Judging`` adds: its scope; post hoc where the
    claim was not registered as it stands now; underpowered where the pilot says the
    seeds run were too few."""
    context = _JUDGING.get()
    if context is None:
        return evidence
    name = evidence.claim.name
    verdict, needed_n = evidence.verdict, evidence.needed_n
    need = context.needed.get(name)
    if (verdict in (INCONCLUSIVE, UNDERPOWERED) and evidence.interval is not None
            and need is not None and need > evidence.interval.n):
        verdict, needed_n = UNDERPOWERED, need
    post_hoc, registered = registration_status(name, context)
    scope = context.scopes.get(name, context.scope)
    return replace(evidence, verdict=verdict, needed_n=needed_n, scope=scope,
                   post_hoc=post_hoc, registered=registered)


def registration_status(name: str, context: Judging) -> tuple[str, str]:
    """(why the claim's verdict is post hoc, or ""; when it was registered and when its
    first record was made)."""
    first = f"; first record {context.first_record}" if context.first_record else ""
    if context.registered is None:
        why = context.unregistered or "its records carry no registration (they were run " \
                                       "before `harness run` registered claims)"
        return why, f"Registered: never{first}"
    registered = f"Registered {context.registered_at or 'at an unrecorded time'}{first}"
    if context.registration_problem:
        return context.registration_problem, registered
    if name not in context.registered:
        return "the claim was not among those its run registered", registered
    now = context.current.get(name)
    if now is None:
        return "", registered
    changed = changes(context.registered[name], now)
    if changed:
        return f"changed after its run ({'; '.join(changed)})", registered
    return "", registered


def _shared(evidence: Sequence[Evidence]) -> str:
    """What every verdict of a summary line shares: post hoc (if all are), the scope."""
    tags = []
    if evidence and all(e.post_hoc for e in evidence):
        tags.append(POST_HOC)
    tags += sorted({e.scope for e in evidence if e.scope})
    return "".join(f", {tag}" for tag in tags)


def verdict_counts(evidence: Sequence[Evidence]) -> str:
    """The sub-claims' verdicts counted, in the order of VERDICTS, with the scale they
    were judged at: "2 supported, 1 inconclusive at this scale, post hoc, at mini scale
    (...)"."""
    counts = [(sum(e.verdict == v for e in evidence), v) for v in VERDICTS]
    shown = [f"{n} {verdict}" for n, verdict in counts if n]
    if not shown:
        return "no claim judged"
    some_post_hoc = any(e.post_hoc for e in evidence) and not all(e.post_hoc for e in evidence)
    mixed = f", {sum(bool(e.post_hoc) for e in evidence)} of them post hoc" if some_post_hoc \
        else ""
    return ", ".join(shown) + mixed + _shared(evidence)


def verdict_by_claim(evidence: Sequence[Evidence]) -> str:
    """Each sub-claim with its verdict: "fits random labels: supported, at ...; ..."."""
    return "; ".join(f"{e.claim.name}: {e.verdict_text()}" for e in evidence)
