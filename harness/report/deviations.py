"""How a run departs from its study's paper profile (the published recipe), read from the
run's records on one side and the study's own paper profile on the other, so the list can
neither forget a deviation nor claim one the run did not make."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.config import RUNTIME_KEYS

PAPER = "paper"
# Not part of a recipe: where and how fast a trial ran, and which seed it was.
_NOT_RECIPE = RUNTIME_KEYS | {"repeat", "data_seed"}
MAX_SHOWN_VALUES = 8  # a setting with more values than this is searched, not a recipe's
# What a stage trains on and for how long: compared in every stage, searched or not.
_DATA_KEYS = frozenset({"dataset", "train_limit", "test_limit", "val_size", "epochs", "imbalance",
                        "imbalance_factor", "label_noise", "input_corruption", "crop_size"})
# How a zero reads for the settings where zero means "all" or "none".
_ZERO_MEANS = {"train_limit": "all", "test_limit": "all", "val_size": "none", "crop_size": "whole image"}


def paper_configs(study: Any) -> dict[str, list[tuple[str | None, dict[str, Any]]]]:
    """Per stage of the study's paper profile, its trials' (variant label, config with every
    option resolved)."""
    from harness.pricing.stages import resolved_stage_configs

    return {stage.name: [(label, c.resolved_dict()) for c, label in configs
                         if hasattr(c, "resolved_dict")]
            for stage, configs in resolved_stage_configs(study.profile(PAPER), labels=True)}


def study_deviations(study: Any, records: Sequence[Mapping[str, Any]], profile: str) -> pd.DataFrame:
    """``deviation_frame`` of a study's run at ``profile`` against its paper profile."""
    stages = study.profile(profile).stages
    chosen = {s.name for s in stages if callable(s.space) or s.searcher != "grid"}
    return deviation_frame(records, paper_configs(study), [s.name for s in stages], chosen)


def deviation_frame(records: Sequence[Mapping[str, Any]],
                    paper: Mapping[str, list[tuple[str | None, dict[str, Any]]]],
                    stage_order: Sequence[str], searched: frozenset[str] | set[str] = frozenset()
                    ) -> pd.DataFrame:
    """One row per (stage, setting) whose values in the records differ from the paper
    profile's: columns stage, setting, this run, paper profile. In ``searched`` stages
    (searched spaces, or built from earlier choices) only what they train on and for how
    long, and settings constant on both sides, are compared: their other values are draws."""
    ours: dict[str, list[tuple[str | None, dict[str, Any]]]] = {}
    for record in records:
        config = _resolved(record)
        if config is not None:
            label = record.get("label")
            ours.setdefault(str(record.get("stage")), []).append((label if isinstance(label, str) else None, config))
    rows = []
    for stage in [s for s in stage_order if s in ours]:
        theirs = paper.get(stage)
        if not theirs:
            rows.append({"stage": stage, "setting": "(whole stage)", "this run": "run",
                         "paper profile": "not in the paper profile"})
            continue
        pairs = _pairs(ours[stage], theirs)
        found: dict[tuple[str, str, str], list[str]] = {}
        for group, mine, paper_side in pairs:
            for row in _compare(mine, paper_side, stage in searched):
                found.setdefault(row, []).append(group or "")
        every = {group or "" for group, _, _ in pairs}
        for (setting, this, that), groups in found.items():
            # A deviation every variant shares is said once, for the stage.
            where = stage if set(groups) == every else f"{stage}: {', '.join(groups)}"
            rows.append({"stage": where, "setting": setting, "this run": this,
                         "paper profile": that})
    return pd.DataFrame(rows, columns=["stage", "setting", "this run", "paper profile"])


def _pairs(ours: list[tuple[str | None, dict[str, Any]]], theirs: list[tuple[str | None, dict[str, Any]]]
           ) -> list[tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]]]:
    """The stage compared variant by variant where both sides name the same variants, else
    as a whole."""
    mine_labels = {label for label, _ in ours}
    if None in mine_labels or not mine_labels <= {label for label, _ in theirs}:
        return [(None, [c for _, c in ours], [c for _, c in theirs])]
    return [(label, [c for lab, c in ours if lab == label], [c for lab, c in theirs if lab == label])
            for label in sorted(mine_labels)]


def _compare(ours: list[dict[str, Any]], theirs: list[dict[str, Any]],
             searched: bool) -> list[tuple[str, str, str]]:
    """(setting, this run, paper profile) for each setting whose values differ."""
    rows = []
    for key in sorted({k for c in ours for k in c} | {k for c in theirs for k in c}):
        if key in _NOT_RECIPE:
            continue
        mine, paper_values = _values(ours, key), _values(theirs, key)
        if mine == paper_values or max(len(mine), len(paper_values)) > MAX_SHOWN_VALUES:
            continue
        if searched and key not in _DATA_KEYS and (len(mine), len(paper_values)) != (1, 1):
            continue
        rows.append((key, _shown(mine), _shown(paper_values)))
    return rows


def _resolved(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record's config with every setting, those added since it ran at their defaults."""
    from harness.config import TrialConfig
    from harness.errors import HarnessError

    config = record.get("config")
    if not isinstance(config, Mapping) or "model" not in config:
        return None  # a theory check, not a training trial
    try:
        return TrialConfig.from_dict(config).resolved_dict()
    except HarnessError:
        return dict(record.get("resolved_config") or config)


def _values(configs: Sequence[Mapping[str, Any]], key: str) -> tuple[str, ...]:
    return tuple(sorted({_text(key, c.get(key)) for c in configs}, key=_order))


def _text(key: str, value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, list | tuple):
        return ",".join(_text(key, v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        value = int(value) if value.is_integer() and abs(value) < 1e15 else value
    if value == 0 and key in _ZERO_MEANS:
        return _ZERO_MEANS[key]
    return f"{value:g}" if isinstance(value, float) else str(value)


def _order(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def _shown(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "unset"


def deviations_table(study: Any, records: Sequence[Mapping[str, Any]], profile: str) -> Any:
    """The ``deviations`` table of a run below the paper profile, or None (the paper
    profile itself, a study without one, or a run that deviates in nothing)."""
    from harness.report.tables import Table

    if profile == PAPER or PAPER not in study.profiles:
        return None
    frame = study_deviations(study, records, profile)
    if frame.empty:
        return None
    from harness.report.tables import data_caption

    return Table(
        "deviations", frame,
        f"How the {profile} run on {data_caption(records)} departs from the paper profile, "
        "which follows the published recipe: each setting whose values differ, as this run's "
        "records and the study's paper profile state them (all: the whole split; none: no "
        "validation split).",
        column_widths={"stage": 0.3, "setting": 0.2, "this run": 0.22, "paper profile": 0.22},
    )


def not_done(study: Any, records: Sequence[Mapping[str, Any]], profile: str) -> list[str]:
    """What the study's paper profile runs and this run did not: whole stages, and the
    variants (losses, models, noise models...) of a stage, by their labels; then the paper
    profile itself. Empty at the paper profile."""
    if profile == PAPER or PAPER not in study.profiles:
        return []
    ran: dict[str, set[str]] = {}
    for record in records:
        label = record.get("label")
        ran.setdefault(str(record.get("stage")), set()).update([label] if isinstance(label, str) else [])
    stages = {s.name: s for s in study.profile(PAPER).stages}
    out = []
    for stage, configs in paper_configs(study).items():
        if stage not in ran:
            out.append(f"stage {stage} of the paper profile was not run")
            continue
        if stages[stage].searcher != "grid":
            continue  # its trials are draws: no label to miss
        labels = {label for label, _ in configs if label}
        missing = sorted(labels - ran[stage])
        if callable(stages[stage].space):
            # Built from earlier choices: its chosen rows are named by what was chosen, so
            # only whole families (CB-focal, a loss) can be missing, and only when some of
            # its rows are fixed ones the run shares.
            if not labels & ran[stage]:
                continue
            present = {_family(label) for label in ran[stage]}
            missing = sorted({_family(label) for label in missing} - present)
        if missing:
            out.append(f"{stage}: not run here: {_grouped(missing)}")
        factors = sorted({c.get("imbalance_factor") for _, c in configs}
                         - {_resolved_factor(r) for r in records if r.get("stage") == stage})
        shown = ", ".join(f"{f:g}" for f in factors if isinstance(f, float | int))
        if shown:
            out.append(f"{stage}: imbalance factors not run here: {shown}")
    out.append(f"the paper profile itself (`harness run {study.name} --profile paper`; "
               f"`--dry-run` prices it) was not run")
    return out


def _resolved_factor(record: Mapping[str, Any]) -> Any:
    value = (record.get("config") or {}).get("imbalance_factor", 1.0)
    return float(value) if isinstance(value, int | float) else value


def _grouped(labels: Sequence[str], most: int = 3) -> str:
    """Variant labels, those sharing a name ("alexnet-small | wd", "CB-focal (beta 0.9,
    gamma 1)") counted under it once there are more than ``most``."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(_family(label), []).append(label)
    return "; ".join(
        f"{name} ({len(members)} settings)" if len(members) > most else "; ".join(members)
        for name, members in groups.items())


def _family(label: str) -> str:
    """The name a variant label shares with its kin: "alexnet-small" of "alexnet-small |
    wd", "CB-focal" of "CB-focal (beta 0.9, gamma 1)"."""
    return label.split(" | ")[0] if " | " in label else label.split(" (")[0]
