"""Checks on a generated report.tex and its PDF, for the tests and for a reader who edits
the renderer: Markdown or unescaped characters that leak into the LaTeX, labels defined
twice, floats never referred to, citations missing from the .bib, "mean ± sd" captions over
single-seed rows, and pages the float placement left mostly empty."""

from __future__ import annotations

import re
import subprocess
from itertools import pairwise
from pathlib import Path

INK = 245  # grey levels below this are ink: text, and a plot's light grid lines too
_VERBATIM = re.compile(r"\\begin\{verbatim\}.*?\\end\{verbatim\}", re.S)
_TEXTTT = re.compile(r"\\texttt\{(?:[^{}]|\{\})*\}")
_MATH = re.compile(r"\$[^$]*\$")
# Arguments that hold names, not text: labels, refs, cites, file names, column specs.
_NAME_ARGS = re.compile(r"\\(?:label|ref|cite|nocite|includegraphics(?:\[[^\]]*\])?|"
                        r"bibliography|bibliographystyle|begin|end|usepackage(?:\[[^\]]*\])?|"
                        r"documentclass(?:\[[^\]]*\])?)\{[^}]*\}(?:\{[^}]*\})?")


def body(tex: str) -> str:
    """The document body without comments and verbatim blocks."""
    tex = tex.split(r"\begin{document}", 1)[-1]
    tex = _VERBATIM.sub("", tex)
    return "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in tex.splitlines())


def text_problems(tex: str) -> list[str]:
    """Backticks, '--' outside \\texttt and unescaped special characters in the text."""
    problems = []
    text = _NAME_ARGS.sub("", re.sub(r"~\\(?:cite|ref)\{[^}]*\}", "", body(tex)))
    for number, line in enumerate(text.splitlines(), 1):
        if re.search(r"\\begin\{(?:tabular|xltabular|longtable)\}|\\arraybackslash", line):
            continue  # a column spec: > and | are its syntax
        if "`" in re.sub(r"``[^`']*''", "", line):  # TeX's own quotes are fine
            problems.append(f"line {number}: a backtick: {line.strip()[:90]}")
        outside = _MATH.sub("", _TEXTTT.sub("", line))
        if "--" in outside.replace(r"\cmidrule", ""):
            problems.append(f"line {number}: '--' outside \\texttt: {line.strip()[:90]}")
        bare = re.sub(r"\\[a-zA-Z]+\*?|\\.", "", outside)  # commands and escapes
        if line.rstrip().endswith("\\\\") or "&" not in bare:  # '&' is a tabular column
            bare = bare.replace("&", "")
        if re.search(r"(?:^|\s)~", bare):  # a tie joins two words; a lone ~ was text
            problems.append(f"line {number}: unescaped '~': {line.strip()[:90]}")
        for char in "#%_^<>|$":
            if char in bare:
                problems.append(f"line {number}: unescaped {char!r}: {line.strip()[:90]}")
    return problems


def labels(tex: str) -> list[str]:
    return re.findall(r"\\label\{([^}]*)\}", tex)


def duplicate_labels(tex: str) -> list[str]:
    seen = labels(tex)
    return sorted({label for label in seen if seen.count(label) > 1})


def unreferenced_floats(tex: str) -> list[str]:
    """Table and figure labels that no \\ref in the text points to."""
    refs = set(re.findall(r"\\ref\{([^}]*)\}", tex))
    return [label for label in labels(tex)
            if label.startswith(("tab:", "fig:")) and label not in refs]


def missing_citations(tex: str, bib: str) -> list[str]:
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited = {key.strip() for group in re.findall(r"\\cite[pt]?\{([^}]*)\}", tex)
             for key in group.split(",")}
    return sorted(cited - keys)


def sd_over_single_seed(caption: str, n_values: list[int]) -> bool:
    """A caption that promises a mean ± sd over rows of which some have n = 1."""
    return bool(re.search(r"±\s*sd|\\pm\$?\s*sd|mean \+- sd", caption)) and 1 in n_values


def chktex_warnings(tex: Path, accepted: list[str]) -> list[str]:
    """chktex's warnings on ``tex`` that are not in ``accepted`` (warning numbers)."""
    args = ["chktex", "-q", "-v0", "-I0", *[f"-n{n}" for n in accepted], str(tex)]
    result = subprocess.run(args, capture_output=True, text=True, cwd=tex.parent, timeout=120)
    return [line for line in result.stdout.splitlines() if line.strip()]


def page_fill(pdf: Path, dpi: int = 30) -> list[float]:
    """Per page, the share of the text block's height in use: from the first ink to the
    last, less every white gap taller than a few lines (a float pushed to the bottom leaves
    such a hole)."""
    import tempfile

    from PIL import Image

    fills = []
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", str(pdf), f"{folder}/p"],
                       check=True, timeout=300)
        for png in sorted(Path(folder).glob("p-*.pgm")):
            with Image.open(png) as image:
                width, height = image.size
                pixels = image.load()
                margin = 2.2 / 29.7 * height  # geometry's margins
                bottom = int(height - margin + 0.2 / 29.7 * height)  # the page number is below
                inked = [y for y in range(bottom)
                         if any(pixels[x, y] < INK for x in range(0, width, 2))]
            block = height - 2 * margin
            if not inked:
                fills.append(0.0)
                continue
            hole = 0.06 * block  # about four lines of text
            gaps = sum(b - a for a, b in pairwise(inked) if b - a > hole)
            fills.append(max(0.0, (inked[-1] - inked[0] - gaps) / block))
    return fills


def section_last_pages(pdf: Path) -> set[int]:
    """Pages (1-based) after which a new section starts on the next page's top, or the
    document ends: a page there may be short."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=120).stdout
    pages = text.split("\f")
    last = {len([p for p in pages if p.strip()])}
    for number, page in enumerate(pages[1:], start=1):
        head = [line.strip() for line in page.splitlines() if line.strip()][:2]
        if any(re.match(r"^(\d+|[A-Z])\s{1,3}[A-Z][a-z]", line) for line in head):
            last.add(number)
    return last


def underfilled_pages(pdf: Path, least: float = 0.6) -> list[tuple[int, float]]:
    """Pages under ``least`` full that are not the last page of a section."""
    exempt = section_last_pages(pdf)
    return [(number, round(fill, 2)) for number, fill in enumerate(page_fill(pdf), start=1)
            if fill < least and number not in exempt]
