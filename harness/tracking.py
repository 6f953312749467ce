"""MLflow tracking from the driver: workers never talk to MLflow.

The store is ``sqlite:///<runs-dir>/mlflow.db`` (MLflow 3 deprecates the file store) unless
``MLFLOW_TRACKING_URI`` says otherwise; a SQLite store keeps artifacts in
``mlflow-artifacts/`` beside its database file. One experiment per study; per run of a
profile one parent run (tables and figures of the results folder as artifacts) with one
nested run per trial:
params = the flat config, metrics per epoch (step = epoch), tags that identify the trial
and its data, and artifacts (the record, and its task's data files: a classifier's
per-class accuracy and confusion matrix as CSV; figures are drawn by the presentation layer).

Trials are logged from their records (the per-epoch history is in the record), each as it
finishes (a Tune callback in the driver), then reconciled once its stage has finished: a
trial missing from MLflow, logged with another status, or left unfinished (a driver killed
while logging it: its run is still RUNNING) is (re)logged then. Runs are keyed by the
``harness.trial_key`` tag, so a resumed stage never duplicates a trial. A trial run's
``status`` tag is written last, so a run that has it was logged whole.

Experiments are tagged as model-training experiments (``mlflow.experimentKind``), which
earlier MLflow 3 UIs read to open them on the runs table rather than the GenAI (traces)
view. MLflow 3.17's UI ignores that tag: a sidebar switch (GenAI / Model
training, default GenAI, remembered by the browser) decides, and the URL parameter
``workflowType=machine_learning`` sets it; ``harness.ui`` builds such URLs for `harness ui`.
Each experiment also names the metric its stages optimize (``harness.primary_metric`` and
``harness.primary_metric_mode``), so those URLs list the trials best first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from harness.errors import DataError, HarnessError
from harness.files import write_json_atomic
from harness.outcome import trial_outcome

DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlflow-artifacts"
PARENT_FILE = "mlflow-parent.json"
TRIAL_KEY_TAG = "harness.trial_key"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the UI's "model training" experiment type
PRIMARY_METRIC_TAG = "harness.primary_metric"  # the stages' metric: harness.ui sorts by it
PRIMARY_MODE_TAG = "harness.primary_metric_mode"  # "max" or "min"
STAGE_METRIC_TAG = "harness.stage_metric."  # + "<profile>/<stage>": "<metric> <mode>"
MAX_PARAMS_PER_BATCH = 100  # MLflow's log_batch limits
MAX_METRICS_PER_BATCH = 1000
# Trial statuses as MLflow run statuses: a stopped or diverged trial still finished cleanly.
RUN_STATUS = {
    "completed": "FINISHED",
    "stopped": "FINISHED",
    "diverged": "FINISHED",
    "fitted": "FINISHED",
    "failed": "FAILED",
}


def tracking_uri(runs_dir: str | Path = "runs") -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite store in the runs folder (absolute path)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path(runs_dir) / DB_FILE).resolve()}"


class StoreCorrupt(DataError):
    """The MLflow store's database cannot be read: truncated, overwritten, not SQLite."""


# What SQLite says of a file that is not a whole database.
_CORRUPT_MARKERS = ("malformed", "not a database", "file is encrypted")


def store_file(runs_dir: str | Path) -> Path | None:
    """The SQLite file of the store ``tracking_uri`` names, or None for another store."""
    uri = tracking_uri(runs_dir)
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def store_corrupt(path: Path, detail: str) -> StoreCorrupt:
    return StoreCorrupt(
        f"the MLflow store {path} is corrupt ({detail.strip().splitlines()[0][:120]}); move it "
        f"aside (mv {path} {path}.broken) and run the command again: a new store is made, "
        "and `harness run ... --resume` logs the trials it keeps into it (records stay in "
        "runs/records/ and results/); nothing was changed"
    )


def check_store(runs_dir: str | Path) -> None:
    """Refuse a store whose SQLite file is damaged, reading it only (a missing store is
    fine: the run makes one). A store busy with another writer is left to MLflow."""
    import sqlite3

    path = store_file(runs_dir)
    if path is None or not path.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro",
                                                uri=True)) as database:
            verdict = database.execute("PRAGMA quick_check").fetchone()
    except sqlite3.OperationalError as error:  # locked, busy: not a verdict on the file
        if not any(marker in str(error) for marker in _CORRUPT_MARKERS):
            return
        raise store_corrupt(path, str(error)) from None
    except sqlite3.DatabaseError as error:
        raise store_corrupt(path, str(error)) from None
    if verdict is None or verdict[0] != "ok":
        raise store_corrupt(path, str(verdict[0] if verdict else "no answer to quick_check"))


def quiet_mlflow() -> None:
    """MLflow and its migrations log every table they create: keep warnings only."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", message=".*noload.*")  # SQLAlchemy, inside MLflow's store
    import mlflow  # noqa: F401 - configures its loggers, which we then turn down

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _param_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def trial_key(record: Mapping[str, Any]) -> str:
    return f"{record.get('profile')}/{record.get('stage')}/{record.get('trial_id')}"


def trial_tags(record: Mapping[str, Any]) -> dict[str, str]:
    config = record.get("config", {})
    data = record.get("data") or {}
    environment = record.get("environment") or {}
    tags = {
        "study": record.get("study"),
        "profile": record.get("profile"),
        "stage": record.get("stage"),
        "trial_id": record.get("trial_id"),
        "config_hash": record.get("config_hash"),
        "seed": record.get("seed"),
        "repeat": config.get("repeat"),
        "dataset": data.get("dataset"),
        "data_source": data.get("source"),
        "data_sha256": data.get("sha256"),
        "git_commit": environment.get("git_commit"),
        "device": environment.get("device_name") or environment.get("device"),
        "restored_from_epoch": record.get("restored_from_epoch"),
        "scheduler": record.get("scheduler"),  # fifo, synchronous-halving or asha
        "label": record.get("label"),
        "outcome": trial_outcome(record),  # the runs table's status column (harness.ui_views)
        TRIAL_KEY_TAG: trial_key(record),
    }
    return {k: str(v) for k, v in tags.items() if v is not None}


def run_name(record: Mapping[str, Any]) -> str:
    """What the runs list shows: the stage, what the trial is (its variant label, or the
    model and loss), its seed index and Tune's trial id."""
    config = record.get("config") or {}
    what = record.get("label") or "/".join(
        str(config[k]) for k in ("model", "loss") if config.get(k) is not None
    ) or f"claim {config.get('claim')}"
    return f"{record.get('stage')} · {what} · r{config.get('repeat', 0)} · {record.get('trial_id')}"


def epoch_metrics(record: Mapping[str, Any]) -> list[tuple[str, float, int]]:
    """(name, value, step) for every finite number in the history, step = epoch."""
    rows: list[tuple[str, float, int]] = []
    for entry in record.get("history") or []:
        step = int(entry.get("epoch", 0))
        for name, value in entry.items():
            if name != "epoch" and _finite(value):
                rows.append((name, float(value), step))
    for name in ("train_seconds", "wall_seconds", "num_params", "macs_per_image"):
        if _finite(record.get(name)):
            rows.append((name, float(record[name]), 0))
    return rows


def write_trial_artifacts(record: Mapping[str, Any], folder: Path) -> list[Path]:
    """The files a trial's run keeps: its record, and what its task adds (a classifier's
    per-class accuracy and confusion matrix)."""
    from harness.records import write_record
    from harness.task_kinds import record_task

    paths = [write_record(dict(record), folder)]
    task = record_task(record)
    if task is not None:
        paths += task.write_artifacts(record, folder)
    return paths


class TrialRun(NamedTuple):
    """A trial's run found under the parent run."""

    run_id: str
    status: str | None  # the record's status tag; None while the run is still RUNNING
    running: bool


class Tracker:
    """Logs one study's runs to MLflow through a client (no global active-run state)."""

    def __init__(self, client: Any, experiment_id: str, uri: str, study: str) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.uri = uri
        self.study = study
        self.parent_run_id: str | None = None
        self._parent_file: Path | None = None

    @classmethod
    def open(cls, runs_dir: str | Path, study: str) -> Tracker:
        quiet_mlflow()
        from mlflow import MlflowClient

        uri = tracking_uri(runs_dir)
        try:
            client = MlflowClient(tracking_uri=uri)
            experiment = client.get_experiment_by_name(study)
            if experiment is None:
                # A SQLite store keeps artifacts beside its database file, not in the cwd.
                location = None
                if uri.startswith("sqlite:///"):
                    database = Path(uri.removeprefix("sqlite:///")).resolve()
                    location = (database.parent / ARTIFACTS_DIR / study).as_uri()
                experiment_id = client.create_experiment(
                    study, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
                )
            else:
                experiment_id = experiment.experiment_id
                if experiment.lifecycle_stage == "deleted":
                    client.restore_experiment(experiment_id)
                if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        except Exception as error:  # MLflow raises many types; one message is enough here
            if any(marker in str(error) for marker in _CORRUPT_MARKERS) and store_file(runs_dir):
                raise store_corrupt(store_file(runs_dir), str(error).split("\n")[0]) from None
            raise HarnessError(f"cannot open the MLflow store {uri}: {error}") from None
        return cls(client, experiment_id, uri, study)

    def start_parent(self, profile: str, state_dir: Path, plan: Mapping[str, Any]) -> str:
        """The run that holds this study/profile's trials; a resumed run reuses it."""
        from harness.environment import git_commit

        self._parent_file = state_dir / PARENT_FILE
        if self._parent_file.exists():
            run_id = json.loads(self._parent_file.read_text()).get("run_id")
            try:
                run = self.client.get_run(run_id)
                if run.info.experiment_id == self.experiment_id:
                    self.client.update_run(run_id, status="RUNNING")
                    self.parent_run_id = run_id
                    return run_id
            except Exception:  # noqa: BLE001 - a parent from another store: start a new one
                pass
        tags = {
            "study": self.study,
            "profile": profile,
            "harness.kind": "study",
            "git_commit": git_commit() or "unknown",
        }
        run = self.client.create_run(
            self.experiment_id, tags=tags, run_name=f"{self.study}/{profile}"
        )
        self.parent_run_id = run.info.run_id
        from mlflow.entities import Param

        params = [
            Param("profile", profile),
            Param("overrides", json.dumps(plan.get("overrides", {}))),
            Param("stages", ",".join(plan.get("stages", []))),
        ]
        self.client.log_batch(self.parent_run_id, params=params)
        write_json_atomic(self._parent_file, {"run_id": self.parent_run_id, "uri": self.uri})
        return self.parent_run_id

    def _existing_trial_runs(self) -> dict[str, TrialRun]:
        """trial key -> its run under the parent run; a run that never finished logging
        (still RUNNING) counts as having no status."""
        found: dict[str, TrialRun] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{self.parent_run_id}'",
                max_results=1000,
                page_token=token,
            )
            for run in page:
                key = run.data.tags.get(TRIAL_KEY_TAG)
                if key:
                    running = run.info.status == "RUNNING"
                    status = None if running else run.data.tags.get("status")
                    found[key] = TrialRun(run.info.run_id, status, running)
            token = page.token
            if not token:
                return found

    def _drop(self, run: TrialRun) -> None:
        """Delete a trial run being replaced. One a killed driver left RUNNING is marked
        KILLED first: MLflow deletes runs in any state, and a deleted run still RUNNING
        reads as live to anything that lists deleted runs (the UI's trash, a restore)."""
        if run.running:
            self.client.set_terminated(run.run_id, "KILLED")
        self.client.delete_run(run.run_id)

    def log_trials(self, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """One nested run per trial record, replacing any earlier run of the same trial."""
        existing = self._existing_trial_runs() if self.parent_run_id else {}
        run_ids = []
        for record in records:
            old = existing.get(trial_key(record))
            if old:
                self._drop(old)
            run_ids.append(self.log_trial(record))
        return run_ids

    def sync_stage(self, records: Sequence[Mapping[str, Any]], profile: str, stage: str) -> int:
        """Make the stage's trial runs match its final records: log what live logging
        missed or logged with another status, and delete runs of trials that are not in
        the records (an attempt the stage was restarted from). Returns runs written."""
        existing = self._existing_trial_runs() if self.parent_run_id else {}
        wanted = {trial_key(r): r for r in records}
        prefix = f"{profile}/{stage}/"
        for key, run in existing.items():
            if key.startswith(prefix) and key not in wanted:
                self._drop(run)
        written = 0
        for key, record in wanted.items():
            old = existing.get(key)
            if old and old.status == str(record.get("status")):
                continue
            if old:
                self._drop(old)
            self.log_trial(record)
            written += 1
        return written

    def log_trial(self, record: Mapping[str, Any]) -> str:
        from mlflow.entities import Metric, Param, RunTag

        tags = trial_tags(record)
        if self.parent_run_id:
            tags["mlflow.parentRunId"] = self.parent_run_id
        run_id = self.client.create_run(
            self.experiment_id, tags=tags, run_name=run_name(record)
        ).info.run_id
        params = [
            Param(k, _param_value(v)) for k, v in sorted((record.get("config") or {}).items())
        ]
        now = int(time.time() * 1000)
        metrics = [Metric(n, v, now, s) for n, v, s in epoch_metrics(record)]
        for i in range(0, len(params), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=params[i : i + MAX_PARAMS_PER_BATCH])
        for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=metrics[i : i + MAX_METRICS_PER_BATCH])
        with tempfile.TemporaryDirectory(prefix="harness-mlflow-") as folder:
            for path in write_trial_artifacts(record, Path(folder)):
                self.client.log_artifact(run_id, str(path))
        # Last: a run with a status tag and a terminal state was logged whole.
        self.client.log_batch(run_id, tags=[RunTag("status", str(record.get("status")))])
        self.client.set_terminated(run_id, RUN_STATUS.get(str(record.get("status")), "FINISHED"))
        return run_id

    def set_primary_metric(self, metric: str, mode: str) -> None:
        """The metric a stage optimizes, on the experiment: `harness ui` links its trials
        sorted by it. Best effort: a failure here never stops a study."""
        try:
            for key, value in ((PRIMARY_METRIC_TAG, metric), (PRIMARY_MODE_TAG, mode)):
                self.client.set_experiment_tag(self.experiment_id, key, value)
        except Exception as error:  # noqa: BLE001 - never stop a study for a UI hint
            print(f"harness: warning: could not tag the MLflow experiment: {error}")

    def set_stage_metric(self, profile: str, stage: str, metric: str, mode: str) -> None:
        """The metric a stage chose by, on the experiment, per profile and stage: `harness
        ui` saves one view per stage sorted by it (harness.ui_views). Also the experiment's
        primary metric. Best effort, like set_primary_metric."""
        self.set_primary_metric(metric, mode)
        try:
            self.client.set_experiment_tag(
                self.experiment_id, f"{STAGE_METRIC_TAG}{profile}/{stage}", f"{metric} {mode}"
            )
        except Exception as error:  # noqa: BLE001 - never stop a study for a UI hint
            print(f"harness: warning: could not tag the MLflow experiment: {error}")

    def log_results(self, results_folder: Path) -> None:
        """The results folder's tables and figures as the parent run's artifacts."""
        if not self.parent_run_id:
            return
        for path in sorted(results_folder.iterdir()):
            if path.is_file():
                self.client.log_artifact(self.parent_run_id, str(path), "results")

    def finish(self, status: str = "FINISHED") -> None:
        if not self.parent_run_id:
            return
        try:
            self.client.set_terminated(self.parent_run_id, status)
        except Exception as error:  # noqa: BLE001 - never hide the run's own error behind this
            print(f"harness: warning: could not close MLflow run {self.parent_run_id}: {error}")
