"""The README's map of the code names every module of harness/, and the contributor guide
names files that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _map_block() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## How it is put together", 1)[1]
    return section.split("```", 2)[1]


def test_the_readme_map_names_every_module_and_package_of_harness():
    block = _map_block()
    modules = [p for p in (REPO / "harness").glob("*.py") if p.name != "__init__.py"]
    packages = [p for p in (REPO / "harness").iterdir() if (p / "__init__.py").is_file()]
    missing = [f"harness/{p.name}" for p in modules if f"harness/{p.name}" not in block]
    missing += [f"harness/{p.name}/" for p in packages if f"harness/{p.name}/" not in block]
    assert not missing, f"the README's 'How it is put together' map misses {missing}"


def test_every_file_the_contributor_guide_names_exists():
    guide = (REPO / "docs" / "contributing.md").read_text()
    named = set(re.findall(r"`((?:harness|studies|tests|docs)/[\w/.-]+\.(?:py|md))`", guide))
    assert named, "the guide names no files"
    assert not [n for n in sorted(named) if not (REPO / n).exists()]
