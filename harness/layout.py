"""Where a run's files live, in one place. ``runs/`` is scratch (Ray storage, records as
trials finish, the MLflow store); ``results/`` is committed::

    results/<study>/<profile>/                 records.csv, tables, figures, run.json
    results/<study>/<profile>/records/<stage>/ one JSON record per trial
    runs/records/<study>/<profile>/<stage>/    the same, written as each trial finishes

Both folders are resolved once: the option, else ``HARNESS_RUNS`` / ``HARNESS_RESULTS``,
else the project root when the working directory is inside the harness checkout, else
the working directory. A run started from a sub-folder therefore uses the same store.
"""

from __future__ import annotations

import os
from pathlib import Path

RECORDS_DIR = "records"
RUN_FILE = "run.json"


def results_folder(results_dir: str | Path, study: str, profile: str) -> Path:
    """A study's results at one profile: what a run swaps in and the report reads."""
    return Path(results_dir) / study / profile


def results_records(results_dir: str | Path, study: str, profile: str) -> Path:
    """The committed records of a study's profile (one folder per stage below it)."""
    return results_folder(results_dir, study, profile) / RECORDS_DIR


def run_file(results_dir: str | Path, study: str, profile: str) -> Path:
    """The run.json beside a study's results: how the run was made."""
    return results_folder(results_dir, study, profile) / RUN_FILE


def runs_records(runs_dir: str | Path, study: str, profile: str) -> Path:
    """Where a run writes each trial's record as it finishes (scratch)."""
    return Path(runs_dir) / RECORDS_DIR / study / profile


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
