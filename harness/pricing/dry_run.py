"""`harness run ... --dry-run`: plan every (study, profile), time or read throughput once,
estimate and print."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.pricing.cache import cache_path
from harness.pricing.estimate import Total, estimate_profile
from harness.pricing.explain import render_counted, render_model_rates
from harness.pricing.render import (
    device_label,
    human_hours,
    human_seconds,
    render_assumptions,
    render_estimate,
)
from harness.pricing.stages import ProfilePlan, check_profile, plan_profile
from harness.pricing.tables import ThroughputTable, anchor_gpu_table, find_gpu_table, load_table
from harness.pricing.timing import budget_seconds, machine_name, measure


def _local_and_gpu(plans: Sequence[ProfilePlan], options: Any,
                   echo: Callable[[str], None]) -> tuple[ThroughputTable, ThroughputTable | None]:
    from harness.layout import resolve_results_dir, resolve_runs_dir

    device_type, name = machine_name()
    gpu_path = find_gpu_table(resolve_results_dir(options.results_dir))
    gpu = load_table(gpu_path) if gpu_path is not None else None
    # The suite's figures stand for this machine only when it is the same card.
    known = gpu if gpu is not None and device_type == "cuda" and gpu.device_name == name else None
    local = measure(plans, budget_seconds(), known=known, echo=echo,
                    cache=cache_path(resolve_runs_dir(options.runs_dir), name))
    if gpu is None:
        gpu = local if device_type == "cuda" else anchor_gpu_table()
    return local, gpu


def dry_run_text(options_list: Sequence[Any], echo: Callable[[str], None] | None = None) -> str:
    """The dry-run report of one or more (study, profile) runs: plans, timing, tables."""
    from harness.study import get_study

    echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    plans, skipped = [], []
    several = len(options_list) > 1
    for options in options_list:
        study = get_study(options.study)
        if options.profile not in study.profiles and several:
            skipped.append(f"{study.name} has no profile {options.profile!r}")
            continue
        profile = study.profile(options.profile)
        try:
            overrides = check_profile(profile, options.overrides)
        except HarnessError as error:
            if not several:
                raise  # one study: the same error `harness run` would give
            skipped.append(f"{study.name}: its {profile.name} profile does not validate: {error}")
            continue
        plans.append(plan_profile(study, profile, overrides, options.data_root))
    if not plans:
        raise ConfigError("no study has profile " + repr(options_list[0].profile))
    local, gpu = _local_and_gpu(plans, options_list[0], echo)
    estimates = [estimate_profile(plan, local, gpu) for plan in plans]
    parts = [render_estimate(e) for e in estimates]
    if len(estimates) > 1:
        parts.append(
            f"All {len(estimates)} studies, profile {plans[0].profile}: "
            f"{sum(e.trials for e in estimates)} trials, "
            f"{human_seconds(Total.of(e.seconds for e in estimates))} on {device_label(local)}, "
            f"{human_hours(Total.of(e.gpu_hours for e in estimates))} GPU-hours"
            + (f" on {gpu.device_name}" if gpu else ""))
    parts += [f"- Skipped: {line}." for line in skipped]
    parts.append(render_model_rates(plans, local, gpu))
    parts.append(render_assumptions(local, gpu, plans) + "\n" + render_counted())
    return "\n\n".join(parts)


def print_dry_run(options: Any) -> None:
    """`harness run STUDY --profile P --dry-run`: stages, trials, epochs, estimated cost."""
    print(dry_run_text([options]), flush=True)


def print_dry_runs(options_list: Sequence[Any]) -> None:
    """`harness run --all-studies --profile P --dry-run`: every study's table, one timing."""
    print(dry_run_text(options_list), flush=True)
