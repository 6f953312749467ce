"""The MLflow UI pages `harness ui` links to: per study, its trials best first in the runs
table, with the study's metric and the parameters its trials vary as columns.

MLflow 3.17's runs table shows run names, times and a few attributes until the user picks
columns under **Columns**, and its URL cannot pick them: the URL carries the sort, the
filter and the table/chart switch, while the chosen columns live in the browser
(localStorage, per experiment). What the URL can carry is ``viewStateShareKey``, MLflow's
*saved view* (the runs page's "Save view", listed under its "Views"): an experiment tag
``mlflow.sharedViewState.<key>`` holding ``{"name", "createdAt", "updatedAt", "state"}``,
where ``state`` is the JSON of the view's sort and selected columns. So `harness ui`
saves one such view per study, under a fixed key, brought up to date with the store's
trials each time it starts, and links to it. The page then shows it as a shared view: the
user's own column choice is left alone (MLflow's "Exit shared view" returns to it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from harness.tracking import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    PRIMARY_METRIC_TAG,
    PRIMARY_MODE_TAG,
    TRIAL_KEY_TAG,
    quiet_mlflow,
)

VIEW_KEY = "harness-trials"  # one view per experiment, rewritten in place: never piles up
VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # MLflow 3.17 UI's saved-view tags
VIEW_URL_PARAM = "viewStateShareKey"
MAX_VIEW_CHARS = 20_000  # the UI refuses a larger saved view; MLflow caps tag values there


def varying_params(runs: Iterable[Mapping[str, str]]) -> list[str]:
    """The params, given as each run's params, whose value differs between runs (a run
    without the param counts as a value of its own), sorted."""
    runs = list(runs)
    names = sorted({name for params in runs for name in params})
    return [name for name in names if len({params.get(name) for params in runs}) > 1]


def trial_params(client: Any, experiment_id: str) -> list[dict[str, str]]:
    """The params of each trial run of an experiment (parent runs carry no trial key)."""
    found: list[dict[str, str]] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`{TRIAL_KEY_TAG}` != ''",
                                  max_results=1000, page_token=token)  # fmt: skip
        found.extend(dict(run.data.params) for run in page)
        token = page.token
        if not token:
            return found


def view_state(metric: str, mode: str, params: list[str]) -> dict[str, Any]:
    """A runs-page state as MLflow's UI saves it: best first by the metric (a sort by a
    metric also lists trial runs flat, not collapsed under their parent run), with the
    metric and the params as the table's columns."""
    key = f"metrics.`{metric}`"
    return {
        "orderByKey": key,
        "orderByAsc": mode == "min",
        "selectedColumns": [key, *(f"params.`{name}`" for name in params)],
    }


def view_envelope(name: str, state: Mapping[str, Any], created_ms: int, updated_ms: int) -> str:
    return json.dumps({"name": name, "createdAt": created_ms, "updatedAt": updated_ms,
                       "state": json.dumps(state)})  # fmt: skip


def save_trials_view(client: Any, experiment: Any) -> str | None:
    """Save (or bring up to date) the experiment's trials view; its key, or None for an
    experiment that names no metric (written before harness tagged it)."""
    metric = experiment.tags.get(PRIMARY_METRIC_TAG)
    if not metric:
        return None
    mode = experiment.tags.get(PRIMARY_MODE_TAG, "max")
    params = varying_params(trial_params(client, experiment.experiment_id))
    state = view_state(metric, mode, params)
    tag = VIEW_TAG_PREFIX + VIEW_KEY
    old = _saved(experiment.tags.get(tag))
    if old and json.loads(old["state"]) == state:
        return VIEW_KEY  # unchanged: leave the store alone
    now = int(time.time() * 1000)
    created = old["createdAt"] if old else now
    name = f"Trials by {metric} (harness)"
    value = view_envelope(name, state, created, now)
    while len(value) > MAX_VIEW_CHARS and len(state["selectedColumns"]) > 1:
        state["selectedColumns"].pop()  # hundreds of varying params: the first ones only
        value = view_envelope(name, state, created, now)
    client.set_experiment_tag(experiment.experiment_id, tag, value)
    return VIEW_KEY


def _saved(value: str | None) -> dict[str, Any] | None:
    """A saved-view envelope as written here, or None (absent, or not one of ours)."""
    try:
        envelope = json.loads(value or "")
        return envelope if isinstance(envelope.get("createdAt"), int) else None
    except (ValueError, AttributeError):
        return None


def runs_url(base: str, experiment_id: str, metric: str | None = None, mode: str = "max",
             view: str | None = None) -> str:  # fmt: skip
    """The MLflow UI page of an experiment's runs in its "Model training" view. With a
    saved view: that view (sort and columns) as a table. Without one but with a metric:
    sorted by it, best first, as charts (the table would show no metric column)."""
    query = {"workflowType": "machine_learning"}
    if view:
        # No sort here: the UI ignores a saved view when the URL carries a sort or filter.
        query.update({VIEW_URL_PARAM: view, "compareRunsMode": "TABLE"})
    elif metric:
        query.update(orderByKey=f"metrics.`{metric}`", orderByAsc=str(mode == "min").lower(),
                     compareRunsMode="CHART")  # fmt: skip
    return f"{base}/#/experiments/{experiment_id}/runs?{urlencode(query, safe='')}"


def ui_links(uri: str, base: str) -> list[tuple[str, str]]:
    """(study, URL of its trials) for each harness experiment in a SQLite store, saving
    each study's trials view first; empty for a store that does not exist yet (it is not
    created here), another kind of store (a server that may not answer), or one that
    cannot be read. A view that cannot be saved leaves that study's URL sorted only."""
    if not uri.startswith("sqlite:///") or not Path(uri.removeprefix("sqlite:///")).is_file():
        return []
    try:
        quiet_mlflow()
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        experiments = client.search_experiments(
            filter_string=f"tags.`{EXPERIMENT_KIND_TAG}` = '{EXPERIMENT_KIND}'"
        )
    except Exception:  # noqa: BLE001 - the links are a convenience; the UI still starts
        return []
    links = []
    for experiment in sorted(experiments, key=lambda e: e.name):
        try:
            view = save_trials_view(client, experiment)
        except Exception as error:  # noqa: BLE001 - a read-only store still gets its links
            print(f"harness: warning: could not save the {experiment.name} view: {error}")
            view = None
        links.append((experiment.name, runs_url(
            base, experiment.experiment_id, experiment.tags.get(PRIMARY_METRIC_TAG),
            experiment.tags.get(PRIMARY_MODE_TAG, "max"), view)))  # fmt: skip
    return links
