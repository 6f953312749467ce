"""Everything a run checks before Ray starts: names, ``--set`` overrides, each stage's
space, where it writes, and what a resumed run may keep. No Ray or MLflow import here.

Folders: where ``runs/`` and ``results/`` are and what lives in them is
``harness.layout``'s; each stage's space and trial configs are ``harness.expansion``'s.

Fingerprints: ``plan.json`` holds the run's study, profile and overrides; each stage's
resolved space and settings are fingerprinted when it starts and kept with its state.
``--resume`` compares them here, before Ray starts (``check_resume``): a stage that ran
under another definition (an edited study, another ``--set``) is named with what changed,
and the run stops with nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.expansion import check_profile, resolve_space
from harness.layout import (
    resolve_results_dir,
    resolve_runs_dir,
    results_folder,
    runs_records,
)
from harness.study import Profile, Stage, Study, get_study
from harness.trials import canonical_space

PLAN_FILE = "plan.json"


# ---------------------------------------------------------------------------- folders


def _existing_ancestor(folder: Path) -> Path:
    """``folder`` itself when it exists, else the nearest ancestor that does."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable(folder: Path, what: str) -> None:
    """``folder`` is a folder we can create files in, or can be made as one. Nothing is
    created: a missing folder is checked by writing in its nearest existing ancestor (the
    folder that would hold it), so a run refused later leaves no empty folders behind."""
    try:
        holder = _existing_ancestor(folder)
        if not holder.is_dir():
            raise NotADirectoryError(f"{holder} is a file, not a folder")
        with tempfile.NamedTemporaryFile(dir=holder, prefix=".harness-write-check-"):
            pass
    except OSError as error:
        raise HarnessError(
            f"cannot write the {what} folder {folder}: {error.strerror or error}; "
            "fix its permissions or pick another folder"
        ) from None


def check_replaceable(target: Path) -> None:
    """An existing results folder can be swapped out: renamed beside itself and back, the
    very step the swap takes. Write permission on its parent is not enough (an immutable
    folder, ``chattr +i``, or one under a sticky parent owned by someone else refuses it),
    and finding out after the trials ran would waste them."""
    if not target.is_dir():
        return
    probe = target.with_name(f".{target.name}-check-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        os.rename(target, probe)
    except OSError as error:
        raise HarnessError(
            f"cannot replace the results folder {target}: {error.strerror or error} "
            "(immutable? see `lsattr -d`); fix its permissions or pick another --results-dir"
        ) from None
    os.rename(probe, target)  # back under the name it had


def check_results_target(results_dir: Path, study: str, profile: str) -> None:
    """The folder a run swaps its results into, and the one it is swapped in beside, both
    writable and the earlier results replaceable: checked before any trial so a finished
    study never dies writing them. Creates nothing."""
    check_writable(results_dir, "results")
    target = results_folder(results_dir, study, profile)
    check_writable(target.parent, "results")
    if target.exists() and not target.is_dir():
        raise HarnessError(
            f"cannot write results into {target}: it is a file, not a folder; move it away"
        )
    check_replaceable(target)


# ---------------------------------------------------------------------------- options


@dataclass(frozen=True)
class RunOptions:
    study: str
    profile: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    gpus_per_trial: float | None = None  # None: each stage's own value
    ray_address: str | None = None  # None: $RAY_ADDRESS, else a local Ray
    resume: bool = False
    rerun: str | None = None  # with resume: run this stage (and the ones after it) again
    runs_dir: Path | None = None  # None: resolve_runs_dir
    results_dir: Path | None = None  # None: resolve_results_dir
    storage: str | None = None  # Ray Tune storage (shared folder or URI); None: runs/ray
    data_root: str | None = None
    tracking: bool = True  # log to MLflow
    trial_resources: Mapping[str, float] = field(default_factory=dict)  # custom Ray resources


# ---------------------------------------------------------------------------- stages


def stage_definition(stage: Stage, space: Mapping[str, Any]) -> dict[str, Any]:
    """A stage's settings and resolved space as JSON values: what its fingerprint hashes,
    kept in its start marker so a refused --resume can say what changed."""
    # The seed settings (harness.pairing) are in the space, as the trials' config keys: a
    # stage without them keeps the fingerprint it had before they existed.
    settings = {k: v for k, v in asdict(stage).items()
                if k not in ("space", "paired_keys", "data_seed_per_repeat")}
    definition = {"settings": settings, "space": canonical_space(space)}
    return json.loads(json.dumps(definition, sort_keys=True, default=str))


def stage_fingerprint(stage: Stage, space: Mapping[str, Any]) -> str:
    """A hash of a stage's settings and its resolved space: what the stage computes."""
    blob = json.dumps(stage_definition(stage, space), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class RunPlan:
    study: Study
    profile: Profile
    overrides: dict[str, Any]
    options: RunOptions
    runs_dir: Path
    results_dir: Path

    @property
    def state_dir(self) -> Path:
        return self.runs_dir / "ray" / f"{self.study.name}-{self.profile.name}"

    @property
    def storage_dir(self) -> str:
        """Where Tune keeps this run's experiments: --storage (shared by every node of a
        cluster), else the state folder."""
        if self.options.storage:
            return f"{storage_root(self.options.storage)}/{self.study.name}-{self.profile.name}"
        return str(self.state_dir.resolve())

    @property
    def records_dir(self) -> Path:
        return runs_records(self.runs_dir, self.study.name, self.profile.name)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "study": self.study.name,
            "profile": self.profile.name,
            "overrides": {k: self.overrides[k] for k in sorted(self.overrides)},
            "stages": [s.name for s in self.profile.stages],
        }


def plan_run(options: RunOptions) -> RunPlan:
    """Every check that needs no Ray: names, overrides, stage settings, folders."""
    study = get_study(options.study)
    profile = study.profile(options.profile)
    # Static stages are checked here; one built from records when those are at hand.
    overrides = check_profile(profile, options.overrides)
    if options.gpus_per_trial is not None and options.gpus_per_trial < 0:
        raise ConfigError(f"--gpus-per-trial must be >= 0, got {options.gpus_per_trial}")
    if options.rerun is not None:
        names = [s.name for s in profile.stages]
        if options.rerun not in names:
            raise ConfigError(
                f"--rerun {options.rerun!r}: {study.name}/{profile.name} has stages "
                f"{', '.join(names)}"
            )
        if not options.resume:
            raise ConfigError("--rerun keeps the stages before it, so it needs --resume")
    if options.tracking and missing_module("mlflow"):
        raise HarnessError(
            "MLflow is not installed: pip install 'harness[tune]', or pass --no-mlflow"
        )
    if missing_module("ray"):
        raise HarnessError("Ray is not installed: pip install 'harness[tune]'")
    runs_dir = resolve_runs_dir(options.runs_dir)
    results_dir = resolve_results_dir(options.results_dir)
    check_writable(runs_dir, "runs")
    check_results_target(results_dir, study.name, profile.name)
    if options.storage:
        check_storage(options.storage)
    address = options.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        from harness.ray_session import check_ray_address

        check_ray_address(address)
    plan = RunPlan(study, profile, overrides, options, runs_dir, results_dir)
    if options.resume:
        check_resume(plan)
    return plan


def storage_root(storage: str) -> str:
    """--storage as Tune gets it: a URI as given, a folder with ``~`` expanded (Tune takes
    "~/shared" literally, a folder named "~" in each worker's working directory)."""
    if "://" in storage:
        return storage.rstrip("/")
    return str(Path(storage).expanduser()).rstrip("/") or "/"


def check_storage(storage: str) -> None:
    """A local folder must be writable; a URI must name a filesystem pyarrow can open."""
    if "://" not in storage:
        path = Path(storage).expanduser()
        if not path.is_absolute():
            raise ConfigError(
                f"--storage {storage!r}: give an absolute path (every node of a cluster must "
                "see the same folder) or a URI such as s3://bucket/prefix"
            )
        check_writable(path, "Tune storage")
        return
    try:
        import pyarrow.fs

        pyarrow.fs.FileSystem.from_uri(storage)
    except Exception as error:  # noqa: BLE001 - pyarrow raises several kinds for bad URIs
        raise HarnessError(
            f"--storage {storage!r} is not a storage URI Ray Tune can use: {error}"
        ) from None


def missing_module(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return True


# ---------------------------------------------------------------------------- --resume


class PlanChanged(HarnessError):
    """--resume met state made under another definition of the study."""


def done_marker(plan: RunPlan, stage: Stage) -> Path:
    return plan.state_dir / f"{stage.name}.done.json"


def start_marker(plan: RunPlan, stage: Stage) -> Path:
    return plan.state_dir / f"{stage.name}.start.json"


def load_done_stage(plan: RunPlan, stage: Stage) -> list[dict[str, Any]] | None:
    """The records of a stage that finished, or None (not finished, or records removed by
    hand: the stage runs again)."""
    from harness.records import read_record

    marker = done_marker(plan, stage)
    if not marker.exists():
        return None
    names = json.loads(marker.read_text())["records"]
    folder = plan.records_dir / stage.name
    if not all((folder / name).exists() for name in names):
        return None
    return [read_record(folder / name) for name in names]


def check_stage_unchanged(plan: RunPlan, stage: Stage, space: Mapping[str, Any]) -> None:
    """A stage started or finished under another definition must not be mixed in."""
    markers = [m for m in (done_marker(plan, stage), start_marker(plan, stage)) if m.exists()]
    if not markers:
        return
    if json.loads(markers[0].read_text()).get("fingerprint") == stage_fingerprint(stage, space):
        return
    start = start_marker(plan, stage)
    before = json.loads(start.read_text()).get("definition") if start.exists() else None
    raise PlanChanged(
        f"stage {stage.name!r} of {plan.study.name}/{plan.profile.name} changed since it ran "
        f"({describe_change(before, stage_definition(stage, space))}): rerun it with "
        f"--rerun {stage.name} (the stages before it are kept), or drop --resume to start over"
    )


class NothingToResume(HarnessError):
    """--resume found no earlier run of the study and profile in the runs folder."""

    exit_code = 7


def check_something_to_resume(plan: RunPlan) -> None:
    """--resume continues a run; with none (a typo in --runs-dir, state removed) it would
    silently start from scratch, perhaps for hours: say so instead. --rerun of the first
    stage keeps nothing, so it is a fresh run whatever is there."""
    if plan.options.rerun == plan.profile.stages[0].name:
        return
    state = plan.state_dir
    markers = [state / PLAN_FILE] + [m(plan, s) for s in plan.profile.stages
                                      for m in (start_marker, done_marker)]
    if not any(marker.exists() for marker in markers):
        raise NothingToResume(
            f"--resume: nothing to resume for {plan.study.name}/{plan.profile.name} in "
            f"{plan.runs_dir} (no earlier run's state in {state}); check --runs-dir, or run "
            "without --resume to start it"
        )


def check_resume(plan: RunPlan) -> None:
    """Before Ray starts: every stage a resumed run would keep or continue still has the
    definition it ran under. Stages from --rerun on are dropped, so they are not checked;
    a stage whose space is built from earlier records is checked when those are at hand."""
    from harness.records import finished

    check_something_to_resume(plan)
    earlier: list[dict[str, Any]] = []
    for stage in plan.profile.stages:
        if stage.name == plan.options.rerun:
            return
        if not (done_marker(plan, stage).exists() or start_marker(plan, stage).exists()):
            return  # stages run in order: nothing from here on has run
        check_stage_unchanged(plan, stage, resolve_space(stage, plan.overrides, finished(earlier)))
        done = load_done_stage(plan, stage)
        if done is None:
            return  # it runs again; the stages after it are checked when they start
        earlier += done


def describe_change(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """What differs between two stage definitions, as "key old -> new" (at most three)."""
    if not before:
        return "its space or settings"
    changes = []
    for part in ("space", "settings"):
        old, new = before.get(part, {}), after.get(part, {})
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                changes.append(f"{key} {_shown(old.get(key))} -> {_shown(new.get(key))}")
    if not changes:
        return "its space or settings"
    more = f", and {len(changes) - 3} more" if len(changes) > 3 else ""
    return ", ".join(changes[:3]) + more


def _shown(value: Any) -> str:
    """A value of a canonical space as a user wrote it: grid(0.1, 0.2), not its tagged form."""
    if value is None:
        return "unset"
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith("<"):
        kind, fields = next(iter(value.items()))
        args = fields.get("values", list(fields.values())) if isinstance(fields, dict) else fields
        text = f"{kind.strip('<>').lower()}({', '.join(_shown(a) for a in args)})"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= 60 else text[:57] + "..."
