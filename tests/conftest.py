"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CIFAR_FILES = ("cifar-10-batches-py", "cifar-10-python.tar.gz", "cifar10-jpeg.tar.gz")


# ---------------------------------------------------------------- data


@pytest.fixture(scope="session", autouse=True)
def harness_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point HARNESS_CACHE at one folder per test session.

    Tests never write into the user's cache, and the CIFAR-10 decode happens once per session.
    """
    folder = tmp_path_factory.mktemp("harness-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE", str(folder))
        yield folder


def _find_cifar_root() -> Path | None:
    candidates = []
    if os.environ.get("HARNESS_DATA"):
        candidates.append(Path(os.environ["HARNESS_DATA"]).expanduser())
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for folder in candidates:
        if any((folder / name).exists() for name in CIFAR_FILES):
            return folder
    return None


@pytest.fixture(scope="session")
def cifar_root() -> Path:
    """A folder holding CIFAR-10 (HARNESS_DATA, else <repo>/../shared/data); skips without one."""
    root = _find_cifar_root()
    if root is None:
        pytest.skip(
            f"no CIFAR-10 archive: set HARNESS_DATA to a folder holding one of {CIFAR_FILES}"
        )
    return root


@pytest.fixture(scope="session")
def cifar10(cifar_root: Path, harness_cache: Path):
    """CIFAR-10 loaded once per session (decoded into the session cache)."""
    from harness.data import load_dataset

    return load_dataset("cifar10", cifar_root)


# ---------------------------------------------------------------- Ray


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """One local Ray instance (2 CPUs) for the whole session, started the way a run starts
    its own: in-process runs use it as it is, CLI subprocesses join it by its address (as a
    user joins a running cluster), which spares each of them a Ray start. Yields the
    address."""
    pytest.importorskip("ray.tune")
    import ray

    from harness.ray_session import quiet_ray_env

    with quiet_ray_env():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()
