"""Prose for the paper's .tex: the one place text from the studies and records becomes LaTeX.

The studies write their sentences once, for Markdown and LaTeX alike: inline code and
commands in backticks (`harness run x --profile paper`), mathematics in plain text
(``(lambda/2)||w - w_t||^2``, ``X -> XS - SX``). ``tex_text`` typesets each kind as a LaTeX
author would: code in ``\\texttt`` (every special character escaped, ``--`` kept as two
hyphens, long paths breakable after each slash), maths as inline maths, and everything else
escaped as text, so a backtick, a ``--`` or a bare ``%`` can never reach the PDF.
"""

from __future__ import annotations

import re

from harness.report.ascii_math import ascii_math_latex
from harness.report.latex_escape import latex_escape

_CODE = re.compile(r"`([^`\n]+)`")
# A path or other long run with slashes (results/<study>/<profile>/run.json): it may break
# after each slash, or it would run past the margin.
_PATH = re.compile(r"(?<![\w/])(?:[\w.<>-]+/){2,}[\w.<>*-]*")


def code_latex(code: str) -> str:
    """``code`` as \\texttt: escaped, ``--`` as two hyphens (not an en dash), breakable
    after each slash."""
    escaped = re.sub(r"-(?=-)", "-{}", latex_escape(code))
    return r"\texttt{" + escaped.replace("/", r"/\allowbreak{}") + "}"


def _plain(text: str) -> str:
    """Text outside code: paths breakable, plain-text maths as maths, the rest escaped."""
    out, last = [], 0
    for match in _PATH.finditer(text):
        out.append(ascii_math_latex(text[last:match.start()], latex_escape))
        out.append(latex_escape(match.group(0)).replace("/", r"/\allowbreak{}"))
        last = match.end()
    out.append(ascii_math_latex(text[last:], latex_escape))
    return "".join(out)


def tex_text(text: str) -> str:
    """A sentence from a study or a record as LaTeX: `code` in \\texttt, maths as maths,
    every special character escaped. A lone backtick prints as a grave accent."""
    out, last = [], 0
    for match in _CODE.finditer(text):
        out.append(_plain(text[last:match.start()]))
        out.append(code_latex(match.group(1)))
        last = match.end()
    out.append(_plain(text[last:]))
    tex = "".join(out).replace("`", r"\textasciigrave{}")
    return re.sub(r'"([^"\\{}]*)"', r"``\1''", tex)  # a quotation in TeX's quotes
