"""``harness reproduce``: re-train a sample of a study's committed records from the configs
they carry and say, per record, whether the numbers came back (``harness.agreement``
names the classes), and what differs between the machine that made them and this one.

Nothing is written to results/ or the MLflow store: a trial runs in this process through
the same entry point a Tune trial runs (``harness.trials.trial_kind(...).run_function()``,
``harness.train.train`` for training), with as many torch threads as the stage gave a Ray
trial, and its record goes to a temporary folder (or ``--out``).

A record is rebuilt from its own ``config`` as the runner builds a trial's
(``config_class().from_dict``); the rebuilt config must give the record's ``config_hash``
and ``seed``, and the defaults it resolves must be the record's ``resolved_config``, or
re-training it would run another trial: that is an error naming the record
(``RecordDoesNotRebuild``), found before any training.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.agreement import (
    AGREEING,
    CLASSES,
    DIFFERS,
    MetricComparison,
    compare_finals,
    deciding,
    worst,
)
from harness.errors import ConfigError, DataError, HarnessError
from harness.records import FINISHED_STATUSES, read_record
from harness.reproduce_facts import (
    current_facts,
    not_repeatable,
    recorded_facts,
    shown,
    then_and_now_lines,
)

Printer = Callable[[str], None]

DEFAULT_SAMPLE = 3
# Ties in recorded train seconds (repeats of one config often tie) are broken by a shuffle
# with this seed, so the same command chooses the same records everywhere.
SAMPLE_SEED = 0


class ReproductionDiffers(HarnessError):
    """Some re-trained records' numbers are not the committed ones."""

    exit_code = 10


class RecordDoesNotRebuild(HarnessError):
    """A committed record's config no longer builds, or builds another trial."""

    exit_code = 11


@dataclass(frozen=True)
class ReproduceOptions:
    study: str
    profile: str
    sample: int | None = None  # None: DEFAULT_SAMPLE, or every match of --hash / --budget
    config_hash: str | None = None
    stage: str | None = None
    budget_minutes: float | None = None
    dry_run: bool = False
    results_dir: str | Path | None = None
    data_root: str | Path | None = None
    out: str | Path | None = None  # keep the re-trained records here
    device: str | None = None  # re-train on this device (a runtime key: hash and seed stay)


@dataclass
class Candidate:
    """A committed record, rebuilt into the config and trial kind that re-train it."""

    path: Path
    record: dict[str, Any]
    config: Any
    kind: Any  # harness.trials.TrialKind
    threads: int
    primary_metric: str


@dataclass(frozen=True)
class Row:
    candidate: Candidate
    comparisons: list[MetricComparison]
    shown: MetricComparison
    verdict: str
    seconds: float


@dataclass
class ReproduceSummary:
    rows: list[Row] = field(default_factory=list)
    chosen: list[Candidate] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------------------- choosing


def committed_records(study: str, profile: str,
                      results_dir: str | Path | None) -> list[tuple[Path, dict[str, Any]]]:
    """(path, record) for every record committed in results/<study>/<profile>/records/."""
    from harness.layout import resolve_results_dir, results_records

    folder = results_records(resolve_results_dir(results_dir), study, profile)
    paths = sorted(folder.rglob("*.json")) if folder.is_dir() else []
    if not paths:
        raise DataError(
            f"no committed records of {study}/{profile} in {folder}: `harness reproduce` "
            f"re-trains the records a run left there (`harness run {study} --profile "
            f"{profile}` makes them)"
        )
    return [(path, read_record(path)) for path in paths]


def estimated_seconds(record: Mapping[str, Any]) -> float:
    """What re-training a record should take: the wall time it took (its evaluation and
    set-up included), else its train time."""
    for key in ("wall_seconds", "train_seconds"):
        value = record.get(key)
        if isinstance(value, int | float):
            return float(value)
    return 0.0


def _reproducible(record: Mapping[str, Any]) -> bool:
    # A failed trial has no result to compare; one without history never trained.
    return bool(record.get("history")) and record.get("status") != "failed"


def choose(records: Sequence[tuple[Path, dict[str, Any]]], options: ReproduceOptions
           ) -> list[tuple[Path, dict[str, Any]]]:
    """The records to re-train: those --stage and --hash leave, cheapest recorded train
    time first (ties in a seeded order), at most --sample of them, stopping before the
    estimate passes --budget-minutes."""
    where = f"{options.study}/{options.profile}"
    pool = [(p, r) for p, r in records if _reproducible(r)]
    if options.stage is not None:
        stages = sorted({str(r.get("stage")) for _, r in pool})
        pool = [(p, r) for p, r in pool if r.get("stage") == options.stage]
        if not pool:
            raise ConfigError(f"no committed record of {where} is from stage "
                              f"{options.stage!r}; its stages: {', '.join(stages)}")
    if options.config_hash is not None:
        pool = [(p, r) for p, r in pool
                if str(r.get("config_hash", "")).startswith(options.config_hash)]
        if not pool:
            raise ConfigError(f"no committed record of {where} has config hash "
                              f"{options.config_hash!r} (the hashes are in records.csv and in "
                              "`harness reproduce --dry-run`'s list)")
    random.Random(SAMPLE_SEED).shuffle(pool)
    pool.sort(key=lambda item: float(item[1].get("train_seconds") or 0.0))
    limit = options.sample
    if limit is None and options.config_hash is None and options.budget_minutes is None:
        limit = DEFAULT_SAMPLE
    if limit is not None and limit < 1:
        raise ConfigError(f"--sample must be at least 1, got {limit}")
    chosen: list[tuple[Path, dict[str, Any]]] = []
    spent = 0.0
    for path, record in pool[:limit]:
        cost = estimated_seconds(record)
        if options.budget_minutes is not None and spent + cost > options.budget_minutes * 60:
            break
        chosen.append((path, record))
        spent += cost
    if not chosen:
        cheapest = estimated_seconds(pool[0][1]) / 60
        raise ConfigError(f"--budget-minutes {options.budget_minutes:g} is less than the "
                          f"cheapest record's estimate ({cheapest:.1f} min); give more")
    return chosen


# ---------------------------------------------------------------------------- rebuilding


def _stage_of(study: Any, profile: str, name: Any) -> Any:
    stages = {stage.name: stage for stage in study.profile(profile).stages}
    return stages.get(name)


def _json_form(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _changed_defaults(record: Mapping[str, Any], config: Any) -> list[str]:
    """Options whose value in force now is not the one the record's trial ran with (a
    default changed since): the record's resolved_config against the rebuilt one's."""
    recorded = record.get("resolved_config")
    if not isinstance(recorded, Mapping) or not hasattr(config, "resolved_dict"):
        return []
    now = _json_form(config.resolved_dict())
    return [f"{key} was {recorded[key]!r}, now {now.get(key, '(no such option)')!r}"
            for key in sorted(recorded) if now.get(key, object()) != recorded[key]]


def rebuild(path: Path, record: dict[str, Any], study: Any, profile: str,
            device: str | None = None) -> Candidate:
    """The record's trial as the runner would build it now; a HarnessError (one line that
    names what is wrong) when it cannot be built or builds another trial."""
    from harness.pricing.stages import trial_threads
    from harness.trials import trial_kind

    stage = _stage_of(study, profile, record.get("stage"))
    config_values = record["config"]
    kind_name = stage.trial if stage is not None else (
        "check" if "claim" in config_values else "train")
    kind = trial_kind(kind_name)
    try:
        config = kind.config_class().from_dict(config_values)
    except HarnessError as error:
        raise HarnessError(f"its config no longer builds: {error}") from None
    problems = []
    if config.config_hash() != record.get("config_hash"):
        problems.append(f"config hash {config.config_hash()} (the record says "
                        f"{record.get('config_hash')})")
    if config.derived_seed() != record.get("seed"):
        problems.append(f"seed {config.derived_seed()} (the record says {record.get('seed')})")
    if problems:
        raise HarnessError("its config rebuilds with " + " and ".join(problems))
    changed = _changed_defaults(record, config)
    if changed:
        raise HarnessError("an option's default changed since, so it would train another "
                           "trial: " + "; ".join(changed))
    if device is not None and hasattr(config, "device"):
        config = config.replace(device=device)  # where it runs, not what it computes
    if kind.metric is not None:
        primary = kind.metric
    else:
        from harness.tasks import task_class

        primary = task_class(config.task).metric
    threads = trial_threads(stage) if stage is not None else 1
    return Candidate(path, record, config, kind, threads, primary)


def rebuild_all(chosen: Sequence[tuple[Path, dict[str, Any]]], study: Any, profile: str,
                results_root: Path, device: str | None = None) -> list[Candidate]:
    """Every chosen record rebuilt, before any training; one RecordDoesNotRebuild naming
    each record that cannot be."""
    candidates, failures = [], []
    for path, record in chosen:
        try:
            candidates.append(rebuild(path, record, study, profile, device))
        except HarnessError as error:
            failures.append(f"{_relative(path, results_root)} (stage {record.get('stage')}, "
                            f"hash {record.get('config_hash')}): {error}")
    if failures:
        raise RecordDoesNotRebuild(
            f"{len(failures)} committed record(s) cannot be re-trained as they were made:\n  "
            + "\n  ".join(failures)
            + "\nAn option was renamed or removed, or a config's meaning changed, since "
              "the record was made: re-run the study to make records of the code as it is, "
              "or check out the commit the record names (environment.git_commit) to "
              "reproduce it."
        )
    return candidates


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------- re-training


class _StopAtRecordedEpoch(Exception):  # noqa: N818 - an end, not an error
    """Raised from the report: the record's trial was stopped (ASHA) at this epoch."""


def retrain(candidate: Candidate, out: Path, datasets: dict[tuple[str, Any], Any],
            data_root: str | Path | None) -> dict[str, Any]:
    """Run the candidate's trial again and return its record as JSON holds it (written to
    ``out`` and read back). A trial the record says was stopped at epoch N (a rung of
    successive halving) stops at epoch N here too."""
    import torch

    from harness.records import write_record

    record, config = candidate.record, candidate.config
    status = record.get("status")
    target = int(record["history"][-1].get("epoch", 0))
    stop_early = status not in (*FINISHED_STATUSES, "diverged") and target < config.epochs
    kept: dict[str, Any] = {}

    def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        if metrics.get("epoch") == target and state is not None:
            kept["record"] = dict(state["record"], status=status)
            raise _StopAtRecordedEpoch

    extra = {}
    if candidate.kind.name == "train":
        key = (config.dataset, str(data_root))
        if key not in datasets:
            from harness.data import load_dataset

            datasets.clear()  # one decoded dataset at a time, as a Tune worker keeps
            datasets[key] = load_dataset(config.dataset, data_root)
        extra = {"dataset": datasets[key]}
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(candidate.threads)  # as Ray's OMP_NUM_THREADS gave the trial
    try:
        new = candidate.kind.run_function()(
            config, report if stop_early else None, data_root=data_root, **extra)
    except _StopAtRecordedEpoch:
        new = kept["record"]
    finally:
        torch.set_num_threads(saved_threads)
    for key in ("study", "profile", "stage", "trial_id", "label"):
        if key in record:
            new.setdefault(key, record[key])
    return read_record(write_record(new, out / str(record.get("stage") or "default")))


def _spreads(candidate: Candidate, records: Sequence[tuple[Path, dict[str, Any]]]
             ) -> dict[str, list[Any]]:
    """Each final metric's values over the record's repeats (same stage, same hash)."""
    record = candidate.record
    repeats = [r for _, r in records if r.get("stage") == record.get("stage")
               and r.get("config_hash") == record.get("config_hash") and _reproducible(r)]
    out: dict[str, list[Any]] = {}
    for other in repeats:
        for key, value in (other.get("final") or {}).items():
            out.setdefault(key, []).append(value)
    return out


def compare(candidate: Candidate, new: Mapping[str, Any], noisy: bool,
            spreads: Mapping[str, list[Any]], seconds: float) -> Row:
    then = {**(candidate.record.get("final") or {}), "status": candidate.record.get("status")}
    now = {**(new.get("final") or {}), "status": new.get("status")}
    comparisons = compare_finals(then, now, noisy=noisy, spreads=spreads)
    shown = deciding(comparisons, candidate.primary_metric)
    return Row(candidate, comparisons, shown, worst(c.verdict for c in comparisons), seconds)


# ---------------------------------------------------------------------------- output

HEADER = (f"{'config hash':<16}  {'stage':<20} {'rep':>3}  {'metric':<14} {'recorded':>22} "
          f"{'now':>22} {'secs':>5}  class")


def row_line(row: Row) -> str:
    record = row.candidate.record
    repeat = (record.get("config") or {}).get("repeat", 0)
    line = (f"{str(record.get('config_hash')):<16}  {str(record.get('stage')):<20} "
            f"{repeat:>3}  {row.shown.metric:<14} {shown(row.shown.then):>22} "
            f"{shown(row.shown.now):>22} {row.seconds:>5.0f}  {row.verdict}")
    others = [c for c in row.comparisons if c.verdict == DIFFERS and c is not row.shown]
    if row.verdict == DIFFERS and others:
        line += " (also " + ", ".join(
            f"{c.metric} {shown(c.then)} -> {shown(c.now)}" for c in others[:4]) + ")"
    return line


def _chosen_line(path: Path, record: Mapping[str, Any], root: Path) -> str:
    repeat = (record.get("config") or {}).get("repeat", 0)
    return (f"  {str(record.get('config_hash')):<16}  {str(record.get('stage')):<20} "
            f"{repeat:>3}  {str(record.get('status')):<10} "
            f"{estimated_seconds(record):>8.1f} s  {_relative(path, root)}")


# ---------------------------------------------------------------------------- the command


def reproduce(options: ReproduceOptions, echo: Printer = print) -> ReproduceSummary:
    """Choose, rebuild and (unless a dry run) re-train the records, echoing the then/now
    facts and one row per record; raises ReproductionDiffers when a row differs."""
    from harness.layout import resolve_results_dir
    from harness.study import get_study

    started = time.perf_counter()
    study = get_study(options.study)  # imports the study's module: its tasks and models
    study.profile(options.profile)
    if options.budget_minutes is not None and options.budget_minutes <= 0:
        raise ConfigError(f"--budget-minutes must be > 0, got {options.budget_minutes:g}")
    root = resolve_results_dir(options.results_dir) / options.study / options.profile
    records = committed_records(options.study, options.profile, options.results_dir)
    chosen = choose(records, options)
    candidates = rebuild_all(chosen, study, options.profile, root, options.device)
    summary = ReproduceSummary(chosen=candidates)
    estimate = sum(estimated_seconds(r) for _, r in chosen)
    echo(f"{len(chosen)} of {len(records)} committed records of {options.study}/"
         f"{options.profile} (cheapest recorded train time first), estimated "
         f"{estimate / 60:.1f} min from their recorded times:")
    for path, record in chosen:
        echo(_chosen_line(path, record, root))
    pairs = [(recorded_facts(c.record), current_facts(c.config)) for c in candidates]
    for line in then_and_now_lines(pairs):
        echo(line)
    if options.dry_run:
        summary.seconds = time.perf_counter() - started
        return summary

    with tempfile.TemporaryDirectory(prefix="harness-reproduce-") as scratch:
        out = Path(options.out).expanduser() if options.out else Path(scratch) / "records"
        datasets: dict[tuple[str, Any], Any] = {}
        echo(HEADER)
        for candidate, (then, now) in zip(candidates, pairs, strict=True):
            begun = time.perf_counter()
            new = retrain(candidate, out, datasets, options.data_root)
            row = compare(candidate, new, not_repeatable(then, now),
                          _spreads(candidate, records), time.perf_counter() - begun)
            summary.rows.append(row)
            echo(row_line(row))
    summary.seconds = time.perf_counter() - started
    counts = {c: sum(r.verdict == c for r in summary.rows) for c in CLASSES}
    echo(f"{len(summary.rows)} records re-trained in {summary.seconds:.0f} s: "
         + ", ".join(f"{n} {c}" for c, n in counts.items() if n))
    differing = [r for r in summary.rows if r.verdict not in AGREEING]
    if differing:
        raise ReproductionDiffers(
            f"{len(differing)} of {len(summary.rows)} re-trained records of {options.study}/"
            f"{options.profile} differ from the committed ones (the rows marked differs "
            "above); the then -> now lines above say what changed between the machines")
    return summary
