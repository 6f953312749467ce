"""What a study declares: profiles made of stages, and a summary from records to tables.

A study is one module under ``studies/`` that calls ``register_study``. A profile runs
its stages in order; a stage whose ``space`` is a callable receives the records of the
stages before it (e.g. re-run the top five configurations of a search with three seeds).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import RegistryError
from harness.registry import Registry

SpaceBuilder = Callable[[list[dict[str, Any]]], Mapping[str, Any]]


@dataclass(frozen=True)
class Stage:
    name: str
    # Flat config keys -> constant or a harness.space domain; or a function of earlier records.
    space: Mapping[str, Any] | SpaceBuilder
    repeats: int = 1  # seeds: a grid over repeat = 0 .. repeats-1
    num_samples: int = 1  # searcher draws (random/optuna); a grid runs each point once per sample
    scheduler: str = "fifo"  # "fifo" | "asha"
    searcher: str = "grid"  # "grid" | "random" | "optuna"
    searcher_seed: int = 0
    metric: str | None = None  # None: the primary metric of the trials' task
    mode: str | None = None  # None: the metric's own direction (max for accuracy, PSNR)
    grace_period: int = 1  # ASHA: epochs before a trial can be stopped
    reduction_factor: int = 2  # ASHA
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0  # 0 = as many as resources allow
    trial: str = "train"  # what a trial runs: "train" (harness.train) or "check" (theory)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    stages: tuple[Stage, ...]
    needs_cifar: bool = False


SummaryFunction = Callable[[list[dict[str, Any]], str], list[Any]]


@dataclass(frozen=True)
class Narrative:
    """What the paper says about a study, every number computed from its records.

    ``verdict`` is one of VERDICTS; ``tables`` and ``figures`` name outputs of the study's
    summary (in the results folder) to show in the study's section, in order.
    """

    question: str
    claim: str  # the write-up's claim, as it states it
    answer: str  # one or two sentences with the measured numbers
    verdict: str
    verdict_reason: str  # the numbers the verdict rests on
    headline: str  # one sentence for the abstract
    tables: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    published: str = ""  # what published figures stand beside ours, and on which data


VERDICTS = ("supported", "not supported at this scale", "contradicted")


def verdict_for(holds: bool, profile: str) -> str:
    """The verdict on a claim the study's numbers test: supported when they agree; when
    they do not, contradicted only at the paper profile, since a smaller profile's shortfall
    may be its scale."""
    if holds:
        return VERDICTS[0]
    return VERDICTS[2] if profile == "paper" else VERDICTS[1]
NarrativeFunction = Callable[[list[dict[str, Any]], str], Narrative]


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    profiles: Mapping[str, Profile]
    summary: SummaryFunction  # (records, profile name) -> tables and figures
    narrative: NarrativeFunction | None = None  # (records, profile name) -> the paper's text

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise RegistryError(
                f"study {self.name!r} has no profile {name!r}; choose one of: {', '.join(self.profiles)}"
            )
        return self.profiles[name]


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
    _discover()
    return STUDIES.names()
