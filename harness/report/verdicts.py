"""The verdict tables: every claim a study states up front (harness.evidence.Claim) with
the effect it measures, the estimate and its 95% interval, n, the threshold and the
verdict; one table per study section and one for the whole paper after the abstract, in
Markdown and in LaTeX, and each verdict's sentence saying what would change it."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from harness.evidence import Evidence
from harness.report.latex_text import tex_text
from harness.report.tables import Table, cell_text, latex_escape, render_markdown

ESTIMATE = "estimate [95% interval]"
COLUMNS = ("claim", "effect", ESTIMATE, "n", "threshold", "verdict")
STUDY_COLUMN = "study"
# LaTeX column types: the sentences wrap in the two flexible columns; the short cells get
# fixed widths that fit "inconclusive at this scale", and the estimate above its interval.
_RAGGED = r">{\raggedright\arraybackslash}"
_LATEX_SPECS = {
    "claim": _RAGGED + "X",
    "effect": _RAGGED + "X",
    ESTIMATE: _RAGGED + "p{2.4cm}",
    "n": "r",
    "threshold": _RAGGED + "p{1.55cm}",
    "verdict": _RAGGED + "p{2.6cm}",
}


def verdict_frame(evidence: Sequence[Evidence],
                  studies: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per claim; with ``studies`` (one name per evidence) a first column names
    the study each claim belongs to, and a claim is named only (its statement is in its
    study's section), which keeps the paper's table of every claim short."""
    rows = []
    for item in evidence:
        claim = item.claim
        rows.append({
            "claim": claim.name if studies is not None else f"{claim.name}: {claim.statement}",
            "effect": claim.effect,
            ESTIMATE: item.interval_text(),
            "n": (str(item.interval.n) if item.interval is not None
                  else str(len(item.values)) if item.values else "—"),
            "threshold": claim.threshold_text(),
            "verdict": item.verdict_text(),
        })
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if studies is not None:
        if len(studies) != len(evidence):
            raise ValueError("verdict_frame: one study name per evidence")
        frame.insert(0, STUDY_COLUMN, list(studies))
    return frame


def verdict_markdown(evidence: Sequence[Evidence], caption: str,
                     studies: Sequence[str] | None = None) -> str:
    """The verdict table as a pipe table with its caption line."""
    frame = verdict_frame(evidence, studies)
    return render_markdown(Table("verdicts", frame, caption))


def verdict_latex(evidence: Sequence[Evidence], caption: str, label: str,
                  studies: Sequence[str] | None = None) -> str:
    """The verdict table as an ``xltabular`` (a longtable with X columns): as wide as the
    text, in footnote size, breaking across pages with its header repeated. With
    ``studies``, each study's claims follow a row naming it (a column would take the width
    the effect needs)."""
    frame = verdict_frame(evidence, studies)
    if studies is not None:
        frame = frame.drop(columns=STUDY_COLUMN)
    specs = dict(_LATEX_SPECS)
    if studies is not None:  # claims named only: the effect takes the width they leave
        specs["claim"] = _RAGGED + "p{2.9cm}"
    spec = "".join(specs[column] for column in frame.columns)
    header = " & ".join(latex_escape(column) for column in frame.columns) + r" \\"
    lines = [
        r"\begingroup\footnotesize",
        rf"\begin{{xltabular}}{{\linewidth}}{{{spec}}}",
        rf"  \caption{{{tex_text(caption)}}}\label{{tab:{label}}} \\",
        r"  \toprule", f"  {header}", r"  \midrule", r"  \endfirsthead",
        r"  \toprule", f"  {header}", r"  \midrule", r"  \endhead",
        r"  \bottomrule", r"  \endlastfoot",
    ]
    at = list(frame.columns).index(ESTIMATE)
    previous = None
    for i, (_, row) in enumerate(frame.iterrows()):
        if studies is not None and studies[i] != previous:
            previous = studies[i]
            space = r"\addlinespace " if i else ""
            lines.append(rf"  {space}\multicolumn{{{len(frame.columns)}}}{{l}}"
                         rf"{{\textit{{{latex_escape(previous)}}}}} \\")
        cells = [tex_text(cell_text(v)) for v in row]  # claims hold plain-text formulas
        # The interval stays on one line; a break may fall only before its bracket.
        cells[at] = cells[at].replace(", ", ",~")
        lines.append("  " + " & ".join(cells) + r" \\[2pt]")  # rows of wrapped cells apart
    lines += [r"\end{xltabular}", r"\endgroup"]
    return "\n".join(lines)


def verdict_sentences(evidence: Sequence[Evidence]) -> list[tuple[str, str, str]]:
    """(claim name, verdict with its scale, reason) per claim: the reason gives the
    interval against the threshold, what would change the verdict and its registration."""
    return [(item.claim.name, item.verdict_text(), item.reason()) for item in evidence]
