"""report.tex compiled to report.pdf with the LaTeX engine installed (latexmk, else
pdflatex), in a build folder that is removed afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import HarnessError


def latex_engine() -> list[str] | None:
    if shutil.which("latexmk"):
        return ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-quiet"]
    if shutil.which("pdflatex") and shutil.which("bibtex"):
        return ["pdflatex", "-interaction=nonstopmode", "-halt-on-error"]
    return None


def compile_pdf(tex: Path) -> Path | None:
    """report.tex -> report.pdf beside it (None without a LaTeX engine). Built in a temp
    folder so a failed build leaves no half-written PDF; dated 1970 so the same .tex gives
    the same PDF."""
    engine = latex_engine()
    if engine is None:
        return None
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}
    with tempfile.TemporaryDirectory(prefix=".latex-", dir=tex.parent) as build:
        # pdflatex, bibtex (the references), then twice more for citations and \ref.
        latex = [*engine, f"-output-directory={build}", tex.name]
        bibtex = ["bibtex", tex.stem]  # run in the build folder, finds the .bib by BIBINPUTS
        steps = [latex] if engine[0] == "latexmk" else [latex, bibtex, latex, latex]
        for command in steps:
            result = subprocess.run(
                command, cwd=build if command is bibtex else tex.parent,
                env={**env, "BIBINPUTS": f"{tex.parent}{os.pathsep}"},
                capture_output=True, text=True, timeout=600,
            )
            if result.returncode != 0:
                log = Path(build, tex.with_suffix(".log").name)
                tail = log.read_text(errors="replace")[-2500:] if log.exists() else result.stdout[-2500:]
                raise HarnessError(f"LaTeX failed on {tex}:\n{tail}")
        target = tex.with_suffix(".pdf")
        os.replace(Path(build, target.name), target)
    return target
