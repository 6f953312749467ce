"""One way from a study to its trials: (study, profile, ``--set`` overrides) become each
stage's resolved space and its trials' validated configs. The plan (checks before Ray),
the dry-run pricing and Ray Tune all expand a stage here, and nowhere else.

- ``resolve_space`` / ``stage_space``: a stage's space (static, or built from earlier
  records) with the overrides applied, as constants, everywhere (variants included).
- Three ways to pick concrete points of a space, for three questions: ``sample_points``
  (validation: every grid and choice combination, ranges sampled once),
  ``enumerate_points`` (cost: what changes a step's cost, each point an equal share of
  the trials) and ``tune_points`` (the trials Tune runs, in its order, from its seeded
  generator).
- ``build_trial``: a point becomes a ``TrialSpec`` (the config, its variant label, the
  trainable's own knobs). ``trial_payload`` carries a spec to the Ray worker as data;
  ``spec_from_payload`` reads it back there, so a config is built once, on the driver.
- ``check_profile``: the typed overrides and each static stage validated, each
  validation point's config built once.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.space import (
    VARIANT_KEY,
    Choice,
    Grid,
    IntRange,
    LogUniform,
    Uniform,
    expand_variant,
    is_domain,
    sample,
)
from harness.study import Profile, Stage
from harness.trials import (
    CONTINUE_FROM,
    FAULT_FAIL_ONCE_AT_EPOCH,
    FAULT_FAIL_WHILE_EXISTS,
    FAULT_HOLD_WHILE_EXISTS,
    STOP_AT_EPOCH,
    TRAINABLE_KEYS,
    TRIAL_INDEX,
    check_stage,
    trial_kind,
)

MAX_VALIDATED_POINTS = 256  # combinations validated per stage
MAX_ENUMERATED = 512  # configurations of a searched space priced per stage
INT_RANGE_VALUES = 16  # an int range wider than this is priced by 16 spread values
# A trial's Tune config when the driver built it: {"harness.point": trial_payload(...)}.
POINT_KEY = "harness.point"


# ---------------------------------------------------------------------------- spaces


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


def resolve_space(stage: Stage, overrides: Mapping[str, Any],
                  earlier: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The stage's space with the overrides applied; a stage whose space is a function of
    earlier records is built from ``earlier`` (the caller chooses which: finished ones for
    a run, placeholders for pricing)."""
    built = stage.space(list(earlier)) if callable(stage.space) else stage.space
    return apply_overrides(dict(built), overrides)


def stage_space(stage: Stage, overrides: Mapping[str, Any],
                earlier: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """``resolve_space``, validated when it was built from records (a static stage's space
    is validated once, by ``check_profile``, before Ray starts)."""
    space = resolve_space(stage, overrides, earlier)
    if callable(stage.space):
        validate_space(stage, space)
    return space


# ---------------------------------------------------------------------------- points


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


def _cost_values(value: Any) -> tuple[Any, ...] | None:
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
    constants = {k: v for k, v in space.items() if _cost_values(v) is None}
    keys = [k for k in space if _cost_values(space[k]) is not None]
    values = [_cost_values(space[k]) or () for k in keys]
    total = math.prod(len(v) for v in values)
    if total <= limit:
        combos: Iterable[tuple[Any, ...]] = itertools.product(*values)
    else:
        rng = random.Random(seed)
        combos = [tuple(rng.choice(v) for v in values) for _ in range(limit)]
    return [{**constants, **dict(zip(keys, combo, strict=True))} for combo in combos]


def _optuna_value(value: Any) -> Any:
    # Optuna's categorical choices must be scalars: a variant travels as JSON text, and
    # TrialConfig parses "64,64" back to a tuple.
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return value


def to_tune_domain(value: Any, searcher: str) -> Any:
    """A harness.space domain (or a constant) as the Ray Tune equivalent."""
    from ray import tune

    if not is_domain(value):
        return list(value) if isinstance(value, tuple) else value
    if isinstance(value, Grid) and searcher != "optuna":
        return tune.grid_search(list(value.values))
    if isinstance(value, Grid | Choice):
        values = list(value.values)
        return tune.choice([_optuna_value(v) for v in values] if searcher == "optuna" else values)
    if isinstance(value, Uniform):
        return tune.uniform(value.low, value.high)
    if isinstance(value, LogUniform):
        return tune.loguniform(value.low, value.high)
    if isinstance(value, IntRange):
        return tune.randint(value.low, value.high + 1)  # Tune's upper bound is exclusive
    raise TypeError(f"not a search domain: {value!r}")


def param_space(stage: Stage, space: Mapping[str, Any]) -> dict[str, Any]:
    """The space in Tune's terms: the stage's space plus a grid over the repeat index."""
    from ray import tune

    params = {key: to_tune_domain(value, stage.searcher) for key, value in space.items()}
    if stage.repeats > 1:
        params["repeat"] = tune.grid_search(list(range(stage.repeats)))
    return params


def tune_points(stage: Stage, space: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every trial a grid or random search runs, in Tune's order, drawn from the same
    seeded generator Tune's BasicVariantGenerator uses."""
    from ray.tune.search.sample import _BackwardsCompatibleNumpyRng
    from ray.tune.search.variant_generator import generate_variants

    params = {"config": param_space(stage, space)}
    rng = _BackwardsCompatibleNumpyRng(stage.searcher_seed)
    return [spec["config"] for _ in range(stage.num_samples)
            for _resolved, spec in generate_variants(params, random_state=rng)]


# ---------------------------------------------------------------------------- trials


@dataclass(frozen=True)
class TrialSpec:
    """What a Tune trial config means: the config, the variant label, fault settings."""

    config: Any  # TrialConfig for "train" trials
    label: str | None = None
    fail_once_at_epoch: int | None = None
    fail_while_exists: str | None = None
    hold_while_exists: str | None = None
    trial_index: int | None = None
    stop_at_epoch: int | None = None
    continue_from: Any = None  # a Tune checkpoint


def build_trial(values: Mapping[str, Any], kind: str = "train") -> TrialSpec:
    """A point of a stage's space as a trial: its variant expanded, the trainable's own
    keys split off, its config validated."""
    values = dict(values)
    if isinstance(values.get(VARIANT_KEY), str):  # optuna carries a variant as JSON text
        values[VARIANT_KEY] = json.loads(values[VARIANT_KEY])
    merged, label = expand_variant(values)
    own = {k: merged.pop(k) for k in list(merged) if k in TRAINABLE_KEYS}
    config = trial_kind(kind).config_class().from_dict(merged)
    fail_at = None
    if FAULT_FAIL_ONCE_AT_EPOCH in own:
        raw = own[FAULT_FAIL_ONCE_AT_EPOCH]
        try:
            fail_at = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{FAULT_FAIL_ONCE_AT_EPOCH} must be an integer, got {raw!r}"
            ) from None
        if not 2 <= fail_at <= config.epochs:
            # Epoch 1 has no checkpoint before it: a retry would start afresh and fail again.
            raise ConfigError(
                f"{FAULT_FAIL_ONCE_AT_EPOCH} must be in [2, epochs={config.epochs}], got {fail_at}"
            )
    flag, hold = own.get(FAULT_FAIL_WHILE_EXISTS), own.get(FAULT_HOLD_WHILE_EXISTS)
    return TrialSpec(config, label, fail_at, str(flag) if flag else None,
                     str(hold) if hold else None, own.get(TRIAL_INDEX), own.get(STOP_AT_EPOCH),
                     own.get(CONTINUE_FROM))


def trial_payload(spec: TrialSpec, values: Mapping[str, Any],
                  searched: Sequence[str]) -> dict[str, Any]:
    """What the Ray worker gets for one trial: the built config as data, its label and the
    trainable's knobs, and the ``searched`` keys' values, for Tune's progress table."""
    return {
        "config": spec.config.to_dict(), "label": spec.label,
        "fail_once_at_epoch": spec.fail_once_at_epoch,
        "fail_while_exists": spec.fail_while_exists,
        "hold_while_exists": spec.hold_while_exists,
        "trial_index": spec.trial_index, "stop_at_epoch": spec.stop_at_epoch,
        "continue_from": spec.continue_from,
        "shown": {key: values.get(key) for key in searched},
    }


def trial_from_tune(values: Mapping[str, Any], kind: str) -> TrialSpec:
    """A Tune trial's config as its spec: the payload the driver built, read back (not
    rebuilt from overrides), or a point a learning searcher suggested inside Tune's own
    loop, built here by ``build_trial``."""
    if POINT_KEY not in values:
        return build_trial(values, kind)
    payload = values[POINT_KEY]
    config = trial_kind(kind).config_class().from_dict(payload["config"])
    return TrialSpec(config, payload["label"], payload["fail_once_at_epoch"],
                     payload["fail_while_exists"], payload["hold_while_exists"],
                     payload["trial_index"], payload["stop_at_epoch"], payload["continue_from"])


# ---------------------------------------------------------------------------- checks


def validate_space(stage: Stage, space: Mapping[str, Any]) -> None:
    """Build the config of each of the space's sample points, and for training trials the
    model on the dataset's input shape: unknown keys, bad values and models that do not
    fit their input fail here, before any trial starts."""
    check_stage(stage, space)
    for point in sample_points(space):
        try:
            check_trial(build_trial(point, stage.trial), stage.trial)
        except ConfigError as error:
            raise ConfigError(f"stage {stage.name!r}: {error}") from None


def check_trial(spec: TrialSpec, kind: str) -> None:
    """A training trial's model fits its input and its validation split its data."""
    if kind == "train":
        check_model_fits(spec.config)
        check_validation_fits(spec.config)


def check_profile(profile: Profile, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``--set`` values and every static stage; return the overrides with their
    types (as each stage's configs read them). Each validation point's config is built
    once: with the raw overrides, which the configs type exactly as the typed ones."""
    static = [s for s in profile.stages if not callable(s.space)]
    built: list[tuple[Stage, list[TrialSpec]]] = []
    for stage in static:
        specs = []
        for point in sample_points(apply_overrides(stage.space, raw)):
            try:
                specs.append(build_trial(point, stage.trial))
            except ConfigError as error:
                where = f"--set (stage {stage.name!r})" if raw else f"stage {stage.name!r}"
                raise ConfigError(f"{where}: {error}") from None
        built.append((stage, specs))
    typing = [spec for _, specs in built for spec in specs]
    if raw and not static:  # no stage to read them: a training config types them
        try:
            typing = [build_trial(dict(raw), "train")]
        except ConfigError as error:
            raise ConfigError(f"--set: {error}") from None
    typed: dict[str, Any] = {}  # each override as the built configs hold it (the last's)
    for spec in typing:
        flat = spec.config.to_dict()
        own = {FAULT_FAIL_ONCE_AT_EPOCH: spec.fail_once_at_epoch,
               FAULT_FAIL_WHILE_EXISTS: spec.fail_while_exists,
               FAULT_HOLD_WHILE_EXISTS: raw.get(FAULT_HOLD_WHILE_EXISTS)}
        typed.update({key: own[key] if key in own else flat.get(key, raw[key]) for key in raw})
    for stage, specs in built:
        check_stage(stage, apply_overrides(stage.space, typed))
        for spec in specs:
            try:
                check_trial(spec, stage.trial)
            except ConfigError as error:
                raise ConfigError(f"stage {stage.name!r}: {error}") from None
    return typed


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
    from harness.dataset_counts import dataset_counts
    from harness.errors import DataError
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


def model_on_meta(model: str, outputs: int, in_shape: tuple[int, int, int],
                  options: Mapping[str, Any]) -> Any:
    """The model on the meta device, shapes checked, no memory (plan checks, pricing's MACs)."""
    import torch

    from harness.models import create_model

    with torch.device("meta"):
        return create_model(model, outputs, in_shape, **options)
