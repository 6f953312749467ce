"""Plan-time checks, before Ray starts: where a run writes, whether it can, and what a
stage's fingerprint covers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.layout import project_root, resolve_results_dir, resolve_runs_dir
from harness.plan import check_results_target, stage_fingerprint
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


# ---------------------------------------------------------------------------- --resume


def _state_of_an_earlier_run(tmp_path: Path, profile: str, stages_done: int,
                             started: int = 0, **overrides: object) -> Path:
    """runs/ as a run of tiny/<profile> with ``overrides`` leaves it: markers of the stages
    it finished (no trials: an empty record list) and of the ones it only started, written
    with the runner's own functions."""
    pytest.importorskip("ray")
    import tiny_study  # noqa: F401 - registers the tiny study

    from harness.expansion import apply_overrides
    from harness.files import write_json_atomic
    from harness.plan import (
        RunOptions,
        done_marker,
        plan_run,
        stage_definition,
        start_marker,
    )

    plan = plan_run(RunOptions("tiny", profile, overrides=overrides, tracking=False,
                               runs_dir=tmp_path / "runs", results_dir=tmp_path / "results"))
    for index, stage in enumerate(plan.profile.stages[:stages_done + started]):
        built = stage.space([]) if callable(stage.space) else stage.space
        space = apply_overrides(built, plan.overrides)
        marker = {"stage": stage.name, "fingerprint": stage_fingerprint(stage, space)}
        write_json_atomic(start_marker(plan, stage), {**marker,
                                                      "definition": stage_definition(stage, space)})
        if index < stages_done:
            write_json_atomic(done_marker(plan, stage), {**marker, "records": []})
    return tmp_path / "runs"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _resume(tmp_path: Path, profile: str, rerun: str | None = None, **overrides: object):
    from harness.plan import RunOptions, plan_run

    return plan_run(RunOptions("tiny", profile, overrides=overrides, resume=True, rerun=rerun,
                               tracking=False, runs_dir=tmp_path / "runs",
                               results_dir=tmp_path / "results"))


def test_resume_with_another_set_names_the_stage_that_changed_and_the_way_out(tmp_path) -> None:
    from harness.plan import PlanChanged

    runs = _state_of_an_earlier_run(tmp_path, "quick", stages_done=1)
    before = _files(runs)
    with pytest.raises(PlanChanged) as refused:
        _resume(tmp_path, "quick", epochs=10)
    assert str(refused.value) == (
        "stage 'only' of tiny/quick changed since it ran (epochs 1 -> 10): rerun it with "
        "--rerun only (the stages before it are kept), or drop --resume to start over")
    assert _files(runs) == before  # nothing changed
    _resume(tmp_path, "quick")  # the same definition resumes
    _resume(tmp_path, "quick", rerun="only", epochs=10)  # the way out the message names


def test_resume_checks_each_stage_it_keeps_in_order_and_not_those_rerun(
    tmp_path, monkeypatch
) -> None:
    import tiny_study

    from harness.plan import PlanChanged

    monkeypatch.setenv(tiny_study.FAIL_FLAG_ENV, str(tmp_path / "flag-then"))
    _state_of_an_earlier_run(tmp_path, "resume", stages_done=1, started=1)
    # Both stages change; the first one, which --resume would keep, is named.
    with pytest.raises(PlanChanged, match=r"^stage 'first' of tiny/resume changed since it "
                                          r"ran \(epochs 2 -> 5\): rerun it with --rerun first"):
        _resume(tmp_path, "resume", epochs=5)
    # The second stage's space is built from the first's records (and, here, $TINY_FAIL_FLAG):
    # it only started, and the state --resume would continue is checked too.
    monkeypatch.setenv(tiny_study.FAIL_FLAG_ENV, str(tmp_path / "flag-now"))
    with pytest.raises(PlanChanged, match=r"^stage 'second' of tiny/resume changed since it "
                                          r"ran \(variant grid\(.*--rerun second"):
        _resume(tmp_path, "resume")
    _resume(tmp_path, "resume", rerun="second")  # the first stage is kept as it ran
    _resume(tmp_path, "resume", rerun="first", epochs=5)  # both run again: nothing to mix


def test_a_marker_from_before_definitions_were_kept_still_names_the_stage() -> None:
    from harness.plan import describe_change

    assert describe_change(None, {"space": {"epochs": 2}}) == "its space or settings"
    grid_form = {"<Grid>": {"values": [0.05, 0.1]}}
    assert describe_change({"space": {"lr": grid_form, "epochs": 2}, "settings": {"repeats": 1}},
                           {"space": {"lr": 0.2, "epochs": 2}, "settings": {"repeats": 3}}) \
        == "lr grid(0.05, 0.1) -> 0.2, repeats 1 -> 3"
