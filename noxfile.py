"""nox sessions: tests, lint, smoke (every study at the smoke profile), study, tables, ui,
gpu (the GPU suite), ui-screenshots (the MLflow UI in headless Chromium).

    nox -s smoke                      # the main job: every study, smoke profile, embedded data,
                                      # and the paper from them (results/report/smoke/)
    nox -s tests                      # the test suite (what CI runs)
    nox -s fast                       # the fast tier: every test not marked slow
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


def _python(session: nox.Session) -> None:
    session.install("-e", ALL)


def _registered_studies(session: nox.Session) -> list[str]:
    """Every study the registry knows, asked of the installed package, so a new study file
    under studies/ joins `nox -s smoke` without touching this file."""
    listed = session.run("harness", "list", "--studies", silent=True)
    return listed.split() if isinstance(listed, str) else []


def _run_studies(session: nox.Session, names: list[str] | None, profile: str, extra: list[str]) -> None:
    _python(session)
    for name in names if names is not None else _registered_studies(session):
        session.run("harness", "run", name, "--profile", profile, *extra)


@nox.session
def smoke(session: nox.Session) -> None:
    """Every study at the smoke profile: results/<study>/smoke and MLflow runs in runs/, then
    the paper built from them: results/report/smoke/."""
    _run_studies(session, None, "smoke", list(session.posargs))
    session.run("harness", "report", "--profile", "smoke")


@nox.session
def tests(session: nox.Session) -> None:
    _python(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def fast(session: nox.Session) -> None:
    """The fast tier, for the edit-test loop: every module imported, every test not marked
    slow (no Ray start, no CLI training run); `nox -s tests` before pushing."""
    _python(session)
    session.run("pytest", "-q", "-m", "not slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "harness", "studies", "tests", "benchmarks", "tools", "noxfile.py")


@nox.session
def study(session: nox.Session) -> None:
    """nox -s study -- STUDY|--all PROFILE [--set key=value ...]"""
    if len(session.posargs) < 2:
        session.error("usage: nox -s study -- STUDY|--all PROFILE [--set key=value ...]")
    name, profile, *rest = session.posargs
    _run_studies(session, None if name == "--all" else [name], profile, rest)


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


@nox.session
def report(session: nox.Session) -> None:
    """nox -s report -- PROFILE: results/report/PROFILE/report.md, .tex (and .pdf with LaTeX)."""
    if len(session.posargs) != 1:
        session.error("usage: nox -s report -- PROFILE")
    _python(session)
    session.run("harness", "report", "--profile", session.posargs[0])


@nox.session
def gpu(session: nox.Session) -> None:
    """The GPU suite on this machine's CUDA GPU, under 9 minutes: PASS / FAIL per part, exit 1
    on any FAIL; results/gpu/<card>-<date>/ (summary.md, suite.json, throughput.json, which
    `harness run ... --dry-run` reads). An offline GPU machine runs `python -m
    benchmarks.gpu_suite` itself, without nox (README, "The GPU suite").

    nox -s gpu -- --data-root ../shared/data           # any python -m benchmarks.gpu_suite option
    nox -s gpu -- --tiny --device cpu --out /tmp/suite  # its code paths on a CPU
    """
    _python(session)
    session.run("python", "-m", "benchmarks.gpu_suite", *session.posargs)


@nox.session(name="ui-screenshots")
def ui_screenshots(session: nox.Session) -> None:
    """The MLflow UI as a user meets it, shot by headless Chromium (apt-get install -y chromium).

    nox -s ui-screenshots -- [--out DIR] [--runs-dir RUNS] [--study S --profile P]
    """
    _python(session)
    args = list(session.posargs)
    if "--out" not in args:
        args += ["--out", "docs/mlflow-ui"]
    session.run("python", "tools/ui_screenshot.py", *args)
