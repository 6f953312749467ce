"""The generated LaTeX reads like a paper: no Markdown or unescaped characters in it, unique
labels, every table and figure referred to, every citation in the .bib, no 'mean ± sd'
over single-seed rows, chktex clean but for accepted warnings, no page left mostly empty.
Checked on the committed mini report and on the function that makes the text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.report import tex_checks
from harness.report.latex_text import code_latex, tex_text
from harness.report.references import REFERENCES, bibtex, cite_mentions

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "results" / "report" / "mini"
ACCEPTED = [line.split(":")[0] for line in (ROOT / "tests" / "chktex_accepted.txt")
            .read_text().splitlines() if line and not line.startswith("#")]


def _doc(text: str) -> str:
    return "\\begin{document}\n" + text + "\n\\end{document}\n"


def test_code_keeps_its_double_hyphen_and_text_escapes_every_special_character() -> None:
    tex = tex_text("run `harness run x --profile paper` for 100% of #1 & a_b ~ ^ $5 {x}")
    assert r"\texttt{harness run x -{}-profile paper}" in tex
    assert "`" not in tex and tex_checks.text_problems(_doc(tex)) == []
    for char in "%#&$":
        assert "\\" + char in tex
    assert code_latex("results/a/b.json").count(r"\allowbreak{}") == 2


@pytest.mark.parametrize("bad", ["a `code` span", "the --profile flag", "a ^ b",
                                 "a_b", "#1", "~x", "a | b"])
def test_the_check_catches_markdown_and_unescaped_characters(bad: str) -> None:
    assert tex_checks.text_problems(_doc(bad)), bad


def test_labels_refs_and_citations_are_checked() -> None:
    tex = _doc(r"\label{tab:a}\label{tab:a}\label{fig:b} Table~\ref{tab:a} \cite{nosuch}")
    assert tex_checks.duplicate_labels(tex) == ["tab:a"]
    assert tex_checks.unreferenced_floats(tex) == ["fig:b"]
    assert tex_checks.missing_citations(tex, bibtex()) == ["nosuch"]


def test_a_source_is_cited_where_its_number_is_used() -> None:
    tex = cite_mentions(tex_text("airbench94 reached 90.61% on the JPEG copy; see `90.61`"))
    assert r"90.61\%~\cite{airbenchjpeg}" in tex and tex.count(r"\cite{airbenchjpeg}") == 1
    keys = {ref.key for ref in REFERENCES}
    assert {"nvlabsn2n", "writeup", "airbenchjpeg", "yoongikim"} <= keys


def test_sd_captions_over_single_seed_rows_are_caught() -> None:
    assert tex_checks.sd_over_single_seed("accuracy, mean ± sd over seeds", [1, 3])
    assert not tex_checks.sd_over_single_seed("accuracy, mean ± sd over seeds", [3])
    assert not tex_checks.sd_over_single_seed("accuracy, one seed", [1])


def test_the_committed_mini_report_passes_every_text_check() -> None:
    tex = (MINI / "report.tex").read_text()
    assert tex_checks.text_problems(tex) == []
    assert tex_checks.duplicate_labels(tex) == []
    assert tex_checks.unreferenced_floats(tex) == []
    assert tex_checks.missing_citations(tex, (MINI / "report.bib").read_text()) == []
    assert r"\bibliography{report}" in tex


def test_no_results_table_captions_mean_sd_over_a_single_seed_row() -> None:
    import pandas as pd

    for md in sorted(ROOT.glob("results/*/mini/*.csv")):
        frame = pd.read_csv(md)
        if "n" not in frame.columns or md.name == "records.csv":
            continue
        caption_file = md.with_suffix(".md")
        caption = caption_file.read_text() if caption_file.is_file() else ""
        n = [int(v) for v in pd.to_numeric(frame["n"], errors="coerce").dropna()]
        assert not tex_checks.sd_over_single_seed(caption, n), md


@pytest.mark.skipif(shutil.which("chktex") is None, reason="chktex not installed (CI installs it)")
def test_chktex_finds_nothing_beyond_the_accepted_warnings() -> None:
    assert tex_checks.chktex_warnings(MINI / "report.tex", ACCEPTED) == []


@pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
                    reason="poppler-utils not installed")
def test_no_page_is_mostly_empty_but_a_sections_last() -> None:
    assert tex_checks.underfilled_pages(MINI / "report.pdf") == []


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_page_fill_sees_a_page_used_only_at_its_top_and_one_with_a_hole(tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    pages = []
    for blocks in ([(0.1, 0.3)], [(0.1, 0.3), (0.85, 0.9)], [(0.1, 0.9)]):
        page = Image.new("L", (595, 842), 255)  # A4 at 72 dpi
        for top, bottom in blocks:
            ImageDraw.Draw(page).rectangle([80, int(top * 842), 500, int(bottom * 842)], fill=0)
        pages.append(page.convert("RGB"))
    pdf = tmp_path / "pages.pdf"
    pages[0].save(pdf, save_all=True, append_images=pages[1:], resolution=72)
    top_only, holed, full = tex_checks.page_fill(pdf)
    assert top_only < 0.3 and holed < 0.4 and full > 0.9
