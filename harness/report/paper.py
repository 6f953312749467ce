"""The paper: every study's results assembled into one report (Markdown, LaTeX, PDF).

``harness report --profile P`` reads results/<study>/<profile>/ (the records, the tables
and figures the studies' summaries wrote, run.json) and writes results/report/<P>/report.md,
report.bib (its references, harness.report.references) and report.tex, and report.pdf when
a LaTeX engine is installed. It never trains. Each
study's section comes from its ``narrative`` (question, the write-up's claim, the measured
answer and a verdict, every number computed from the records) and from facts read off the
records here (models and sizes, recipe, data and its sha256, seeds, machine, commit, wall
time). A study or profile that has not been run is listed as not run, with the command that
would run it. The same records give byte-identical .md and .tex: nothing here reads a
clock, and every list is sorted.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.report.back_matter import back_matter
from harness.report.pdf import compile_pdf, latex_engine
from harness.report.references import bibtex
from harness.report.render import BIB_NAME, render_latex, render_markdown
from harness.report.sections import build_sections, report_studies

__all__ = ["REPORT_DIR", "check_report_profile", "compile_pdf", "latex_engine", "write_report"]

REPORT_DIR = "report"


def check_report_profile(profile: str) -> None:
    """A report is of a profile some study defines: any other name is a typo, refused
    before anything is written (else it would be a paper of 'not run' sections)."""
    known = sorted({name for study in report_studies() for name in study.profiles})
    if profile not in known:
        raise HarnessError(f"no study has a profile {profile!r}; choose one of: {', '.join(known)}")


def write_report(profile: str, results_dir: Path, pdf: bool = True) -> list[Path]:
    """Write results/report/<profile>/report.{md,tex} (and .pdf); returns the paths."""
    from harness.files import write_text_atomic

    check_report_profile(profile)
    sections = build_sections(profile, results_dir)
    out_dir = results_dir / REPORT_DIR / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    back = back_matter(sections, results_dir)
    written = [
        write_text_atomic(out_dir / "report.md", render_markdown(sections, profile, out_dir, back)),
        write_text_atomic(out_dir / f"{BIB_NAME}.bib", bibtex()),
        write_text_atomic(out_dir / "report.tex", render_latex(sections, profile, out_dir, back)),
    ]
    if pdf:
        made = compile_pdf(out_dir / "report.tex")
        if made is not None:
            written.append(made)
    return written
