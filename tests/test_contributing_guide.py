"""docs/contributing.md, followed literally: the files its worked example shows are written
into a folder outside the checkout, the commands it shows are run as written (the
registry-parametrized tests, the golden paper, `harness run`, `harness report`), and the
new loss and study must come out in the paper without any file of the checkout changing.

The files and commands are read from the guide itself (the code blocks after its
`<!-- file: NAME -->` and `<!-- run -->` markers), so the guide cannot drift from what
works."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "contributing.md"
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray")

BLOCK = re.compile(r"<!-- (file: (?P<name>[\w.]+)|run) -->\n```\w*\n(?P<body>.*?)\n```", re.S)


def guide_blocks(text: str) -> tuple[dict[str, str], list[str]]:
    """The guide's example files (name -> text) and its command blocks, in order."""
    files, commands = {}, []
    for match in BLOCK.finditer(text):
        if match["name"]:
            files[match["name"]] = match["body"] + "\n"
        else:
            commands.append(match["body"])
    return files, commands


def checkout_state() -> str:
    """Every tracked file's changes and every untracked file git does not ignore."""
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


def test_the_guide_shows_a_loss_a_study_and_the_commands_that_check_them():
    files, commands = guide_blocks(GUIDE.read_text())
    assert set(files) == {"hinge_loss.py", "hinge_study.py"}
    assert "@register_loss(" in files["hinge_loss.py"]
    assert "register_study(" in files["hinge_study.py"]
    assert len(commands) == 1 and "harness report" in commands[0]


@needs_ray
@pytest.mark.slow
def test_following_the_guide_adds_a_loss_and_a_study_without_touching_the_checkout(tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to tell whether its files changed")
    files, commands = guide_blocks(GUIDE.read_text())
    modules = tmp_path / "harness-modules"
    modules.mkdir()
    for name, text in files.items():
        (modules / name).write_text(text)
    before = checkout_state()
    # The shell a contributor has: the environment's tools on PATH, the checkout importable
    # (an editable install), and the default results/ and runs/ pointed at this test's
    # temporary folder by conftest, so nothing lands in the checkout's own.
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "HARNESS_STUDIES")}
    env.update(MODULES=str(modules), PYTHONPATH=str(REPO),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", commands[0]], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    assert "also testing the modules in $HARNESS_STUDIES: hinge_study" in done.stdout
    assert re.search(r"\d+ passed", done.stdout) and " failed" not in done.stdout

    results = Path(os.environ["HARNESS_RESULTS"])
    assert (results / "hinge_study" / "smoke" / "hinge_vs_ce.md").is_file()
    report = (results / "report" / "smoke" / "report.md").read_text()
    section = report.split("Hinge loss against cross-entropy (`hinge_study`)", 1)[1]
    assert "Does the multi-class hinge loss train as well as cross-entropy?" in section
    assert "with the hinge loss and" in section  # the narrative's measured answer
    assert "hinge matches ce" in report  # the claim and its verdict
    assert checkout_state() == before, "following the guide changed the checkout's files"
