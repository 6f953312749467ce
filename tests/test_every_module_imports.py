"""Every module under harness/ and studies/ imports: the fast tier (`pytest -m "not slow"`)
leaves out the tests that start Ray or train through the CLI, and this keeps a module that
only those tests reached from breaking unseen (a syntax error, a bad import)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def module_names(root: Path, packages: tuple[str, ...]) -> list[str]:
    """Dotted names of every .py file under ``packages`` of ``root``."""
    names = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = module_names(REPO, ("harness", "studies"))


def test_the_list_covers_every_package_and_study():
    assert {"harness", "harness.tasks", "harness.report", "studies", "studies.memorization",
            "studies._memorization_tables"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_the_module_imports(name: str) -> None:
    importlib.import_module(name)
