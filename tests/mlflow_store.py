"""Reading an MLflow store back in tests."""

from __future__ import annotations


def search_runs(uri: str, experiment: str = "tiny") -> list:
    """mlflow.search_runs on one store; set_tracking_uri also sets $MLFLOW_TRACKING_URI,
    which would send later runs of the harness to this store, so undo it."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.search_runs(experiment_names=[experiment], output_format="list")
    finally:
        mlflow.set_tracking_uri(None)
