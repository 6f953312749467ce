"""The typed, validated, frozen configuration of one trial.

A trial's configuration is a flat mapping of keys to scalars. Model, loss and task
options use dotted keys (``model.blocks``, ``loss.beta``, ``task.noise``) so that a
Ray Tune search space, a ``--set`` override and a records.csv column all name a
setting the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, get_args, get_origin, get_type_hints

from harness.errors import ConfigError, require
from harness.registry import reject_unknown_options

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "multistep", "cosine", "onecycle", "linear", "exponential", "rampdown")
IMBALANCE_PROFILES = ("none", "exp", "step")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
NORMALIZATIONS = ("channel", "per-image")
FLIP_MODES = ("random", "alternate")
PAD_MODES = ("zeros", "reflect")
OPTION_GROUPS = ("model", "loss", "task")

# Keys that choose where and how fast a trial runs, not what it computes:
# they stay out of the seed so a CPU and a GPU run of one config share a seed.
RUNTIME_KEYS = frozenset(
    {"device", "precision", "channels_last", "compile", "deterministic", "eval_batch_size"}
)
# Keys added after the first records were made. At their defaults they stay out of the
# config hash, so every earlier config keeps its hash and therefore its seed and metrics.
HASH_NEUTRAL_DEFAULTS: dict[str, Any] = {
    "task": "classify",
    "input_corruption": "none",
    "crop_size": 0,
    "random_crop": False,
    "normalization": "channel",
    # airbench94's recipe (harness.recipes.fastnet_recipe); see docs/fastnet.md.
    "train_fraction": 1.0,
    "drop_last": False,
    "flip_mode": "random",
    "pad_mode": "zeros",
    "norm_lr_scale": 1.0,
    "lr_start_factor": 0.0,
    "lr_end_factor": 0.0,
    "lookahead_every": 0,
    "lookahead_decay": 0.95**5,
    "adam_beta2": 0.999,
    "val_size": 0,
    # Common random numbers (harness.pairing): both stay out of the hash at their defaults.
    "paired_keys": [],
    "data_seed_per_repeat": False,
}
# Keys a trial's seed can never ignore: they say which draw it is, or how seeds are made.
UNPAIRABLE_KEYS = frozenset({"repeat", "data_seed", "paired_keys", "data_seed_per_repeat"})


@dataclass(frozen=True)
class TrialConfig:
    dataset: str = "digits"
    task: str = "classify"
    model: str = "mlp"
    loss: str = "ce"
    epochs: int = 10
    # Train only the first ceil(train_fraction * epochs * steps per epoch) steps: airbench's
    # 9.9 epochs are epochs=10, train_fraction=0.99 (the last epoch stops early).
    train_fraction: float = 1.0
    batch_size: int = 128
    drop_last: bool = False  # drop a short last training batch (airbench does)
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    adam_beta2: float = 0.999  # AdamW's second-moment decay (Noise2Noise uses 0.99)
    weight_decay: float = 5e-4
    # lr multiplier for normalization-layer parameters (airbench's bias_scaler); their
    # weight decay is divided by it, so the decay per step stays that of the other weights.
    norm_lr_scale: float = 1.0
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    # schedule=linear: lr x lr_start_factor at step 0, rising linearly to lr at the end of
    # warm-up, then falling linearly to lr x lr_end_factor at the last step.
    lr_start_factor: float = 0.0
    lr_end_factor: float = 0.0
    # Lookahead / EMA of the weights (airbench's LookaheadState): every lookahead_every
    # steps (0 = off) ema <- ema + (1 - d)(w - ema) and w <- ema, with
    # d = lookahead_decay * (step / total steps)^3; the last step copies the EMA in.
    lookahead_every: int = 0
    lookahead_decay: float = 0.95**5
    milestones: tuple[int, ...] = ()
    lr_decay: float = 0.1
    crop_padding: int = 0
    pad_mode: str = "zeros"  # what the pad-and-crop pads with: zeros, or the reflected image
    flip: bool = False
    # random: each image mirrored with probability 1/2 every epoch; alternate: airbench's
    # scheme, a random half mirrored in even epochs and exactly the other half in odd ones.
    flip_mode: str = "random"
    imbalance: str = "none"
    imbalance_factor: float = 1.0
    label_noise: float = 0.0
    # Zhang et al.'s randomization tests and preprocessing (train and test alike).
    input_corruption: str = "none"
    crop_size: int = 0  # 0: the whole image; else a centre crop (random when random_crop)
    random_crop: bool = False
    normalization: str = "channel"  # per-channel dataset stats, or per-image standardization
    train_limit: int = 0
    test_limit: int = 0
    # Images held out of the training split as a validation set (0: none), drawn from
    # data_seed: stratified by class, or for a long tail class-balanced from the images the
    # tail left out (harness.trial_data). Stages that choose among configurations choose
    # on it; the test split is reported, never chosen on.
    val_size: int = 0
    data_seed: int = 0
    # Each repeat draws its own data: the trial's data seed is data_seed + repeat
    # (trial_data_seed), so an interval over repeats covers the subset, the long tail, the
    # validation split and the label noise drawn, not only initialization and order.
    data_seed_per_repeat: bool = False
    repeat: int = 0
    # Common random numbers: config keys the trial's seed leaves out (a key that names a
    # loss, model or task also leaves out its options). Trials of one repeat that differ
    # only in these keys share the seed, so their initial weights, batch order and
    # augmentation draws are the same and a paired difference measures the keys alone
    # (a stage's paired_keys put them here; see harness.pairing).
    paired_keys: tuple[str, ...] = ()
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = False
    eval_batch_size: int = 1024
    model_options: Mapping[str, Any] = field(default_factory=dict)
    loss_options: Mapping[str, Any] = field(default_factory=dict)
    task_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Freeze the option mappings too, so a config can't change after validation.
        for group in OPTION_GROUPS:
            name = f"{group}_options"
            object.__setattr__(self, name, types.MappingProxyType(dict(getattr(self, name))))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrialConfig:
        """Build a config from a flat mapping, rejecting unknown keys and bad values."""
        return build_config(values)

    def to_dict(self) -> dict[str, Any]:
        """The flat form: plain fields plus ``model.*``, ``loss.*`` and ``task.*`` keys."""
        flat: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _OPTION_FIELDS:
                continue
            value = getattr(self, f.name)
            flat[f.name] = list(value) if isinstance(value, tuple) else value
        for group in OPTION_GROUPS:
            for key, value in sorted(getattr(self, f"{group}_options").items()):
                flat[f"{group}.{key}"] = list(value) if isinstance(value, tuple) else value
        return flat

    def resolved_options(self, group: str) -> dict[str, Any]:
        """The model, loss or task options in force: the ones set, and the registry's
        defaults (the factory's signature) for the rest."""
        return {**option_defaults(group, self.option_owner(group)),
                **getattr(self, f"{group}_options")}

    def option_owner(self, group: str) -> str:
        """The name whose options ``group`` holds: the model, the loss or the task."""
        return {"model": self.model, "loss": self.loss, "task": self.task}[group]

    def resolved_dict(self) -> dict[str, Any]:
        """The flat config with every option, defaults included: what a trial record
        carries beside ``to_dict()``, so no reader restates a default. The hash stays
        that of ``to_dict()``, so adding it changes no seed."""
        flat = {k: v for k, v in self.to_dict().items()
                if k.partition(".")[0] not in OPTION_GROUPS or "." not in k}
        for group in OPTION_GROUPS:
            for key, value in sorted(self.resolved_options(group).items()):
                flat[f"{group}.{key}"] = list(value) if isinstance(value, tuple) else value
        return flat

    def replace(self, **changes: Any) -> TrialConfig:
        merged = self.to_dict()
        merged.update(changes)
        return build_config(merged)

    def semantic_dict(self) -> dict[str, Any]:
        """What the trial computes: the flat config without runtime-only keys, and without
        keys added later while they hold their defaults (so old hashes stay valid)."""
        return {
            k: v
            for k, v in self.to_dict().items()
            if k not in RUNTIME_KEYS
            and not (k in HASH_NEUTRAL_DEFAULTS and v == HASH_NEUTRAL_DEFAULTS[k])
        }

    def config_hash(self, include_repeat: bool = False) -> str:
        """A short stable hash of what the trial computes (repeat excluded by default)."""
        semantic = self.semantic_dict()
        if not include_repeat:
            semantic.pop("repeat")
        blob = json.dumps(semantic, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def seed_hash(self) -> str:
        """The hash the seed is drawn from: ``config_hash`` without the ``paired_keys``
        (so trials differing only in them share it); exactly ``config_hash`` without any."""
        if not self.paired_keys:
            return self.config_hash()
        semantic = {k: v for k, v in self.semantic_dict().items()
                    if k != "repeat" and not is_paired(k, self.paired_keys)}
        blob = json.dumps(semantic, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def derived_seed(self) -> int:
        """The trial's seed: a hash of the config (less its paired keys) plus the repeat
        index, never global state."""
        digest = hashlib.sha256(f"{self.seed_hash()}:{self.repeat}".encode()).digest()
        return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF

    def trial_data_seed(self) -> int:
        """The seed of the trial's data draws (subset, long tail, validation split, label
        noise, corruptions, test subset): ``data_seed``, plus the repeat index when
        ``data_seed_per_repeat``, so every repeat draws its own data and the arms of one
        repeat share it. The record keeps it as ``data.data_seed``."""
        return self.data_seed + (self.repeat if self.data_seed_per_repeat else 0)


def is_paired(key: str, paired_keys: Iterable[str]) -> bool:
    """Whether the flat config ``key`` is one the seed leaves out: a paired key itself, or
    an option (``loss.beta``) of a paired group (``loss``)."""
    group, dot, _ = key.partition(".")
    return any(key == paired or (dot and group == paired) for paired in paired_keys)


_OPTION_FIELDS = tuple(f"{group}_options" for group in OPTION_GROUPS)
_PLAIN_FIELDS = {f.name: f for f in fields(TrialConfig) if f.name not in _OPTION_FIELDS}
_HINTS = get_type_hints(TrialConfig)


def option_defaults(group: str, name: str) -> dict[str, Any]:
    """Every option of model, loss or task ``name`` with its default (its signature's)."""
    from harness.losses import loss_options
    from harness.models import model_options
    from harness.task_kinds import task_options

    return dict({"model": model_options, "loss": loss_options, "task": task_options}[group](name))


def valid_keys() -> list[str]:
    return sorted(_PLAIN_FIELDS) + [f"{group}.<option>" for group in OPTION_GROUPS]


def coerce(key: str, value: Any, expected: Any) -> Any:
    """Convert a value (possibly a command-line string) to the expected type, or raise."""
    origin = get_origin(expected)
    if origin is tuple:
        (item_type, _) = get_args(expected)
        if isinstance(value, str):
            parts = [p for p in value.replace("[", "").replace("]", "").split(",") if p.strip()]
        elif isinstance(value, Iterable):
            parts = list(value)
        else:
            parts = [value]
        return tuple(coerce(key, p, item_type) for p in parts)
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if expected is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if expected is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if expected is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string, got {value!r}")
    return value


def coerce_option(key: str, value: Any, default: Any) -> Any:
    """Coerce a model or loss option to the type of its default value."""
    if isinstance(value, str) and value.lower() in ("none", "null"):
        return None
    if default is None:
        # An option that defaults to None takes numbers or strings as given.
        if isinstance(value, str):
            for kind in (int, float):
                try:
                    return kind(value)
                except ValueError:
                    continue
        return value
    if isinstance(default, tuple):
        item = type(default[0]) if default else int
        return coerce(key, value, tuple[item, ...])
    if isinstance(default, bool):
        return coerce(key, value, bool)
    if isinstance(default, int):
        return coerce(key, value, int)
    if isinstance(default, float):
        return coerce(key, value, float)
    return coerce(key, value, str)


def _choice(key: str, value: str, choices: Iterable[str]) -> None:
    choices = list(choices)
    require(value in choices, f"{key} must be one of {', '.join(choices)}; got {value!r}")


def _fits_task(
    kind: str, name: str, output: str, task: Any, candidates: list[tuple[str, str]]
) -> None:
    fitting = [c for c in candidates if c[1] == task.output]
    require(
        output == task.output,
        f"{kind} {name!r} does not fit task {task.name!r} (it works on {output} outputs, the "
        f"task's model outputs {task.output}); {kind}s for {task.name}: "
        f"{', '.join(c[0] for c in fitting)}",
    )


def build_config(values: Mapping[str, Any]) -> TrialConfig:
    """Validate a flat mapping into a TrialConfig before any work starts."""
    from harness.data import list_datasets
    from harness.data.corruptions import INPUT_CORRUPTIONS
    from harness.losses import list_losses, loss_output
    from harness.models import list_models, model_output
    from harness.task_kinds import list_tasks, task_class

    plain: dict[str, Any] = {}
    options: dict[str, dict[str, Any]] = {group: {} for group in OPTION_GROUPS}
    unknown: list[str] = []
    for key, value in values.items():
        group, dot, option = key.partition(".")
        if dot and group in options:
            options[group][option] = value
        elif key in _PLAIN_FIELDS:
            plain[key] = coerce(key, value, _HINTS[key])
        else:
            unknown.append(key)
    if unknown:
        raise ConfigError(
            f"unknown config key(s): {', '.join(sorted(unknown))}. "
            f"Valid keys: {', '.join(valid_keys())}"
        )

    _choice("task", plain.get("task", TrialConfig.task), list_tasks())
    task = task_class(plain.get("task", TrialConfig.task))
    # A task brings its own default model and loss (a denoiser is no mlp with CE).
    plain.setdefault("model", task.default_model)
    plain.setdefault("loss", task.default_loss)
    config = TrialConfig(**plain)
    _choice("dataset", config.dataset, list_datasets())
    _choice("model", config.model, list_models())
    _choice("loss", config.loss, list_losses())
    _fits_task("model", config.model, model_output(config.model), task,
               [(m, model_output(m)) for m in list_models()])
    _fits_task("loss", config.loss, loss_output(config.loss), task,
               [(m, loss_output(m)) for m in list_losses()])
    _choice("optimizer", config.optimizer, OPTIMIZERS)
    _choice("schedule", config.schedule, SCHEDULES)
    _choice("imbalance", config.imbalance, IMBALANCE_PROFILES)
    _choice("device", config.device, DEVICES)
    _choice("precision", config.precision, PRECISIONS)
    _choice("normalization", config.normalization, NORMALIZATIONS)
    _choice("input_corruption", config.input_corruption, INPUT_CORRUPTIONS)
    _choice("flip_mode", config.flip_mode, FLIP_MODES)
    _choice("pad_mode", config.pad_mode, PAD_MODES)
    require(config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}")
    require(
        (config.epochs - 1) / config.epochs < config.train_fraction <= 1,
        f"train_fraction must be in ((epochs - 1) / epochs, 1] so the last epoch trains at "
        f"least one step, got {config.train_fraction} with epochs={config.epochs} "
        f"(9.9 epochs: epochs=10, train_fraction=0.99)",
    )
    require(config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}")
    require(config.eval_batch_size >= 1, "eval_batch_size must be >= 1")
    require(config.lr > 0, f"lr must be > 0, got {config.lr}")
    require(0 <= config.momentum < 1, f"momentum must be in [0, 1), got {config.momentum}")
    require(0 < config.adam_beta2 < 1, f"adam_beta2 must be in (0, 1), got {config.adam_beta2}")
    require(config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}")
    require(config.norm_lr_scale > 0, f"norm_lr_scale must be > 0, got {config.norm_lr_scale}")
    require(
        config.schedule == "linear"
        or (config.lr_start_factor, config.lr_end_factor) == (0.0, 0.0),
        f"lr_start_factor and lr_end_factor apply to schedule=linear only, not "
        f"schedule={config.schedule}",
    )
    require(config.lr_start_factor >= 0, f"lr_start_factor must be >= 0, got {config.lr_start_factor}")
    require(config.lr_end_factor >= 0, f"lr_end_factor must be >= 0, got {config.lr_end_factor}")
    require(config.lookahead_every >= 0, f"lookahead_every must be >= 0 (0 = off), got {config.lookahead_every}")
    require(0 <= config.lookahead_decay <= 1, f"lookahead_decay must be in [0, 1], got {config.lookahead_decay}")
    require(
        0 <= config.warmup_epochs < config.epochs or config.warmup_epochs == 0,
        f"warmup_epochs must be in [0, epochs), got {config.warmup_epochs}",
    )
    require(
        all(0 < m < config.epochs for m in config.milestones)
        and list(config.milestones) == sorted(set(config.milestones)),
        f"milestones must be increasing epochs inside (0, {config.epochs}), got {list(config.milestones)}",
    )
    require(config.schedule != "multistep" or bool(config.milestones), "schedule=multistep needs milestones, e.g. milestones=160,180")
    require(0 < config.lr_decay <= 1, f"lr_decay must be in (0, 1], got {config.lr_decay}")
    require(config.crop_padding >= 0, f"crop_padding must be >= 0, got {config.crop_padding}")
    require(config.crop_size >= 0, f"crop_size must be >= 0 (0 = the whole image), got {config.crop_size}")
    require(not config.random_crop or config.crop_size > 0, "random_crop needs crop_size, e.g. crop_size=28")
    require(config.pad_mode == "zeros" or config.crop_padding > 0,
            f"pad_mode={config.pad_mode} needs crop_padding > 0, e.g. crop_padding=2")
    require(config.flip_mode == "random" or config.flip,
            f"flip_mode={config.flip_mode} needs flip=true")
    require(config.imbalance_factor >= 1, f"imbalance_factor must be >= 1, got {config.imbalance_factor}")
    require(0 <= config.label_noise <= 1, f"label_noise must be in [0, 1], got {config.label_noise}")
    require(config.train_limit >= 0, f"train_limit must be >= 0 (0 = all), got {config.train_limit}")
    require(config.val_size >= 0,
            f"val_size must be an integer >= 0 (0 = no validation split), got {config.val_size}")
    require(config.test_limit >= 0, f"test_limit must be >= 0 (0 = all), got {config.test_limit}")
    require(config.repeat >= 0, f"repeat must be >= 0, got {config.repeat}")
    require(config.data_seed >= 0, f"data_seed must be >= 0, got {config.data_seed}")
    config = dataclasses.replace(config, paired_keys=_checked_paired_keys(config.paired_keys))

    defaults = {group: option_defaults(group, config.option_owner(group)) for group in OPTION_GROUPS}
    typed: dict[str, dict[str, Any]] = {}
    for group in OPTION_GROUPS:
        reject_unknown_options(group, config.option_owner(group), options[group], defaults[group],
                               prefix=f"{group}.")
        typed[group] = {
            k: coerce_option(f"{group}.{k}", v, defaults[group][k]) for k, v in options[group].items()
        }
    config = dataclasses.replace(config, **{f"{g}_options": typed[g] for g in OPTION_GROUPS})
    task.check(config)
    return config


def _checked_paired_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """The paired keys, sorted and without repeats (one stage's arms then hash alike), each
    a config key or a model/loss/task option key."""
    checked = sorted({key.strip() for key in keys if key.strip()})
    for key in checked:
        group, dot, option = key.partition(".")
        require(
            key not in UNPAIRABLE_KEYS,
            f"paired_keys cannot hold {key!r}: {', '.join(sorted(UNPAIRABLE_KEYS))} decide "
            "which draw a trial is, so arms that differ in them are not paired",
        )
        require(
            key in _PLAIN_FIELDS or (dot and group in OPTION_GROUPS and option),
            f"paired_keys holds {key!r}, which is no config key; name config keys (loss), "
            f"or options (task.target). Valid keys: {', '.join(valid_keys())}",
        )
    return tuple(checked)


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """Turn ``key=value`` strings from the command line into a mapping."""
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed
