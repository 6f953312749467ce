"""Swapping results/<study>/<profile>/ in: a folder that cannot be replaced is refused
before any trial, and a swap refused anyway (the folder turned immutable while the trials
ran) is one message that names the folder and keeps the new results in a named folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import tiny_study

from harness.cli import main
from harness.errors import HarnessError
from harness.plan import check_results_target
from harness.results import write_results

EARLIER = "from an earlier run\n"


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def earlier(tmp_path: Path) -> Path:
    """results/tiny/quick as an earlier run left it."""
    folder = tmp_path / "results" / "tiny" / "quick"
    folder.mkdir(parents=True)
    (folder / "records.csv").write_text(EARLIER)
    return folder


@pytest.fixture
def immutable(earlier: Path) -> Iterator[Path]:
    """The earlier results folder made immutable (``chattr +i``: no rename, no new file
    in it), its parent left writable; the flag is taken off again whatever happens."""
    if not _chattr("+i", earlier):
        pytest.skip("chattr +i does not work here (needs root and a file system with flags)")
    try:
        yield earlier
    finally:
        _chattr("-i", earlier)


def _untouched(folder: Path) -> bool:
    """The earlier results as they were, and nothing else beside them."""
    return (
        sorted(p.name for p in folder.iterdir()) == ["records.csv"]
        and (folder / "records.csv").read_text() == EARLIER
    )


def test_an_immutable_results_folder_is_refused_before_any_trial(immutable, tmp_path, capsys):
    with pytest.raises(HarnessError, match=f"cannot replace the results folder {immutable}"):
        check_results_target(tmp_path / "results", "tiny", "quick")
    code = main(["run", "tiny", "--profile", "quick", "--runs-dir", str(tmp_path / "runs"),
                 "--results-dir", str(tmp_path / "results")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"cannot replace the results folder {immutable}" in err
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing was created
    assert _untouched(immutable)
    assert [p.name for p in immutable.parent.iterdir()] == ["quick"]  # no probe left


def test_a_replaceable_folder_passes_the_check_unchanged(earlier, tmp_path):
    check_results_target(tmp_path / "results", "tiny", "quick")
    assert _untouched(earlier)
    assert [p.name for p in earlier.parent.iterdir()] == ["quick"]


def _kept(parent: Path) -> list[Path]:
    return sorted(parent.glob(".quick-unswapped-*"))


def test_a_refused_swap_names_the_folder_and_keeps_the_new_results(immutable):
    # The folder turned immutable after the pre-check, while the trials ran.
    with pytest.raises(HarnessError) as raised:
        write_results(tiny_study.build(), "quick", [], immutable.parents[1])
    (kept,) = _kept(immutable.parent)
    message = str(raised.value)
    assert f"cannot replace the results folder {immutable}" in message
    assert f"kept in {kept}" in message
    assert (kept / "records.csv").is_file() and (kept / "records.csv").read_text() != EARLIER
    assert _untouched(immutable)
    # Nothing else beside them: no empty .quick-old-* folder, no staging folder.
    assert sorted(p.name for p in immutable.parent.iterdir()) == sorted(["quick", kept.name])


def test_a_swap_refused_halfway_puts_the_earlier_results_back(earlier, monkeypatch):
    """The earlier results stepped aside, then the new ones could not move in: the earlier
    ones go back and the new ones are kept."""
    real_replace = os.replace

    def refuse_moving_in(source, destination) -> None:
        if Path(destination) == earlier and ".quick-new-" in str(source):
            raise PermissionError(1, "Operation not permitted")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", refuse_moving_in)
    with pytest.raises(HarnessError, match="Operation not permitted") as raised:
        write_results(tiny_study.build(), "quick", [], earlier.parents[1])
    (kept,) = _kept(earlier.parent)
    assert str(kept) in str(raised.value) and "earlier results are in" not in str(raised.value)
    assert (kept / "records.csv").read_text() != EARLIER
    assert _untouched(earlier)
    assert sorted(p.name for p in earlier.parent.iterdir()) == sorted(["quick", kept.name])


def test_a_swap_leaves_no_hidden_folders(earlier):
    out = write_results(tiny_study.build(), "quick", [], earlier.parents[1])
    assert out == earlier and (out / "records.csv").read_text() != EARLIER
    assert [p.name for p in earlier.parent.iterdir()] == ["quick"]
