"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CIFAR_FILES = ("cifar-10-batches-py", "cifar-10-python.tar.gz", "cifar10-jpeg.tar.gz")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Print the random order's seed even under -q (which hides pytest-randomly's header),
    so a failure seen in CI's log can be replayed in the same order."""
    seed = getattr(session.config.option, "randomly_seed", None)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if isinstance(seed, int) and reporter is not None:
        reporter.write_line(f"test order: pytest-randomly seed {seed}; replay it with "
                            f"`pytest --randomly-seed={seed}`")
    contributed = session.config.stash.get(CONTRIBUTED, [])
    if contributed and reporter is not None:
        reporter.write_line(f"also testing the modules in $HARNESS_STUDIES: {', '.join(contributed)}")


# ---------------------------------------------------------------- sealed from the user's files

# Where a harness command writes by default when nothing names a folder.
DEFAULT_LOCATIONS = {"HARNESS_RUNS": "runs", "HARNESS_RESULTS": "results"}
# A user's settings that would send a test's runs, tracking or cluster elsewhere.
# ($HARNESS_STUDIES is kept: it is how a contributor's modules join the tests, below.)
USER_SETTINGS = ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")


CONTRIBUTED = pytest.StashKey[list]()


def pytest_configure(config: pytest.Config) -> None:
    """Import the modules named in $HARNESS_STUDIES (harness.study.STUDY_MODULES_ENV)
    before the tests are collected, so a study, loss or model kept outside the checkout is
    in the registries the parametrized tests iterate (docs/contributing.md); unset, the
    suite tests what the checkout ships."""
    import importlib

    names = [n.strip() for n in os.environ.get("HARNESS_STUDIES", "").split(",") if n.strip()]
    for name in names:
        importlib.import_module(name)
    config.stash[CONTRIBUTED] = names


def _listing(folder: Path) -> list[tuple[str, int]]:
    if not folder.is_dir():
        return []
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


@pytest.fixture(scope="session", autouse=True)
def sealed_from_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every default location (runs/, results/, the MLflow store inside runs/) points into
    this test session's temporary folder, and a user's MLflow, Ray or study settings are
    cleared: the suite's outcome cannot depend on what the main job left in the checkout,
    and no test writes there. A test that reads the committed results names them.

    At the end, the checkout's runs/ and results/ must be as they were: a test that wrote
    there anyway fails the session here."""
    folder = tmp_path_factory.mktemp("defaults")
    before = {name: _listing(REPO_ROOT / name) for name in DEFAULT_LOCATIONS.values()}
    with pytest.MonkeyPatch.context() as mp:
        for env, name in DEFAULT_LOCATIONS.items():
            mp.setenv(env, str(folder / name))
        for env in USER_SETTINGS:
            mp.delenv(env, raising=False)
        yield folder
    changed = [name for name, listing in before.items() if _listing(REPO_ROOT / name) != listing]
    assert not changed, f"a test wrote into the checkout's {', '.join(changed)}/"


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
