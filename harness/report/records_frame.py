"""Trial records (one JSON file per trial) as pandas frames.

Every table and figure starts here, so the column names and the row order are
part of the contract: ``config.<key>`` with dotted keys kept as they are
(``config.loss.beta``), ``final.<metric>``, ``data.<field>``,
``environment.<field>`` and ``per_class.<i>``. Rows are sorted by
``config_hash`` then ``config.repeat`` so a rebuilt records.csv is
byte-identical however the files were listed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from harness.numbers import decimals_apart, fixed
from harness.records import (  # noqa: F401
    FINISHED_STATUSES,
    check_record,
    load_records,
    resolved_config,
)
from harness.task_kinds import TaskKind, record_task

# Fields that identify a trial come first so a reader of records.csv sees what ran.
_IDENTITY = ("study", "profile", "stage", "label", "trial_id", "config_hash", "seed", "status")
_ALWAYS = ("config_hash", "seed", "status")
# What the training loop records beside a task's own metrics (harness.train).
_LOOP_HISTORY = ("lr", "epoch_seconds", "images_per_second")
_SCALAR_ORDER = ("num_params", "macs_per_image", "train_seconds", "wall_seconds", "images_per_second")
_DATA_ORDER = ("dataset", "source", "train_size", "test_size", "label_noise_realized", "sha256")
_ENV_ORDER = ("device", "device_name", "torch", "harness", "git_commit")
# Top-level fields that are not per-trial scalars, or are already placed elsewhere.
# Other top-level objects (a task's ``noise`` or ``time_to_fit``) become ``<key>.<field>``
# columns; images kept in a record (``*_png``) stay out of the table.
_NOT_SCALAR = {
    "schema_version", "config", "resolved_config", "final", "history", "data", "environment",
    *_IDENTITY,
}


def _cell(value: Any) -> Any:
    """A JSON value as a frame cell: lists become tuples so groupby can hash them."""
    if value is None:
        return math.nan
    if isinstance(value, list):
        return tuple(_cell(v) for v in value)
    return value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _ordered(keys: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """Known keys in their natural order, then any others alphabetically (new fields survive)."""
    present = set(keys)
    return [k for k in preferred if k in present] + sorted(present - set(preferred))


def _identity_row(record: Mapping[str, Any]) -> dict[str, Any]:
    row = {key: _cell(record.get(key)) for key in _IDENTITY if key in record}
    for key, value in resolved_config(record).items():
        row[f"config.{key}"] = _cell(value)
    return row


def _identity_columns(records: Sequence[Mapping[str, Any]]) -> list[str]:
    present = {key for r in records for key in _IDENTITY if key in r}
    columns = [key for key in _IDENTITY if key in present or key in _ALWAYS]
    config_keys = sorted({key for r in records for key in resolved_config(r)})
    return columns + [f"config.{key}" for key in config_keys]


def _sorted_rows(frame: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    keys = [c for c in ("config_hash", "config.repeat", "seed", *extra) if c in frame.columns]
    # mergesort is stable, so rows equal on every key keep their input (file) order.
    return frame.sort_values(keys, kind="mergesort", na_position="last").reset_index(drop=True)


def _checked(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records, checked; an older record without ``resolved_config`` gets it once here
    (on a copy), so the row and the column list do not each rebuild its config."""
    records = list(records)
    for i, record in enumerate(records):
        check_record(record, f"record {i}")
    return [r if "resolved_config" in r else {**r, "resolved_config": resolved_config(r)}
            for r in records]


def _metric_order(records: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The metrics' column order, as the records' tasks give it (classification's accuracy
    beside its loss, and so on), each metric once."""
    order: dict[str, None] = {}
    for task in _tasks(records):
        order.update(dict.fromkeys(task.metric_order))
    return tuple(order)


def _tasks(records: Sequence[Mapping[str, Any]]) -> list[type[TaskKind]]:
    found: dict[str, type[TaskKind]] = {}
    for record in records:
        task = record_task(record)
        if task is not None:
            found.setdefault(task.name, task)
    return [found[name] for name in sorted(found)]


def _task_columns(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The tasks' own columns (per-class accuracy), in the order the records give them."""
    columns: dict[str, None] = {}
    for record in records:
        task = record_task(record)
        if task is not None:
            columns.update(dict.fromkeys(task.record_columns(record)))
    return list(columns)


def records_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per trial: identity, ``config.*``, ``final.*``, scalars, ``data.*``,
    ``environment.*`` columns, then the task's own (a classifier's ``per_class.<i>``), in a
    fixed order."""
    records = _checked(records)
    rows = []
    for record in records:
        row = _identity_row(record)
        for key, value in (record.get("final") or {}).items():
            row[f"final.{key}"] = _cell(value)
        for key, value in record.items():
            if key in _NOT_SCALAR or key.endswith("_png"):
                continue
            if _is_scalar(value):
                row[key] = _cell(value)
            elif isinstance(value, Mapping):
                for sub, item in value.items():
                    if _is_scalar(item):
                        row[f"{key}.{sub}"] = _cell(item)
        for section in ("data", "environment"):
            for key, value in (record.get(section) or {}).items():
                if _is_scalar(value):
                    row[f"{section}.{key}"] = _cell(value)
        task = record_task(record)
        for key, value in (task.record_columns(record) if task else {}).items():
            row[key] = _cell(value)
        rows.append(row)

    def keys_of(section: str) -> set[str]:
        return {k for r in records for k in (r.get(section) or {})}

    scalars = {k for r in records for k, v in r.items()
               if k not in _NOT_SCALAR and not k.endswith("_png") and _is_scalar(v)}
    nested = {f"{k}.{sub}" for r in records for k, v in r.items()
              if k not in _NOT_SCALAR and isinstance(v, Mapping)
              for sub, item in v.items() if _is_scalar(item)}
    data_keys = {k for r in records for k, v in (r.get("data") or {}).items() if _is_scalar(v)}
    env_keys = {k for r in records for k, v in (r.get("environment") or {}).items() if _is_scalar(v)}
    columns = (
        _identity_columns(records)
        + [f"final.{k}" for k in _ordered(keys_of("final"), ("epoch", *_metric_order(records)))]
        + _ordered(scalars, _SCALAR_ORDER)
        + sorted(nested)
        + [f"data.{k}" for k in _ordered(data_keys, _DATA_ORDER)]
        + [f"environment.{k}" for k in _ordered(env_keys, _ENV_ORDER)]
        + _task_columns(records)
    )
    return _sorted_rows(pd.DataFrame.from_records(rows, columns=columns))


def history_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (trial, epoch): identity and ``config.*`` columns plus the history fields.

    This is the long form learning curves want: ``line_with_bands(h, "epoch", "test_acc",
    hue="config.loss")`` draws the mean over seeds with an sd band.
    """
    records = _checked(records)
    rows = []
    for record in records:
        identity = _identity_row(record)
        for entry in record.get("history") or []:
            rows.append({**identity, **{k: _cell(v) for k, v in entry.items()}})
    history_keys = {k for r in records for e in (r.get("history") or []) for k in e}
    preferred = ("epoch", *_metric_order(records), *_LOOP_HISTORY)
    columns = _identity_columns(records) + _ordered(history_keys, preferred)
    return _sorted_rows(pd.DataFrame.from_records(rows, columns=columns), extra=("epoch",))


def per_class_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (trial, class): identity, ``config.*``, ``class`` (index), ``class_name``,
    ``train_count`` (training images of that class, after any imbalance) and ``accuracy``."""
    records = _checked(records)
    rows = []
    for record in records:
        identity = _identity_row(record)
        accuracies = record.get("per_class_accuracy") or []
        names = record.get("class_names") or []
        counts = record.get("train_class_counts") or []
        for i, acc in enumerate(accuracies):
            rows.append({
                **identity,
                "class": i,
                "class_name": names[i] if i < len(names) else str(i),
                "train_count": counts[i] if i < len(counts) else math.nan,
                "accuracy": _cell(acc),
            })
    columns = _identity_columns(records) + ["class", "class_name", "train_count", "accuracy"]
    return _sorted_rows(pd.DataFrame.from_records(rows, columns=columns), extra=("class",))


def completed(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the trials that finished (all epochs, or the task's early stop such as
    "fitted"); stopped, diverged and failed ones are reported separately."""
    return frame[frame["status"].isin(FINISHED_STATUSES)]


def mean_sd(frame: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Mean and sample sd (ddof=1) of each metric per group, plus ``n`` rows per group.

    Columns: ``by`` in order, then ``<metric>_mean`` and ``<metric>_sd`` per metric, then
    ``n``. A group of one has NaN sd: one seed says nothing about spread, and 0 would claim
    it does. Groups are sorted by ``by``; a NaN key (an option a loss does not have) is kept
    as its own group. ``n`` counts rows, so filter with ``completed`` first if diverged
    trials must not count.
    """
    by, metrics = list(by), list(metrics)
    missing = [c for c in by + metrics if c not in frame.columns]
    if missing:
        raise KeyError(f"columns not in the frame: {', '.join(missing)}")
    if by:
        grouped = frame.groupby(by, sort=True, dropna=False)
        means, sds, sizes = grouped[metrics].mean(), grouped[metrics].std(ddof=1), grouped.size()
    else:
        means = frame[metrics].mean().to_frame().T
        sds = frame[metrics].std(ddof=1).to_frame().T
        sizes = pd.Series([len(frame)], index=means.index)
    out = pd.DataFrame(index=means.index)
    for metric in metrics:
        out[f"{metric}_mean"] = means[metric]
        out[f"{metric}_sd"] = sds[metric]
    out["n"] = sizes.astype(int)
    return out.reset_index(drop=not by)


def format_mean_sd(mean: float | None, sd: float | None, digits: int = 2, scale: float = 1.0,
                   ceiling: float | None = None) -> str:
    """``"91.23 ± 0.12"``; ``"91.23"`` when sd is NaN (one seed); ``"—"`` when mean is NaN.

    ``ceiling`` (100 for a percentage that tops out there): a mean below it keeps as many
    decimals as tell it apart, so a training accuracy of 99.998% reads "99.998", never
    "100.00", which would claim a fit that did not happen."""
    if _missing(mean):
        return "—"
    value = float(mean) * scale
    if ceiling is not None:
        digits = decimals_apart([value], [ceiling], digits)
    text = _fixed(value, digits)
    if _missing(sd):
        return text
    return f"{text} ± {_fixed(float(sd) * scale, digits)}"


def mean_sd_columns(
    summary: pd.DataFrame,
    metrics: Mapping[str, str],
    digits: int = 2,
    scale: float = 1.0,
    ceiling: float | None = None,
) -> pd.DataFrame:
    """Turn ``mean_sd`` output into display columns: each ``metric -> label`` pair replaces
    ``<metric>_mean``/``<metric>_sd`` with one ``"mean ± sd"`` string column named ``label``,
    placed where the pair was; other columns (group keys, ``n``) are kept as they are.
    ``ceiling``: as in ``format_mean_sd`` (no mean below it prints as it)."""
    out = pd.DataFrame(index=summary.index)
    consumed = {f"{m}_{part}" for m in metrics for part in ("mean", "sd")}
    for column in summary.columns:
        metric = column.removesuffix("_mean")
        if column.endswith("_mean") and metric in metrics:
            out[metrics[metric]] = [
                format_mean_sd(m, s, digits, scale, ceiling)
                for m, s in zip(summary[column], summary[f"{metric}_sd"], strict=True)
            ]
        elif column not in consumed:
            out[column] = summary[column]
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or bool(pd.isna(value))


def _fixed(value: float, digits: int) -> str:
    return fixed(value, digits)  # a rounded zero is just zero, never "-0.00"
