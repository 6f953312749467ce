"""Plan-time checks, before Ray starts: where a run writes, whether it can, and what a
stage's fingerprint covers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.plan import (
    check_results_target,
    project_root,
    resolve_results_dir,
    resolve_runs_dir,
    stage_fingerprint,
)
from harness.space import grid
from harness.study import Stage

REPO = Path(__file__).resolve().parents[1]


def test_runs_and_results_resolve_to_one_place_from_anywhere_in_the_checkout(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.delenv("HARNESS_RUNS", raising=False)
    monkeypatch.delenv("HARNESS_RESULTS", raising=False)
    assert project_root() == REPO
    monkeypatch.chdir(REPO / "tests")  # a sub-folder of the checkout
    assert resolve_runs_dir(None) == REPO / "runs"
    assert resolve_results_dir(None) == REPO / "results"
    monkeypatch.chdir(tmp_path)  # outside it: the working directory
    assert resolve_runs_dir(None) == tmp_path.resolve() / "runs"
    monkeypatch.setenv("HARNESS_RUNS", str(tmp_path / "shared-runs"))
    assert resolve_runs_dir(None) == tmp_path.resolve() / "shared-runs"
    assert resolve_runs_dir(tmp_path / "given") == tmp_path.resolve() / "given"  # option wins


def test_the_results_target_is_checked_before_any_trial(tmp_path) -> None:
    results = tmp_path / "results"
    (results).mkdir()
    (results / "tiny").write_text("a file where the study's folder goes")
    with pytest.raises(HarnessError, match="cannot write the results folder .*tiny"):
        check_results_target(results, "tiny", "quick")
    (results / "tiny").unlink()
    (results / "tiny").mkdir()
    (results / "tiny" / "quick").write_text("a file where the profile's folder goes")
    with pytest.raises(HarnessError, match="it is a file, not a folder"):
        check_results_target(results, "tiny", "quick")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_study_folder_is_refused(tmp_path) -> None:
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny").chmod(0o500)
    try:
        with pytest.raises(HarnessError, match="cannot write the results folder"):
            check_results_target(tmp_path, "tiny", "quick")
    finally:
        (tmp_path / "tiny").chmod(0o700)


def test_results_folders_get_the_umask_mode(tmp_path) -> None:
    import tiny_study

    from harness.results import write_results

    records = []  # nothing finished: only records.csv is written
    out = write_results(tiny_study.build(), "quick", records, tmp_path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask  # not mkdtemp's 0700
    assert (out / "records.csv").exists()


def test_a_stage_fingerprint_covers_its_resolved_space_and_settings() -> None:
    stage = Stage("sweep", {"lr": grid(0.1, 0.2), "epochs": 2}, repeats=2)
    same = stage_fingerprint(stage, {"epochs": 2, "lr": grid(0.1, 0.2)})
    assert stage_fingerprint(stage, stage.space) == same
    assert stage_fingerprint(stage, {"lr": grid(0.1, 0.3), "epochs": 2}) != same
    assert stage_fingerprint(stage, {"lr": grid(0.1, 0.2), "epochs": 3}) != same
    other = Stage("sweep", stage.space, repeats=3)
    assert stage_fingerprint(other, stage.space) != same
