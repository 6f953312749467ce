"""2. recipe: fastnet's airbench94 recipe (a dict of config keys looked up by name at run
time: harness.recipes.FASTNET_RECIPE, else harness.models.fastnet.FASTNET_RECIPE), the
suite's seeds after one untimed warm-up run; the deadline is checked every epoch."""

from __future__ import annotations

import importlib
import statistics
from collections.abc import Mapping
from typing import Any

from benchmarks.gpu_suite.config import RECIPE_NAMES, SkipPart
from benchmarks.gpu_suite.context import Context


def find_recipe(names: tuple[str, ...] = RECIPE_NAMES) -> tuple[dict[str, Any] | None, str]:
    """The first ``module:NAME`` that is a dict of config keys, and where it came from; or
    None and what was tried."""
    tried = []
    for name in names:
        module_name, _, attribute = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            tried.append(f"{module_name} does not import ({error})")
            continue
        value = getattr(module, attribute, None)
        if isinstance(value, Mapping):
            return dict(value), name
        tried.append(f"{name} is not defined" if value is None else f"{name} is not a dict")
    return None, "; ".join(tried)


def part_recipe(ctx: Context) -> dict[str, Any]:
    from harness.config import TrialConfig
    from harness.errors import ConfigError
    from harness.train import train

    recipe, where = find_recipe(tuple(ctx.args.recipe) if ctx.args.recipe else RECIPE_NAMES)
    if recipe is None:
        raise SkipPart(f"no fastnet recipe preset yet: {where}")
    errors = []
    for overrides in ctx.sizes.recipe_overrides:
        values = {**recipe, "dataset": "cifar10", "device": ctx.device.type, **overrides}
        try:
            TrialConfig.from_dict(values)
            break
        except ConfigError as error:
            errors.append(str(error))
    else:
        raise SkipPart(f"the recipe {where} does not validate here: {'; '.join(errors)}")
    dataset = ctx.data.get("cifar10")

    def check_deadline(_metrics: Mapping[str, Any], _state: Any) -> None:
        ctx.deadline.check()  # every epoch: a recipe that overruns its share stops here

    if ctx.sizes.recipe_warmup:  # cuDNN autotuning and lazy CUDA init out of the timed runs
        train(TrialConfig.from_dict({**values, "repeat": 1000}), check_deadline, dataset=dataset)
    runs = []
    for repeat in range(ctx.sizes.recipe_seeds):
        config = TrialConfig.from_dict({**values, "repeat": repeat})
        record = train(config, check_deadline, dataset=dataset)
        runs.append({"repeat": repeat, "seed": record["seed"], "status": record["status"],
                     "test_acc": record["final"].get("test_acc"),
                     "train_loss": record["final"].get("train_loss"),
                     "train_seconds": round(record["train_seconds"], 3),
                     "wall_seconds": round(record["wall_seconds"], 3)})
        ctx.log(f"recipe seed {repeat}: {runs[-1]}")
    accs = [r["test_acc"] * 100 for r in runs if r["test_acc"] is not None]
    secs = [r["train_seconds"] for r in runs]
    return {"recipe": where, "config": values, "runs": runs,
            "warmup_run": ctx.sizes.recipe_warmup,
            "test_acc_percent": _mean_sd(accs), "train_seconds": _mean_sd(secs)}


def _mean_sd(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"mean": None, "sd": None, "n": 0}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "sd": round(sd, 4), "n": len(values)}

