"""One MLflow saved view per stage of a study: its runs read like the study's tables.

A study's experiment holds the trials of every stage and profile, and stages are not
comparable (4-epoch searches beside 10-epoch reruns, IF-10 beside IF-100 runs), nor are
they chosen on one metric (a searching stage chooses on validation, a plain grid reports
test). So `harness ui` saves, per (profile, stage) the store holds, a view that:

- shows only that stage's runs (``searchFilter`` on the run tags ``profile`` and
  ``stage``, which the parent run does not carry: it is left out, not a row of dashes);
- sorts them best first on the metric the stage chose by (the runner records it on the
  experiment as ``harness.stage_metric.<profile>/<stage>``; older stores: the task's
  validation metric where the runs have it, else the experiment's metric);
- shows, in reading order: that metric, the test metric beside it, the trial's outcome
  (the ``outcome`` tag: diverged, stopped by halving, failed, at chance), then the
  parameters that vary within the stage, most informative first (model, loss, lr, ...);
  parameters constant within the stage are hidden.

It also gives each trial run a short name that says what varies within its stage
("convnet · lr=0.1 · r1"), replacing the long name the run was logged with.

How MLflow 3.18's UI reads a saved view (its bundle, ``mlflow/server/js/build``): the
experiment tag ``mlflow.sharedViewState.<key>`` holds ``{"name", "createdAt", "updatedAt",
"state"}`` with ``state`` a JSON string; from it the runs page takes the search facets
(``searchFilter``, ``orderByKey``, ``orderByAsc``, ...) and the UI state (``selectedColumns``,
``columnOrder``, ``columnWidths``, ``groupBy``, ...; not ``runsExpanded``). Columns are
ag-grid columns with ids like ``params.`lr```; ``columnOrder`` is applied as their order
and ``columnWidths`` to the columns it lists. The table nests child runs under their
parent only when it is sorted by creation time and not filtered, so a stage view is flat.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.tracking import (
    PRIMARY_METRIC_TAG,
    PRIMARY_MODE_TAG,
    STAGE_METRIC_TAG,
    TRIAL_KEY_TAG,
)

VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # MLflow's UI's saved-view tags
VIEW_KEY_PREFIX = "harness-"  # the views harness owns: rewritten, or deleted when stale
MAX_VIEW_CHARS = 20_000  # the UI refuses a larger saved view; MLflow caps tag values there
OUTCOME_TAG = "outcome"  # harness.outcome.trial_outcome, on trial runs
STATUS_TAG = "status"  # older stores have only the record's status
RUN_NAME_COLUMN = "attributes.`Run Name`"
RUN_NAME_WIDTH = 300  # px: room for a short run name
OUTCOME_WIDTH = 170  # px: "stopped by halving"
# Parameters in the order a reader looks for them; then the model's and the loss's
# options, then the rest alphabetically; the seed index last.
LEADING_PARAMS = ("model", "loss", "imbalance_factor", "imbalance", "label_noise",
                  "input_corruption", "lr", "epochs", "batch_size", "optimizer",
                  "weight_decay", "schedule", "momentum")  # fmt: skip
LAST_PARAMS = ("repeat",)
NAMED_BY_VALUE = ("model", "loss", "optimizer", "schedule", "dataset", "task", "imbalance")
NAME_PARAMS = 3  # at most this many parameters in a run name
SEARCH_NAME_PARAMS = 2  # more vary (a search): the trial number, then this many


@dataclass(frozen=True)
class TrialRun:
    """What a view and a run name are made from: one trial run of the store."""

    run_id: str
    name: str
    params: Mapping[str, str]
    tags: Mapping[str, str]
    metrics: frozenset[str]
    start_time: int = 0
    running: bool = False  # still being logged (or left so by a killed driver)


@dataclass
class StageView:
    """A stage's saved view: which runs, sorted on what, with which columns."""

    profile: str
    stage: str
    metric: str
    mode: str  # "max" or "min"
    test_metric: str | None  # shown beside the metric the stage chose by
    params: list[str]  # varying within the stage, in reading order
    status_column: str | None  # the outcome tag (older stores: the status tag)
    runs: list[TrialRun] = field(default_factory=list, repr=False)

    @property
    def key(self) -> str:
        return f"{VIEW_KEY_PREFIX}{self.profile}-{self.stage}"

    @property
    def title(self) -> str:
        return f"{self.stage} by {self.metric} ({self.profile}, harness)"

    @property
    def search_filter(self) -> str:
        return f"tags.profile = {_quoted(self.profile)} AND tags.stage = {_quoted(self.stage)}"

    def columns(self) -> list[str]:
        """The table's columns after the run name, in reading order."""
        metrics = [self.metric] + ([self.test_metric] if self.test_metric else [])
        status = [f"tags.`{self.status_column}`"] if self.status_column else []
        return ([f"metrics.`{m}`" for m in metrics] + status
                + [f"params.`{p}`" for p in self.params])  # fmt: skip

    def state(self) -> dict[str, Any]:
        """The runs page's state as MLflow's UI saves it (search facets and UI state)."""
        columns = self.columns()
        status = [c for c in columns if c == f"tags.`{self.status_column}`"]
        return {
            "searchFilter": self.search_filter,
            "orderByKey": f"metrics.`{self.metric}`",
            "orderByAsc": self.mode == "min",
            "selectedColumns": columns,
            "columnOrder": [RUN_NAME_COLUMN, *columns],
            "columnWidths": {RUN_NAME_COLUMN: RUN_NAME_WIDTH,
                             **({status[0]: OUTCOME_WIDTH} if status else {})},
        }


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def trial_runs(client: Any, experiment_id: str) -> list[TrialRun]:
    """The experiment's trial runs (parent runs carry no trial key), oldest first."""
    found: list[TrialRun] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`{TRIAL_KEY_TAG}` != ''",
                                  max_results=1000, page_token=token)  # fmt: skip
        found += [TrialRun(run.info.run_id, run.info.run_name or "", dict(run.data.params),
                           dict(run.data.tags), frozenset(run.data.metrics),
                           run.info.start_time or 0, run.info.status == "RUNNING")
                  for run in page]  # fmt: skip
        token = page.token
        if not token:
            return sorted(found, key=lambda run: run.start_time)


def by_stage(runs: Iterable[TrialRun]) -> dict[tuple[str, str], list[TrialRun]]:
    """(profile, stage) -> its runs, in the order the stages first ran."""
    groups: dict[tuple[str, str], list[TrialRun]] = {}
    for run in sorted(runs, key=lambda run: run.start_time):
        key = (run.tags.get("profile", ""), run.tags.get("stage", ""))
        groups.setdefault(key, []).append(run)
    return groups


def varying_params(runs: Iterable[Mapping[str, str]]) -> list[str]:
    """The params, given as each run's params, whose value differs between runs (a run
    without the param counts as a value of its own), sorted."""
    runs = list(runs)
    names = sorted({name for params in runs for name in params})
    return [name for name in names if len({params.get(name) for params in runs}) > 1]


def reading_order(params: Iterable[str]) -> list[str]:
    """Parameters most informative first: LEADING_PARAMS, then the model's and the loss's
    options, then the rest alphabetically, LAST_PARAMS at the end."""

    def rank(name: str) -> tuple[int, int, str]:
        if name in LEADING_PARAMS:
            return (0, LEADING_PARAMS.index(name), name)
        if name in LAST_PARAMS:
            return (4, LAST_PARAMS.index(name), name)
        if name.startswith("model."):
            return (1, 0, name)
        if name.startswith("loss."):
            return (2, 0, name)
        return (3, 0, name)

    return sorted(params, key=rank)


def _task(runs: Sequence[TrialRun]) -> Any:
    """The task class of the stage's trials, or None (another trial kind, or mixed)."""
    names = {run.params.get("task") for run in runs}
    if len(names) != 1 or None in names:
        return None
    from harness.tasks import task_class

    try:
        return task_class(names.pop())
    except Exception:  # noqa: BLE001 - a task this checkout does not know
        return None


def chosen_metric(tags: Mapping[str, str], profile: str, stage: str,
                  runs: Sequence[TrialRun]) -> tuple[str, str] | None:  # fmt: skip
    """(metric, mode) the stage chose by: as the runner recorded it, else (a store from
    before it did) the task's validation metric where the runs have it, else the
    experiment's metric, else the task's; None when nothing names one."""
    recorded = tags.get(f"{STAGE_METRIC_TAG}{profile}/{stage}", "").split()
    if len(recorded) == 2:
        return recorded[0], recorded[1]
    logged = frozenset().union(*(run.metrics for run in runs))
    task = _task(runs)
    if task is not None and task.selection_metric in logged:
        return task.selection_metric, task.mode
    if tags.get(PRIMARY_METRIC_TAG):
        return tags[PRIMARY_METRIC_TAG], tags.get(PRIMARY_MODE_TAG, "max")
    if task is not None and task.metric:
        return task.metric, task.mode
    return None


def test_metric(metric: str, runs: Sequence[TrialRun]) -> str | None:
    """The metric reported on the test split beside a validation metric: the task's
    report metric (val_acc -> test_acc, val_psnr -> test_psnr); None when the stage chose
    on the test metric itself or the runs log no such metric."""
    if not metric.startswith("val_"):
        return None
    task = _task(runs)
    candidate = task.metric if task is not None and task.metric else "test_" + metric[4:]
    logged = frozenset().union(*(run.metrics for run in runs))
    return candidate if candidate in logged and candidate != metric else None


def stage_view(tags: Mapping[str, str], profile: str, stage: str,
               runs: Sequence[TrialRun]) -> StageView | None:  # fmt: skip
    """The stage's view, or None when no metric is known for it."""
    chosen = chosen_metric(tags, profile, stage, runs)
    if chosen is None:
        return None
    metric, mode = chosen
    if any(OUTCOME_TAG in run.tags for run in runs):
        status: str | None = OUTCOME_TAG
    else:
        status = STATUS_TAG if any(STATUS_TAG in run.tags for run in runs) else None
    params = reading_order(varying_params(run.params for run in runs))
    return StageView(profile, stage, metric, mode, test_metric(metric, runs), params,
                     status, list(runs))  # fmt: skip


def _value(name: str, value: str) -> str:
    """A param's value in a run name: numbers to 3 significant digits."""
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number) or number.is_integer() and "." not in value:
        return value
    return f"{number:.3g}"


def _param_part(name: str, value: str | None) -> str:
    shown = _value(name, value) if value is not None else "-"
    if name in NAMED_BY_VALUE:
        return shown
    return f"{name.rsplit('.', 1)[-1]}={shown}"  # model.base_width -> base_width


def _trial_number(run: TrialRun) -> str:
    """#12 for Tune's trial id fd4cb_00012; the run's own id's start otherwise."""
    trial_id = run.tags.get("trial_id", "")
    suffix = trial_id.rsplit("_", 1)[-1]
    return f"#{int(suffix)}" if suffix.isdigit() else f"#{run.run_id[:6]}"


def short_run_names(runs: Sequence[TrialRun]) -> dict[str, str]:
    """run id -> a short name saying what differs between the stage's runs: the variant's
    label where the stage has several, the parameters that vary besides it (up to
    NAME_PARAMS, most informative first; with more, a search: its trial number first,
    then SEARCH_NAME_PARAMS of them), and the seed index where it varies. Unique within
    the stage: a clash gets the trial number."""
    labels = {run.tags.get("label") for run in runs}
    by_label: dict[str | None, list[TrialRun]] = {}
    for run in runs:
        by_label.setdefault(run.tags.get("label"), []).append(run)
    # Params the label does not explain: those that vary among runs of one label.
    unexplained = set().union(*(varying_params(r.params for r in group)
                                for group in by_label.values()))  # fmt: skip
    shown = [name for name in reading_order(unexplained) if name not in LAST_PARAMS]
    repeats = "repeat" in unexplained
    names: dict[str, str] = {}
    for run in runs:
        search = len(shown) > NAME_PARAMS
        parts = [_trial_number(run)] if search else []
        if len(labels) > 1 and run.tags.get("label"):
            parts.append(run.tags["label"])
        parts += [_param_part(name, run.params.get(name))
                  for name in shown[:SEARCH_NAME_PARAMS if search else NAME_PARAMS]]  # fmt: skip
        if repeats:
            parts.append(f"r{run.params.get('repeat', '-')}")
        if not parts:  # nothing varies: what the trial is
            parts = [run.tags.get("label") or run.params.get("model") or _trial_number(run)]
        names[run.run_id] = " · ".join(parts)
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {run.run_id: names[run.run_id] if counts[names[run.run_id]] == 1
            else f"{names[run.run_id]} · {_trial_number(run)}" for run in runs}  # fmt: skip


def view_envelope(name: str, state: Mapping[str, Any], created_ms: int, updated_ms: int) -> str:
    return json.dumps({"name": name, "createdAt": created_ms, "updatedAt": updated_ms,
                       "state": json.dumps(state)})  # fmt: skip


def saved_envelope(value: str | None) -> dict[str, Any] | None:
    """A saved-view envelope as written here, or None (absent, or not one of ours)."""
    try:
        envelope = json.loads(value or "")
        return envelope if isinstance(envelope.get("createdAt"), int) else None
    except (ValueError, AttributeError):
        return None


def save_view(client: Any, experiment: Any, view: StageView) -> None:
    """Write the view's tag, unless the store holds it already (not even updatedAt moves)."""
    tag = VIEW_TAG_PREFIX + view.key
    state = view.state()
    old = saved_envelope(experiment.tags.get(tag))
    if old and old.get("name") == view.title and json.loads(old["state"]) == state:
        return
    now = int(time.time() * 1000)
    created = old["createdAt"] if old else now
    value = view_envelope(view.title, state, created, now)
    while len(value) > MAX_VIEW_CHARS and view.params:
        view.params.pop()  # hundreds of varying params: the most informative ones only
        state = view.state()
        value = view_envelope(view.title, state, created, now)
    client.set_experiment_tag(experiment.experiment_id, tag, value)


def save_stage_views(client: Any, experiment: Any) -> list[StageView]:
    """Save (or bring up to date) one view per (profile, stage) of the experiment's trial
    runs, delete harness's views of stages the store no longer holds (and the single
    study-wide view older versions saved), and give each trial run its short name.
    Returns the views, in the order the stages ran."""
    # Not the runs the tracker is logging now (RUNNING, their params half written): renaming
    # one rewrites its status as read just before, which could undo the tracker's
    # "finished" in between. A run a killed driver left RUNNING is relogged on --resume.
    runs = [run for run in trial_runs(client, experiment.experiment_id) if not run.running]
    views = []
    for (profile, stage), stage_runs in by_stage(runs).items():
        view = stage_view(experiment.tags, profile, stage, stage_runs)
        if view is not None:
            save_view(client, experiment, view)
            views.append(view)
    keys = {VIEW_TAG_PREFIX + view.key for view in views}
    for tag in experiment.tags:
        if tag.startswith(VIEW_TAG_PREFIX + VIEW_KEY_PREFIX) and tag not in keys:
            client.delete_experiment_tag(experiment.experiment_id, tag)
    for stage_runs in by_stage(runs).values():
        names = short_run_names(stage_runs)
        for run in stage_runs:
            if names[run.run_id] != run.name:
                rename(client, run.run_id, names[run.run_id])
    return views


def rename(client: Any, run_id: str, name: str) -> None:
    """Give a run its short name; one deleted meanwhile (a stage re-run) keeps its own."""
    try:
        client.update_run(run_id, name=name)
    except Exception as error:  # noqa: BLE001 - a name is a convenience, never an error
        print(f"harness: warning: could not rename MLflow run {run_id}: {error}")
