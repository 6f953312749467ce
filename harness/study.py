"""What a study declares: profiles made of stages, and a summary from records to tables.

A study is one module under ``studies/`` that calls ``register_study``. A profile runs
its stages in order; a stage whose ``space`` is a callable receives the records of the
stages before it (e.g. re-run the top five configurations of a search with three seeds).
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import RegistryError
from harness.evidence import Claim, Evidence, judging, verdict_by_claim, verdict_counts
from harness.layout import results_folder, run_file
from harness.registry import Registry

SpaceBuilder = Callable[[list[dict[str, Any]]], Mapping[str, Any]]


@dataclass(frozen=True)
class Stage:
    name: str
    # Flat config keys -> constant or a harness.space domain; or a function of earlier records.
    space: Mapping[str, Any] | SpaceBuilder
    repeats: int = 1  # seeds: a grid over repeat = 0 .. repeats-1
    num_samples: int = 1  # searcher draws (random/optuna); a grid runs each point once per sample
    scheduler: str = "fifo"  # "fifo" | "asha" (successive halving: see deterministic)
    searcher: str = "grid"  # "grid" | "random" | "optuna"
    searcher_seed: int = 0
    metric: str | None = None  # None: the primary metric of the trials' task
    mode: str | None = None  # None: the metric's own direction (max for accuracy, PSNR)
    grace_period: int = 1  # ASHA: epochs before a trial can be stopped
    reduction_factor: int = 2  # ASHA
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0  # 0 = as many as resources allow
    # True: every decision is a function of the metrics (harness.halving): "asha" runs
    # synchronous successive halving, rung by rung, and a learning searcher (optuna) suggests
    # in fixed batches, learning each batch's results in draw order. False: Ray's
    # asynchronous ASHA and searcher, which keep a large GPU sweep busy but make the trial
    # set depend on which trial reports first.
    deterministic: bool = True
    search_batch: int = 0  # deterministic: trials per batch (one halving bracket); 0 = all
    trial: str = "train"  # what a trial runs: "train" (harness.train) or "check" (theory)
    # Common random numbers (harness.pairing): the config keys the stage's claims compare
    # (a loss, a model or a task name covers its options too). Trials that differ only in
    # them share their seed at each repeat: initial weights, batch order, augmentation.
    paired_keys: tuple[str, ...] = ()
    # Each repeat draws its own data (data_seed + repeat), shared by the repeat's arms.
    data_seed_per_repeat: bool = False

    def __post_init__(self) -> None:
        from harness.pairing import paired_space, seed_keys

        keys = seed_keys(tuple(self.paired_keys), self.data_seed_per_repeat)
        if keys and self.trial != "train":
            raise RegistryError(
                f"stage {self.name!r}: paired_keys and data_seed_per_repeat apply to training "
                f"trials; its trials are {self.trial!r} trials"
            )
        object.__setattr__(self, "paired_keys", tuple(self.paired_keys))
        # Every trial's config carries the keys, so its record says how its seeds were made.
        object.__setattr__(self, "space", paired_space(self.name, self.space, keys))


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    stages: tuple[Stage, ...]
    needs_cifar: bool = False


SummaryFunction = Callable[[list[dict[str, Any]], str], list[Any]]


@dataclass(frozen=True, kw_only=True)
class Narrative:
    """What the paper says about a study, every number computed from its records.

    ``evidence`` holds one verdict per claim the study states up front (a module-level
    ``harness.evidence.Claim``), each judged by its 95% interval: the source of truth.
    ``verdict`` and ``verdict_reason`` summarize them (counted, and listed claim by claim)
    unless given; a narrative without evidence states them itself. ``tables`` and
    ``figures`` name outputs of the study's summary (in the results folder) to show in the
    study's section, in order.
    """

    question: str
    claim: str  # the write-up's claim, as it states it
    answer: str  # one or two sentences with the measured numbers
    headline: str  # one sentence for the abstract
    evidence: tuple[Evidence, ...] = ()
    verdict: str = ""  # empty: the evidence's verdicts, counted
    verdict_reason: str = ""  # empty: each claim with its verdict
    tables: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    published: str = ""  # what published figures stand beside ours, and on which data

    def __post_init__(self) -> None:
        # Frozen: the summary lines are derived once, here, from the per-claim verdicts.
        if not self.verdict:
            object.__setattr__(self, "verdict", verdict_counts(self.evidence))
        if not self.verdict_reason:
            object.__setattr__(self, "verdict_reason", verdict_by_claim(self.evidence))


NarrativeFunction = Callable[..., Narrative]
EvidenceFunction = Callable[[list[dict[str, Any]]], tuple[Evidence, ...]]


@dataclass(frozen=True)
class Pilot:
    """Earlier records a study names as its pilot (``harness.power``): they size later
    runs' n, and are never evidence for a claim."""

    profile: str  # results/<study>/<profile>/records
    history: str  # what they are and when they were made, e.g. the commits that made them
    first_record: str = ""  # when records of this profile were first made (a commit, a date)


@dataclass(frozen=True)
class Upstream:
    """The results, at the same profile, of the studies a study declares in ``uses``: its
    summary and narrative read another study's results only through this, so the
    dependency is visible (``harness list``) and the folder is always named, never guessed
    from the working tree."""

    study: str
    profile: str
    results_dir: Path
    uses: tuple[str, ...]

    def folder(self, name: str) -> Path:
        if name not in self.uses:
            raise RegistryError(
                f"study {self.study!r} reads the results of {name!r} without declaring it: "
                f"add {name!r} to its Study(uses=...)"
            )
        return results_folder(self.results_dir, name, self.profile)

    def records_csv(self, name: str) -> Path | None:
        """results/<name>/<profile>/records.csv, or None when that study has not been run."""
        path = self.folder(name) / "records.csv"
        return path if path.is_file() else None


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    profiles: Mapping[str, Profile]
    summary: SummaryFunction  # (records, profile[, upstream]) -> tables and figures
    narrative: NarrativeFunction | None = None  # (records, profile[, upstream]) -> the text
    title: str = ""  # the paper's section title; empty: the description
    order: int = 100  # where the paper puts the section (then by name)
    # Studies whose results (same profile) the summary and narrative read; they then take
    # a third argument, an Upstream. The runner and `harness list` order studies after them.
    uses: tuple[str, ...] = ()
    # The claims the study judges (registered by `harness run` before any trial), the
    # function that judges them from records, and the pilot that sizes their n.
    claims: tuple[Claim, ...] = ()
    evidence: EvidenceFunction | None = None
    pilot: Pilot | None = None

    def __post_init__(self) -> None:
        wanted = 3 if self.uses else 2
        for what in ("summary", "narrative"):
            function = getattr(self, what)
            if function is not None and _positional_count(function) != wanted:
                raise RegistryError(
                    f"study {self.name!r}: its {what} must take {wanted} arguments "
                    f"(records, profile{', upstream' if self.uses else ''}) "
                    f"since it declares uses={self.uses!r}"
                )

    @property
    def section_title(self) -> str:
        return self.title or self.description

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise RegistryError(
                f"study {self.name!r} has no profile {name!r}; choose one of: {', '.join(self.profiles)}"
            )
        return self.profiles[name]

    def upstream(self, profile: str, results_dir: Path) -> Upstream:
        return Upstream(self.name, profile, results_dir, self.uses)

    def summarize(self, records: list[dict[str, Any]], profile: str, results_dir: Path) -> list[Any]:
        """The study's own tables and figures; ``results_dir`` holds the results it uses.
        (The results add the ``deviations`` table below the paper profile:
        ``harness.results.study_outputs``.)"""
        if self.uses:
            return self.summary(records, profile, self.upstream(profile, results_dir))
        return self.summary(records, profile)

    def narrate(self, records: list[dict[str, Any]], profile: str, results_dir: Path) -> Narrative:
        """The paper's text for the study; ``results_dir`` holds the results it uses. Its
        claims are judged under the registration in the run's run.json, at the scale of
        its records, with the n its pilot says each needs (``harness.registration``)."""
        if self.narrative is None:
            raise RegistryError(f"study {self.name!r} has no narrative")
        with judging(self.judging(records, profile, results_dir)):
            if self.uses:
                return self.narrative(records, profile, self.upstream(profile, results_dir))
            return self.narrative(records, profile)

    def judging(self, records: list[dict[str, Any]], profile: str, results_dir: Path) -> Any:
        """The ``harness.evidence.Judging`` its records' verdicts are read under."""
        import json

        from harness.power import needed_by_claim
        from harness.registration import judging_for

        path = run_file(results_dir, self.name, profile)
        run = json.loads(path.read_text()) if path.is_file() else None
        needed = needed_by_claim(self, results_dir) if self.pilot is not None else {}
        pilot = f"results/{self.name}/{self.pilot.profile}" if self.pilot is not None else ""
        return judging_for(self, profile, records, run, needed, pilot)


def _positional_count(function: Callable[..., Any]) -> int:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds for p in inspect.signature(function).parameters.values())


STUDIES: Registry[Study] = Registry("study")


def register_study(study: Study) -> Study:
    STUDIES.register(study.name)(study)
    return study


STUDY_MODULES_ENV = "HARNESS_STUDIES"


def _extra_modules() -> list[str]:
    # Studies kept outside the package (a test's tiny study, a user's own): comma-separated
    # importable module names in $HARNESS_STUDIES.
    return [n.strip() for n in os.environ.get(STUDY_MODULES_ENV, "").split(",") if n.strip()]


def _discover() -> None:
    # Study modules register themselves on import; importing the package once finds them all.
    import studies

    for module in pkgutil.iter_modules(studies.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"studies.{module.name}")
    for name in _extra_modules():
        importlib.import_module(name)


def get_study(name: str) -> Study:
    """The study ``name``, importing only its own module when it has one (studies/<name>.py):
    a run pays for its study's imports, not every study's."""
    if name not in STUDIES:
        import studies

        if any(m.name == name for m in pkgutil.iter_modules(studies.__path__)):
            importlib.import_module(f"studies.{name}")
    if name not in STUDIES:
        for module in _extra_modules():
            importlib.import_module(module)
    if name not in STUDIES:
        _discover()  # a study registered under another name than its module's
    return STUDIES.get(name)


def list_studies() -> list[str]:
    """Every registered study, each after the studies it uses (then by name), so running
    them in this order gives every study the results it reads."""
    _discover()
    names = STUDIES.names()
    for name in names:
        for used in STUDIES.get(name).uses:
            if used not in names:
                raise RegistryError(f"study {name!r} uses {used!r}, which is not registered")
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise RegistryError(f"studies use each other in a cycle through {name!r}")
        visiting.add(name)
        for used in sorted(STUDIES.get(name).uses):
            visit(used)
        visiting.discard(name)
        ordered.append(name)

    for name in sorted(names):
        visit(name)
    return ordered


def paper_order(names: list[str]) -> list[str]:
    """The order of the paper's sections: each study's ``order``, then its name."""
    return sorted(names, key=lambda n: (STUDIES.get(n).order, n))
