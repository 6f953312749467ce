"""The parts of the paper a reviewer checks beyond the studies' own text: how a run departs
from the paper profile and what it did not run, the per-stage table, the compute and
recipe-check tables with external figures marked, the records behind each row, and how
much of each PDF page is used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.report.back_matter import EXTERNAL_ANCHORS, recipe_check
from harness.report.deviations import deviation_frame, not_done
from harness.report.sections import records_by_stage, short_commit
from harness.report.stages_table import stage_frame
from harness.study import get_study

REPO = Path(__file__).resolve().parents[1]


def _record(stage: str, label: str, **config) -> dict:
    config = {"model": "mlp", "dataset": "digits", "epochs": 4, **config}
    return {"stage": stage, "label": label, "status": "completed", "config": config,
            "config_hash": f"{stage}{label}{sorted(config.items())}"[:16],
            "data": {"train_size": 100, "val_size": 10, "test_size": 50}}


def test_deviations_list_each_differing_setting_once_for_every_variant_it_concerns() -> None:
    records = [_record("main", "CE", epochs=8, lr=0.1), _record("main", "LDAM", epochs=8, lr=0.2)]
    from harness.config import TrialConfig

    paper_config = TrialConfig.from_dict({"model": "mlp", "dataset": "digits", "epochs": 200,
                                          "lr": 0.1}).resolved_dict()
    paper = {"main": [("CE", paper_config), ("LDAM", paper_config)]}
    frame = deviation_frame(records, paper, ["main"])
    rows = {(r.stage, r.setting): (r._3, r._4) for r in frame.itertuples()}
    assert rows[("main", "epochs")] == ("8", "200")  # every variant: said once, for the stage
    assert rows[("main: LDAM", "lr")] == ("0.2", "0.1")  # one variant only
    assert ("main: CE", "lr") not in rows


def test_a_searched_stage_compares_what_it_trains_on_not_its_draws() -> None:
    records = [_record("search", "-", lr=0.01, train_limit=5000), _record("search", "-", lr=0.2, train_limit=5000)]
    from harness.config import TrialConfig

    def resolved(**values) -> dict:
        return TrialConfig.from_dict({"model": "mlp", "dataset": "digits", "epochs": 4,
                                      **values}).resolved_dict()

    paper = {"search": [(None, resolved(lr=0.05)), (None, resolved(lr=0.3))]}
    frame = deviation_frame(records, paper, ["search"], searched={"search"})
    assert set(frame["setting"]) == {"train_limit"}
    assert frame["this run"].tolist() == ["5000"] and frame["paper profile"].tolist() == ["all"]


def test_what_the_paper_profile_runs_and_a_smaller_run_did_not_is_listed() -> None:
    study = get_study("imbalance")
    records = [_record("main", "CE", imbalance="exp", imbalance_factor=100.0)]
    said = not_done(study, records, "mini")
    assert any(s.startswith("stage cb-sweep of the paper profile was not run") for s in said)
    assert any("main: not run here:" in s and "LDAM-DRW" in s for s in said)
    assert any("imbalance factors not run here: 1, 10, 20, 50, 200" in s for s in said)
    assert said[-1].startswith("the paper profile itself")
    assert not_done(study, records, "paper") == []


def test_the_stage_table_counts_trials_seeds_and_split_sizes() -> None:
    records = [_record("search", "a"), {**_record("search", "b"), "status": "stopped"},
               _record("rerun", "a", repeat=0), _record("rerun", "a", repeat=1)]
    records[3]["config_hash"] = records[2]["config_hash"]  # two seeds of one config
    frame = stage_frame(records, order=["search", "rerun"]).set_index("stage")
    assert frame.loc["search", "trials"] == "2 (1 to the end)"
    assert frame.loc["rerun", "seeds per config"] == "2"
    assert frame.loc["rerun", "train / val / test images"] == "100 / 10 / 50"


def test_a_commit_keeps_its_dirty_flag_when_shortened() -> None:
    assert short_commit("1e70f3190e713d79d0b86abf49e5b2152f819bb4-dirty") == "1e70f3190e71-dirty"
    assert short_commit("1e70f3190e713d79d0b86abf49e5b2152f819bb4") == "1e70f3190e71"
    assert short_commit(None) == "unknown"


def test_each_stage_names_the_config_hashes_of_its_rows() -> None:
    records = [{"stage": "main", "label": "CE", "config_hash": "abcdef0123456789"},
               {"stage": "main", "label": "CE", "config_hash": "abcdef0123456789"},
               {"stage": "main", "label": "LDAM", "config_hash": "0011223344556677"}]
    assert records_by_stage(records) == [("main", "CE: abcdef01; LDAM: 00112233")]


def test_the_recipe_check_shows_its_record_beside_marked_external_figures(tmp_path) -> None:
    assert recipe_check(tmp_path) is None  # no record, no section
    source = REPO / "results" / "fastnet_cpu"
    if not source.is_dir():
        pytest.skip("no committed fastnet_cpu record")
    shutil.copytree(source, tmp_path / "fastnet_cpu")
    part = recipe_check(tmp_path)
    frame = part.table.frame
    record = json.loads(next(source.glob("*.json")).read_text())
    assert frame["test accuracy (%)"].iloc[0] == f"{100 * record['final']['test_acc']:.2f}"
    commit = record["environment"]["git_commit"]
    assert frame["machine, commit"].iloc[0].endswith(short_commit(commit))  # as recorded
    external = frame.iloc[1:]
    assert len(external) == len(EXTERNAL_ANCHORS)
    assert all("external" in run for run in external["run"])
    assert part.table.reference_rows == frozenset({1, 2})


@pytest.mark.slow
def test_page_usage_measures_how_far_down_the_text_block_content_reaches() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("page_usage", REPO / "tools" / "page_usage.py")
    page_usage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(page_usage)
    page = np.full((1000, 700), 255, dtype=np.uint8)
    top = int(page_usage.TOP * 1000)
    page[top + 10: top + 300, 100:600] = 0  # content in the top third of the block
    page[960:970, 340:360] = 0  # the page number, below the block
    assert 0.3 < page_usage.used_fraction(page) < 0.4
    page[top + 600: top + 610, 100:600] = 0
    assert page_usage.used_fraction(page) > 0.7
    pdf = REPO / "results" / "report" / "mini" / "report.pdf"
    if shutil.which("pdftoppm") is None or not pdf.is_file():
        pytest.skip("pdftoppm or the committed mini report missing")
    # The committed paper: no page but the last under 40% used.
    assert page_usage.main([str(pdf)]) == 0


def test_run_outputs_in_the_checkout_do_not_make_a_commit_dirty(tmp_path) -> None:
    """A study run after another in one checkout ran the same code: the first run's
    results/ and runs/ must not mark the second one's records "-dirty"; code must."""
    import subprocess

    from harness.environment import code_changed

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    for name in ("harness/a.py", "results/s/mini/table.csv", "runs/x.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("before\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    (tmp_path / "results/s/mini/table.csv").write_text("after\n")
    (tmp_path / "runs/x.json").write_text("after\n")
    assert not code_changed(tmp_path / "harness")
    (tmp_path / "harness/a.py").write_text("after\n")
    assert code_changed(tmp_path / "harness")


def test_no_committed_record_names_a_dirty_commit() -> None:
    """A committed result must be traceable to code someone can check out: every trial
    record under results/ names a clean commit (re-run from a clean checkout otherwise)."""
    records = sorted((REPO / "results").rglob("records/**/*.json"))
    records += sorted((REPO / "results" / "fastnet_cpu").glob("*.json"))
    if not records:
        pytest.skip("no committed records")
    dirty = [str(path.relative_to(REPO)) for path in records
             if json.loads(path.read_text()).get("environment", {}).get("git_commit", "")
             .endswith("-dirty")]
    assert not dirty, f"{len(dirty)} committed records name a dirty commit: {dirty[:3]}"
