"""nox sessions: tests, lint, smoke (every study at the smoke profile), study, tables, ui.

    nox -s smoke                      # the main job: every study, smoke profile, embedded data
    nox -s tests                      # the test suite
    nox -s study -- imbalance mini    # one study at one profile (+ --set key=value ...)
    nox -s tables -- imbalance mini   # rebuild a study's tables from its records
    nox -s ui                         # MLflow UI on runs/mlflow.db, bound to 127.0.0.1
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "virtualenv"  # pip, so torch comes from the local wheels
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]

ALL = ".[tune,dev]"
# Every registered study (tests/test_studies.py checks this list against the registry).
STUDIES = ("cnn_search", "imbalance")


def _python(session: nox.Session) -> None:
    session.install("-e", ALL)


def _run_studies(session: nox.Session, names: tuple[str, ...], profile: str, extra: list[str]) -> None:
    _python(session)
    for name in names:
        session.run("harness", "run", name, "--profile", profile, *extra)


@nox.session
def smoke(session: nox.Session) -> None:
    """Every study at the smoke profile: results/<study>/smoke and MLflow runs in runs/."""
    _run_studies(session, STUDIES, "smoke", list(session.posargs))


@nox.session
def tests(session: nox.Session) -> None:
    _python(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "harness", "studies", "tests", "benchmarks", "noxfile.py")


@nox.session
def study(session: nox.Session) -> None:
    """nox -s study -- STUDY|--all PROFILE [--set key=value ...]"""
    if len(session.posargs) < 2:
        session.error("usage: nox -s study -- STUDY|--all PROFILE [--set key=value ...]")
    name, profile, *rest = session.posargs
    _run_studies(session, STUDIES if name == "--all" else (name,), profile, rest)


@nox.session
def tables(session: nox.Session) -> None:
    """nox -s tables -- STUDY PROFILE"""
    if len(session.posargs) != 2:
        session.error("usage: nox -s tables -- STUDY PROFILE")
    _python(session)
    session.run("harness", "tables", session.posargs[0], "--profile", session.posargs[1])


@nox.session
def ui(session: nox.Session) -> None:
    _python(session)
    session.run("harness", "ui", *session.posargs)
