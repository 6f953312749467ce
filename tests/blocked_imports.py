"""Python source that makes a fresh interpreter behave as if Ray, MLflow and Optuna were
not installed: prepend it to the code a test runs with `python -c`."""

BLOCK_RAY_MLFLOW_OPTUNA = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ray", "mlflow", "optuna"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
sys.meta_path.insert(0, _Block())
"""
