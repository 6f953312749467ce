"""Everything a run checks before Ray starts: names, ``--set`` overrides, each stage's
space, where it writes, and what a resumed run may keep. No Ray or MLflow import here.

Folders: ``runs/`` (scratch: Ray storage, records, the MLflow store) and ``results/``
(committed) are resolved once: the option, else ``HARNESS_RUNS`` / ``HARNESS_RESULTS``,
else the project root when the working directory is inside the harness checkout, else
the working directory. A run started from a sub-folder therefore uses the same store.

Fingerprints: ``plan.json`` holds the run's study, profile and overrides; each stage's
resolved space and settings are fingerprinted when it starts and kept with its state.
``--resume`` compares them here, before Ray starts (``check_resume``): a stage that ran
under another definition (an edited study, another ``--set``) is named with what changed,
and the run stops with nothing changed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import random
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.space import VARIANT_KEY, Choice, Grid, is_domain, sample
from harness.study import Profile, Stage, Study, get_study
from harness.trials import (
    FAULT_FAIL_ONCE_AT_EPOCH,
    FAULT_FAIL_WHILE_EXISTS,
    canonical_space,
    check_stage,
    split_trial_values,
)

RECORDS_DIR = "records"
PLAN_FILE = "plan.json"
MAX_VALIDATED_POINTS = 256


# ---------------------------------------------------------------------------- folders


def project_root() -> Path | None:
    """The harness checkout this package runs from (None for an installed copy)."""
    import harness

    root = Path(harness.__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "studies").is_dir() else None


def default_folder(name: str, env: str) -> Path:
    """$env, else <project root>/name when the working directory is inside the checkout,
    else ./name."""
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser().resolve()
    root, here = project_root(), Path.cwd().resolve()
    if root is not None and here.is_relative_to(root):
        return root / name
    return here / name


def resolve_runs_dir(given: str | Path | None) -> Path:
    return Path(given).expanduser().resolve() if given else default_folder("runs", "HARNESS_RUNS")


def resolve_results_dir(given: str | Path | None) -> Path:
    if given:
        return Path(given).expanduser().resolve()
    return default_folder("results", "HARNESS_RESULTS")


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
    check_writable(results_dir / study, "results")
    target = results_dir / study / profile
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


# ---------------------------------------------------------------------------- spaces


def sample_points(space: Mapping[str, Any], seed: int = 0) -> list[dict[str, Any]]:
    """Concrete points of a space for validation: every combination of its grid and choice
    values (so each model or variant meets the keys set beside it; capped), with ranges
    sampled once."""
    rng = random.Random(seed)
    base = {k: sample(v, rng) if is_domain(v) else v for k, v in space.items()}
    categorical = [(k, v.values) for k, v in space.items() if isinstance(v, Grid | Choice)]
    points = []
    for combo in itertools.islice(
        itertools.product(*(values for _, values in categorical)), MAX_VALIDATED_POINTS
    ):
        points.append(
            {**base, **{key: value for (key, _), value in zip(categorical, combo, strict=True)}}
        )
    return points


def apply_overrides(space: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """An override is a constant: it replaces the key's domain or value everywhere, which
    includes inside each variant (a variant's keys would otherwise win over the top level)."""
    if not overrides:
        return dict(space)
    result = {**space, **overrides}
    variant = space.get(VARIANT_KEY)
    if isinstance(variant, Grid | Choice):
        stripped = tuple(
            {k: v for k, v in dict(c).items() if k not in overrides} for c in variant.values
        )
        result[VARIANT_KEY] = type(variant)(stripped)
    return result


def validate_space(stage: Stage, space: Mapping[str, Any]) -> None:
    """Build the config of each of the space's sample points, and for training trials the
    model on the dataset's input shape: unknown keys, bad values and models that do not
    fit their input fail here, before any trial starts."""
    check_stage(stage, space)
    for point in sample_points(space):
        try:
            spec = split_trial_values(point, stage.trial)
            if stage.trial == "train":
                check_model_fits(spec.config)
                check_validation_fits(spec.config)
        except ConfigError as error:
            raise ConfigError(f"stage {stage.name!r}: {error}") from None


def check_model_fits(config: Any) -> None:
    """Build the trial's model on the meta device (no memory, no data) for the input shape
    its task and dataset give: a U-Net deeper than the image allows, or a crop larger than
    the image, fails here."""
    from harness.data import dataset_facts

    facts = dataset_facts(config.dataset)
    if facts.get("image_shape") is None:
        return  # a dataset that does not declare its shape is checked when it loads
    # Only what shapes the model goes into the cache key.
    shaping = {
        k: v for k, v in config.to_dict().items()
        if k in ("task", "model", "dataset", "crop_size") or k.startswith(("model.", "task."))
    }
    _build_on_meta(
        config.task, config.model, json.dumps(shaping, sort_keys=True, default=str),
        tuple(facts["image_shape"]), facts["num_classes"],
    )


def check_validation_fits(config: Any) -> None:
    """A validation split larger than the training images it is drawn from fails here,
    before any trial (the dataset's class counts: known for CIFAR-10, read for the
    embedded datasets; a dataset that cannot be read now is checked when it loads)."""
    if not config.val_size:
        return
    from harness.errors import DataError
    from harness.pricing.counts import dataset_counts
    from harness.trial_data import check_validation_size

    try:
        counts = dataset_counts(config.dataset)
    except DataError:
        return
    check_validation_size(counts.train, config)


@functools.lru_cache(maxsize=512)
def _build_on_meta(
    task: str, model: str, config_json: str, image_shape: tuple[int, int, int], classes: int
) -> None:
    from harness.config import TrialConfig
    from harness.tasks import task_class

    config = TrialConfig.from_dict(json.loads(config_json))
    outputs, in_shape = task_class(task).model_io(config, image_shape, classes)
    model_on_meta(model, outputs, in_shape, config.model_options)


def model_on_meta(model: str, outputs: int, in_shape: tuple[int, int, int], options: Mapping[str, Any]) -> Any:
    """The model on the meta device, shapes checked, no memory (plan checks, pricing's MACs)."""
    import torch

    from harness.models import create_model

    with torch.device("meta"):
        return create_model(model, outputs, in_shape, **options)


def typed_overrides(profile: Profile, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``--set`` values against every static stage; return them with their types."""
    if not raw:
        return {}
    static = [s for s in profile.stages if not callable(s.space)]
    # Each static stage's sampled point with the overrides must be a valid config.
    points = [
        (f"--set (stage {s.name!r})", point, s.trial)
        for s in static
        for point in sample_points(apply_overrides(s.space, raw))
    ]
    points = points or [("--set", dict(raw), "train")]
    typed: dict[str, Any] = {}
    for where, point, kind in points:
        try:
            spec = split_trial_values(point, kind)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        flat = spec.config.to_dict()
        for key in raw:
            own = {
                FAULT_FAIL_ONCE_AT_EPOCH: spec.fail_once_at_epoch,
                FAULT_FAIL_WHILE_EXISTS: spec.fail_while_exists,
            }
            typed[key] = own[key] if key in own else flat.get(key, raw[key])
    return typed


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
        return self.runs_dir / RECORDS_DIR / self.study.name / self.profile.name

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
    overrides = typed_overrides(profile, options.overrides)
    for stage in profile.stages:
        if not callable(stage.space):  # a callable space is checked once earlier stages ran
            validate_space(stage, apply_overrides(stage.space, overrides))
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
        built = stage.space(finished(earlier)) if callable(stage.space) else stage.space
        check_stage_unchanged(plan, stage, apply_overrides(dict(built), plan.overrides))
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
