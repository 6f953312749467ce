"""The MLflow UI pages `harness ui` links to: per study, one saved view per stage (its
runs best first on the metric the stage chose by, in a table of that metric, the test
metric, the outcome and the parameters that vary within the stage: harness.ui_views), and
the experiments list, in MLflow's "Model training" view.

MLflow 3.18's runs table shows run names, times and a few attributes until the user picks
columns under **Columns**, and its URL cannot pick them: the URL carries the sort, the
filter and the table/chart switch, while the chosen columns live in the browser
(localStorage, per experiment). What the URL can carry is ``viewStateShareKey``, MLflow's
*saved view* (the runs page's "Save view", listed under its "Views"): an experiment tag
``mlflow.sharedViewState.<key>`` holding ``{"name", "createdAt", "updatedAt", "state"}``,
where ``state`` is the JSON of the view's filter, sort and columns. `harness ui` saves
those views, brought up to date with the store's trials each time it starts, and links to
them. The page then shows a view as a shared view: the user's own column choice is left
alone (MLflow's "Exit shared view" returns to it).

Which view an experiment opens in (GenAI or Model training) is a sidebar switch the
browser remembers (localStorage ``mlflow.workflowType``, default GenAI); the URL parameter
``workflowType=machine_learning`` overrides it for that page, and nothing in the store or
on the server sets its default. So every URL printed here carries that parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

from harness.tracking import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    PRIMARY_METRIC_TAG,
    PRIMARY_MODE_TAG,
    quiet_mlflow,
)
from harness.ui_views import (  # noqa: F401 - VIEW_TAG_PREFIX, varying_params: as before
    VIEW_TAG_PREFIX,
    StageView,
    save_stage_views,
    varying_params,
)

VIEW_URL_PARAM = "viewStateShareKey"
MODEL_TRAINING = {"workflowType": "machine_learning"}


class UiLink(NamedTuple):
    """One line `harness ui` prints: a study's stage view (or, for a study without one,
    its runs) and the URL that opens it."""

    study: str
    what: str  # "smoke · sweep: 4 runs by val_acc, test_acc beside it"; "": the runs page
    url: str


def home_url(base: str) -> str:
    """The experiments list in the "Model training" view: where the studies are."""
    return f"{base}/#/experiments?{urlencode(MODEL_TRAINING)}"


def describe(view: StageView) -> str:
    beside = f", {view.test_metric} beside it" if view.test_metric else ""
    return f"{view.profile} · {view.stage}: {len(view.runs)} runs by {view.metric}{beside}"


def runs_url(base: str, experiment_id: str, metric: str | None = None, mode: str = "max",
             view: str | None = None) -> str:  # fmt: skip
    """The MLflow UI page of an experiment's runs in its "Model training" view. With a
    saved view: that view (sort and columns) as a table. Without one but with a metric:
    sorted by it, best first, as charts (the table would show no metric column)."""
    query = dict(MODEL_TRAINING)
    if view:
        # No sort here: the UI ignores a saved view when the URL carries a sort or filter.
        query.update({VIEW_URL_PARAM: view, "compareRunsMode": "TABLE"})
    elif metric:
        query.update(orderByKey=f"metrics.`{metric}`", orderByAsc=str(mode == "min").lower(),
                     compareRunsMode="CHART")  # fmt: skip
    return f"{base}/#/experiments/{experiment_id}/runs?{urlencode(query, quote_via=quote)}"


def ui_links(uri: str, base: str) -> list[UiLink]:
    """For each harness experiment in a SQLite store, one link per stage view, saving the
    views first (a study without trial runs yet: its runs page); empty for a store that
    does not exist yet (it is not created here), another kind of store (a server that may
    not answer), or one that cannot be read. Where the views cannot be saved (a read-only
    store) the study gets one link, sorted by its metric."""
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
        links += _study_links(client, experiment, base)
    return links


def _study_links(client: Any, experiment: Any, base: str) -> list[UiLink]:
    eid = experiment.experiment_id
    try:
        views = save_stage_views(client, experiment)
    except Exception as error:  # noqa: BLE001 - a read-only store still gets its links
        print(f"harness: warning: could not save the {experiment.name} views: {error}")
        views = []
    if views:
        return [UiLink(experiment.name, describe(v), runs_url(base, eid, view=v.key))
                for v in views]  # fmt: skip
    return [UiLink(experiment.name, "", runs_url(
        base, eid, experiment.tags.get(PRIMARY_METRIC_TAG),
        experiment.tags.get(PRIMARY_MODE_TAG, "max")))]  # fmt: skip
