"""Common random numbers: a stage's arms share their seeds, and each repeat its own data.

A stage names the config keys its claims compare (``Stage.paired_keys``: the loss, the
training target). Its trials carry them as the config key ``paired_keys``, which
``TrialConfig.derived_seed`` leaves out of the seed: trials of one repeat that differ only
in those keys get one seed, hence the same initial weights (where the models are the same
shape), batch order, augmentation and noise draws, and a paired difference measures the
keys alone, not two arms' seed noise as well. ``Stage.data_seed_per_repeat`` makes every
repeat draw its own data (``data_seed + repeat``: subset, long tail, validation split,
label noise, test subset), the same for every arm of the repeat, so an interval over
repeats covers data sampling too (Bouthillier et al., "Accounting for Variance in Machine
Learning Benchmarks", MLSys 2021).

Both travel in each trial's config, so a record alone says how its seeds were made and a
rebuilt trial draws them again. A config that sets neither keeps the hash and seed it had
before they existed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import RegistryError

PAIRED_KEYS = "paired_keys"
DATA_SEED_PER_REPEAT = "data_seed_per_repeat"


def seed_keys(paired_keys: tuple[str, ...], data_seed_per_repeat: bool) -> dict[str, Any]:
    """The config keys a stage's seed settings put into every trial's config."""
    keys: dict[str, Any] = {}
    if paired_keys:
        keys[PAIRED_KEYS] = tuple(paired_keys)
    if data_seed_per_repeat:
        keys[DATA_SEED_PER_REPEAT] = True
    return keys


def with_seed_keys(stage_name: str, space: Mapping[str, Any], keys: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """``space`` with the stage's seed keys added; a space that sets one to another value
    is refused (the stage says it once, in its declaration). Equal values pass, so a stage
    copied with ``dataclasses.replace`` merges again to the same space."""
    clash = sorted(k for k in set(keys) & set(space) if _same(space[k]) != _same(keys[k]))
    if clash:
        raise RegistryError(
            f"stage {stage_name!r} sets {', '.join(clash)} in its space and as a Stage "
            f"setting; declare it once, as Stage({clash[0]}=...)"
        )
    return {**space, **keys}


def paired_space(stage_name: str, space: Any, keys: Mapping[str, Any]) -> Any:
    """A stage's space (a mapping, or a function of earlier records) with its seed keys in
    every trial's config; the space itself when there are none."""
    if not keys:
        return space
    if callable(space):
        build: Callable[[list[dict[str, Any]]], Mapping[str, Any]] = space

        def built(records: list[dict[str, Any]]) -> dict[str, Any]:
            return with_seed_keys(stage_name, build(records), keys)

        built.__name__ = getattr(space, "__name__", "space")
        built.__doc__ = getattr(space, "__doc__", None)
        return built
    return with_seed_keys(stage_name, space, keys)


def _same(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value
