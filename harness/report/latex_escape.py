"""LaTeX escaping of plain text: special characters and the Unicode symbols the tables use,
spelt so pdflatex sets them (one function, used by the tables and the prose alike)."""

from __future__ import annotations

_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # With the default OT1 font encoding these print as other glyphs unless escaped.
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    # Unicode that tables here actually use; pdflatex without inputenc chokes on it.
    "±": r"$\pm$",
    "×": r"$\times$",
    "−": r"$-$",
    # Dashes as commands, so a "--" in the .tex is always a mistake (a flag lost to an en dash).
    "—": r"\textemdash{}",
    "–": r"\textendash{}",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "≈": r"$\approx$",
    "→": r"$\rightarrow$",
    "α": r"$\alpha$",
    "β": r"$\beta$",
    "γ": r"$\gamma$",
    "λ": r"$\lambda$",
    "η": r"$\eta$",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters and spell common Unicode symbols in LaTeX."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
