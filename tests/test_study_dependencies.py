"""Studies reach the paper by themselves, and a study reads another's results only through a
declared dependency whose folder is always named: never whatever the working tree holds.

The toy study below lives in a temporary folder, outside the package and touching no core
file: it appears in `harness list`, runs at smoke through Ray Tune, and gets a section in
the paper, placed by the order it declares.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import RegistryError
from harness.study import Profile, Stage, Study, get_study, list_studies, paper_order

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray")


def _summary2(records, profile):
    return []


def _summary3(records, profile, upstream):
    return []


def _profiles() -> dict[str, Profile]:
    return {"smoke": Profile("smoke", "", (Stage("s", {"dataset": "digits"}),))}


def test_theory_declares_that_it_reads_denoising_and_runs_after_it():
    theory = get_study("theory")
    assert theory.uses == ("denoising",)
    names = list_studies()
    assert names.index("denoising") < names.index("theory")


def test_the_paper_orders_studies_by_what_each_declares():
    shipped = ["theory", "denoising", "cnn_search", "memorization", "imbalance"]
    assert paper_order(shipped) == ["cnn_search", "imbalance", "memorization", "denoising",
                                    "theory"]


def test_a_study_that_uses_another_must_take_its_results():
    with pytest.raises(RegistryError, match="must take 3 arguments"):
        Study("bad", "", _profiles(), summary=_summary2, uses=("denoising",))
    with pytest.raises(RegistryError, match="must take 2 arguments"):
        Study("bad", "", _profiles(), summary=_summary3)


def test_reading_an_undeclared_study_is_refused(tmp_path):
    upstream = get_study("theory").upstream("smoke", tmp_path)
    assert upstream.folder("denoising") == tmp_path / "denoising" / "smoke"
    with pytest.raises(RegistryError, match="without declaring it"):
        upstream.folder("imbalance")


def _denoising_records_csv(folder: Path, clean: float, noisy: float) -> None:
    folder.mkdir(parents=True)
    rows = ["status,config.loss,config.task.noise,config.task.target,final.test_psnr"]
    rows += [f"completed,l2,gaussian,clean,{clean}", f"completed,l2,gaussian,noisy,{noisy}"]
    (folder / "records.csv").write_text("\n".join(rows) + "\n")


def test_theory_reads_denoising_from_the_folder_it_is_given_and_no_other(tmp_path, monkeypatch):
    from studies.theory import denoising_gap

    theory = get_study("theory")
    given, elsewhere = tmp_path / "given", tmp_path / "elsewhere"
    _denoising_records_csv(given / "denoising" / "smoke", clean=20.0, noisy=19.5)
    # A populated default folder (what the main job leaves behind) must not be read.
    _denoising_records_csv(elsewhere / "denoising" / "smoke", clean=20.0, noisy=25.0)
    monkeypatch.setenv("HARNESS_RESULTS", str(elsewhere))
    monkeypatch.chdir(elsewhere)
    assert denoising_gap(theory.upstream("smoke", given)) == (
        "denoising/smoke measured noisy - clean target PSNR gap: gaussian -0.50 dB")
    assert denoising_gap(theory.upstream("smoke", tmp_path / "empty")) is None


def test_the_default_folders_point_into_the_test_session(sealed_from_checkout):
    # Fails when conftest's sealed_from_checkout is removed: the defaults are then the
    # checkout's own runs/ and results/, where the main job writes.
    from harness.layout import resolve_results_dir, resolve_runs_dir

    assert resolve_results_dir(None) == sealed_from_checkout / "results"
    assert resolve_runs_dir(None) == sealed_from_checkout / "runs"
    for path in (resolve_results_dir(None), resolve_runs_dir(None)):
        assert not path.is_relative_to(REPO)
    assert "MLFLOW_TRACKING_URI" not in os.environ and "RAY_ADDRESS" not in os.environ


def test_a_report_of_an_unknown_profile_writes_nothing(tmp_path, capsys):
    from harness.cli import main

    assert main(["report", "--profile", "nosuchprofile", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no study has a profile 'nosuchprofile'; choose one of:" in err
    assert list(tmp_path.iterdir()) == []


TOY_STUDY = '''
"""A study kept outside the package: digits, one small trial."""
from harness.report import Table, completed, records_frame
from harness.study import Narrative, Profile, Stage, Study, register_study


def summary(records, profile):
    frame = completed(records_frame(records))
    table = frame[["config.lr", "final.test_acc"]].rename(
        columns={"config.lr": "lr", "final.test_acc": "test accuracy"})
    return [Table("toy_table", table, caption="The toy study's one trial.")]


def narrative(records, profile):
    acc = records[0]["final"]["test_acc"]
    return Narrative(question="Does the toy study reach the paper?", claim="It does.",
                     answer=f"Its trial reached {100 * acc:.2f}% test accuracy.",
                     verdict="supported", verdict_reason="the section exists",
                     headline="The toy study ran.", tables=("toy_table",))


register_study(Study(
    name="toy_paper_study", description="a toy study from outside the package",
    profiles={"smoke": Profile("smoke", "one trial on digits", (Stage("only", {
        "dataset": "digits", "model": "mlp", "model.hidden": (16,), "device": "cpu",
        "epochs": 1, "batch_size": 64, "lr": 0.1}),))},
    summary=summary, narrative=narrative, title="A toy study", order=45))
'''


@needs_ray
@pytest.mark.slow
def test_a_study_file_outside_the_package_is_listed_run_and_reported(tmp_path, ray_cluster):
    (tmp_path / "toy_paper_study.py").write_text(textwrap.dedent(TOY_STUDY))
    env = {**os.environ, "HARNESS_STUDIES": "toy_paper_study", "RAY_ADDRESS": ray_cluster,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    results = tmp_path / "results"

    def harness(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)

    listed = harness("list", "--studies")
    assert listed.returncode == 0 and "toy_paper_study" in listed.stdout.split()
    ran = harness("run", "toy_paper_study", "--profile", "smoke", "--results-dir", str(results),
                  "--runs-dir", str(tmp_path / "runs"))
    assert ran.returncode == 0, ran.stderr[-3000:]
    reported = harness("report", "--profile", "smoke", "--results-dir", str(results), "--no-pdf")
    assert reported.returncode == 0, reported.stderr[-3000:]
    md = (results / "report" / "smoke" / "report.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    # order=45 puts it after denoising (40) and before theory (50).
    assert headings.index("## 5. A toy study (`toy_paper_study`)") == 5
    assert "Does the toy study reach the paper?" in md
    record = json.loads(next((results / "toy_paper_study" / "smoke" / "records").rglob(
        "*.json")).read_text())
    assert f"Its trial reached {100 * record['final']['test_acc']:.2f}% test accuracy." in md
    section = md.split("## 5. A toy study")[1].split("\n## ")[0]
    assert "test accuracy" in section  # the study's own table, inside its section

