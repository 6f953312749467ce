"""Tables fit the page at a readable size: long text wraps, long headers break, the font
steps down to footnotesize at most, and nothing is scaled as a picture."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from harness.report.table_layout import (
    CHAR_PT,
    LINE_PT,
    SMALLEST_FONT,
    WRAP_CHARS,
    plan_layout,
    wrap_words,
)
from harness.report.tables import Table, render_latex

REPO = Path(__file__).resolve().parents[1]
# What shrinks a table below the body's footnotesize: scaling it, or a smaller font.
SHRINKING = re.compile(r"\\(resizebox|scalebox|scriptsize|tiny)\b|max width|adjustbox")


def test_a_narrow_table_keeps_the_body_font() -> None:
    table = Table("t", pd.DataFrame({"loss": ["CE", "focal"], "error (%)": ["7.0 ± 0.1", "6.5 ± 0.2"]}), "c")
    tex = render_latex(table)
    assert r"\small" not in tex and r"\footnotesize" not in tex and "p{" not in tex


def test_a_wide_table_wraps_its_text_and_steps_its_font_down_only_to_footnotesize() -> None:
    frame = pd.DataFrame({
        "model": ["write-up model, 4 blocks / 8 convs, at the stated settings"] * 2,
        **{f"accuracy at setting {i} (%)": ["91.23 ± 0.12", "90.02 ± 1.07"] for i in range(6)},
    })
    tex = render_latex(Table("wide", frame, "c"))
    assert SMALLEST_FONT in tex or r"\small" in tex
    assert r">{\raggedright\arraybackslash}p{" in tex  # the model column wraps
    assert r"\shortstack[r]{accuracy at \\ setting 0 (\%)}" in tex or r"\shortstack[r]{" in tex
    assert not SHRINKING.search(tex)


def test_the_estimated_width_fits_the_line_at_the_chosen_font() -> None:
    cells = {"name": ["x" * 80], "value": ["1.00"]}
    layout = plan_layout(["name", "value"], cells, {"name": False, "value": True}, {})
    assert layout.font == "" and 0 < layout.widths["name"] * LINE_PT <= WRAP_CHARS * CHAR_PT + 0.5
    assert wrap_words("test accuracy (%)", 8) == ["test", "accuracy", "(%)"]


def test_no_committed_table_or_report_is_scaled_below_footnotesize() -> None:
    shrunk = [str(p.relative_to(REPO)) for p in sorted((REPO / "results").rglob("*.tex"))
              + sorted((REPO / "tests" / "golden").rglob("*.tex"))
              if SHRINKING.search(p.read_text())]
    assert shrunk == []


def test_a_long_name_in_a_cell_may_break_after_its_separators() -> None:
    # The deviations tables list keys such as model.base_width,model.convs_per_block: one
    # unbroken run that ran past the margin before it could break after , . _ /.
    import pandas as pd

    from harness.report.tables import Table, render_latex

    tex = render_latex(Table("t", pd.DataFrame({"paper profile": [
        "model.base_width,model.convs_per_block", "0.001"]}), "c"))
    assert r"model.\allowbreak{}base\_\allowbreak{}width,\allowbreak{}model." in tex
    assert r"0.001 \\" in tex  # a short value is left alone
