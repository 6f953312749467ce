"""`harness report`: the paper built from the studies' results, byte for byte the same from
the same records, honest about what was not run, and never training anything.

The fixture holds real smoke-profile records of three studies (imbalance, memorization,
theory; made with `harness run STUDY --profile smoke`); cnn_search and denoising are
deliberately absent so the report must list them as not run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.report import paper
from harness.results import rebuild_tables

FIXTURE = Path(__file__).parent / "fixtures" / "report"
GOLDEN = Path(__file__).parent / "golden" / "report"
STUDIES = ("imbalance", "memorization", "theory")


@pytest.fixture(scope="module", autouse=True)
def shipped_studies_only() -> Iterator[None]:
    """The paper of the shipped studies: test modules register studies of their own (tiny,
    determinism) when they are imported, and the paper would give each a section."""
    import pkgutil

    import studies
    from harness.study import STUDIES, list_studies

    list_studies()  # every shipped study imported and registered
    shipped = {m.name for m in pkgutil.iter_modules(studies.__path__)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(STUDIES, "_entries", {k: v for k, v in STUDIES._entries.items() if k in shipped})
        mp.setattr("harness.study._discover", lambda: None)
        yield


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, shipped_studies_only: None) -> Path:
    """A results folder rebuilt from the fixture records (tables, figures, run.json)."""
    root = tmp_path_factory.mktemp("results")
    for study in STUDIES:
        folder = root / study / "smoke"
        folder.mkdir(parents=True)
        shutil.copytree(FIXTURE / study / "smoke" / "records", folder / "records")
        shutil.copyfile(FIXTURE / study / "smoke" / "run.json", folder / "run.json")
        rebuild_tables(study, "smoke", runs_dir=root / "no-runs", results_dir=root,
                       echo=lambda _line: None, from_results=True)
    return root


@pytest.fixture(scope="module")
def report_md(results: Path) -> str:
    """The smoke report built from the fixture records (each test that reads it builds it,
    so any test passes alone and in any order)."""
    paper.write_report("smoke", results, pdf=False)
    return (results / "report" / "smoke" / "report.md").read_text()


def test_the_report_matches_its_golden_files(results: Path) -> None:
    written = paper.write_report("smoke", results, pdf=False)
    assert [p.name for p in written] == ["report.md", "report.bib", "report.tex"]
    if os.environ.get("HARNESS_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for path in written:
            shutil.copyfile(path, GOLDEN / path.name)
    for path in written:
        assert path.read_text() == (GOLDEN / path.name).read_text(), (
            f"{path.name} differs from {GOLDEN / path.name}; if intended, regenerate with "
            "HARNESS_UPDATE_GOLDEN=1 and review the diff")


@pytest.mark.slow
def test_the_same_records_give_byte_identical_reports(results: Path, tmp_path: Path) -> None:
    first = [p.read_bytes() for p in paper.write_report("smoke", results, pdf=False)]
    copy = tmp_path / "copy"
    shutil.copytree(results, copy, ignore=shutil.ignore_patterns("report"))
    second = [p.read_bytes() for p in paper.write_report("smoke", copy, pdf=False)]
    # The figures' paths are relative, so a copy elsewhere gives the same bytes.
    assert first == second


def test_sections_follow_the_write_up_and_say_what_was_not_run(report_md: str) -> None:
    md = report_md
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Abstract",
        "## Verdicts",
        "## 1. CNN architecture search (`cnn_search`)",
        "## 2. Class imbalance and loss functions (`imbalance`)",
        "## 3. Memorization of random labels (Zhang et al., ICLR 2017) (`memorization`)",
        "## 4. Denoising with noisy targets (Noise2Noise) (`denoising`)",
        "## 5. The write-up's theory, checked numerically (`theory`)",
        "## Compute",
        "## Cost of the paper profile",
        "## Limitations",
        "## Reproduction",
        "## References",
        "## Appendix: the records behind each row",
    ]
    assert "Not run at the smoke profile. To run it: `harness run cnn_search --profile smoke`" in md
    assert "Not run at the smoke profile. To run it: `harness run denoising --profile smoke`" in md
    assert md.count("**Verdicts on the write-up's claims: ") == 3
    assert "Not run at this profile: cnn_search, denoising." in md


def test_every_number_in_a_section_comes_from_its_records(results: Path, report_md: str) -> None:
    from harness.records import load_records
    from harness.study import get_study

    md = report_md
    records = load_records(results / "theory" / "smoke" / "records")
    # The same results folder the report read: theory's narrative uses denoising's results.
    text = get_study("theory").narrate(records, "smoke", results)
    assert text.answer in md and text.headline in md
    # The claims table's wrong numbers are the computed ones (5,610; 3.099).
    assert "5,610" in md and "3.099" in md
    imbalance = load_records(results / "imbalance" / "smoke" / "records")
    assert f"sha256 {imbalance[0]['data']['sha256']}" in md  # the data the trials read


def test_the_report_never_trains(results: Path, monkeypatch) -> None:
    import harness.train

    def refuse(*_args, **_kwargs):
        raise AssertionError("harness report trained a model")

    monkeypatch.setattr(harness.train, "train", refuse)
    paper.write_report("smoke", results, pdf=False)


@pytest.mark.skipif(paper.latex_engine() is None, reason="no LaTeX engine installed")
@pytest.mark.slow
def test_the_latex_report_compiles_to_a_pdf(results: Path) -> None:
    written = paper.write_report("smoke", results, pdf=True)
    pdf = written[-1]
    assert pdf.name == "report.pdf" and pdf.read_bytes().startswith(b"%PDF")
    assert not list(pdf.parent.glob(".latex-*"))  # the build folder is gone
    assert not list(pdf.parent.glob("*.aux"))


REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "results"


@pytest.mark.skipif(not (COMMITTED / "report" / "mini" / "report.md").is_file(),
                    reason="no committed mini report")
@pytest.mark.slow
def test_the_committed_mini_report_is_what_the_committed_results_give(tmp_path) -> None:
    # A copy of results/ without the report, rebuilt: the committed report must not drift
    # from the committed results, and its LaTeX must compile where an engine is installed.
    copy = tmp_path / "results"
    shutil.copytree(COMMITTED, copy, ignore=shutil.ignore_patterns("report", "*.pdf"))
    written = paper.write_report("mini", copy, pdf=paper.latex_engine() is not None)
    for name in ("report.md", "report.bib", "report.tex"):
        assert (copy / "report" / "mini" / name).read_text() == (
            COMMITTED / "report" / "mini" / name).read_text(), (
            f"results/report/mini/{name} is stale: run `harness report --profile mini`")
    if paper.latex_engine() is not None:
        assert written[-1].name == "report.pdf"


def _unused_outputs(results_dir: Path, profile: str) -> list[str]:
    """Outputs a study's summary wrote that its section of the paper does not show."""
    from harness.report.sections import DEVIATIONS, build_sections

    unused = []
    for section in build_sections(profile, results_dir):
        index = results_dir / section.study / profile / "outputs.json"
        if section.narrative is None or not index.is_file():
            continue
        shown = {*section.narrative.tables, *section.narrative.figures, DEVIATIONS}
        unused += [f"{section.study}/{o['name']}" for o in json.loads(index.read_text())
                   if o["name"] not in shown]
    return unused


@pytest.mark.slow
def test_every_table_and_figure_a_study_makes_is_in_the_paper(results: Path) -> None:
    assert _unused_outputs(results, "smoke") == []
    if (COMMITTED / "report" / "mini" / "report.md").is_file():
        assert _unused_outputs(COMMITTED, "mini") == []


def test_the_smoke_reports_latex_passes_the_text_checks(results: Path) -> None:
    # The same checks as on the committed mini report (tests/test_paper_tex.py), on a report
    # built here from the fixture records: Markdown, '--' and special characters never leak,
    # labels are unique, every float is referred to, every citation is in the .bib.
    from harness.report import tex_checks

    paper.write_report("smoke", results, pdf=False)
    folder = results / "report" / "smoke"
    tex = (folder / "report.tex").read_text()
    assert tex_checks.text_problems(tex) == []
    assert tex_checks.duplicate_labels(tex) == []
    assert tex_checks.unreferenced_floats(tex) == []
    assert tex_checks.missing_citations(tex, (folder / "report.bib").read_text()) == []
    if shutil.which("chktex"):  # CI installs it (.ci/run)
        accepted = [line.split(":")[0] for line in (Path(__file__).parent / "chktex_accepted.txt")
                    .read_text().splitlines() if line and not line.startswith("#")]
        assert tex_checks.chktex_warnings(folder / "report.tex", accepted) == []
