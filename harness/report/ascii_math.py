"""Plain-text mathematics (``(lambda/2)||w - w_t||^2``, ``<w*, v_t> <= 0``, ``sum_t``) as
LaTeX math, for the paper's .tex: the records and the Markdown keep the plain text, the
PDF typesets it. Anything not recognised is escaped as text, so a sentence stays a
sentence."""

from __future__ import annotations

import re
from collections.abc import Callable

# Names spelled out in the records, and their symbols.
_GREEK = {"lambda": r"\lambda", "eta": r"\eta", "rho": r"\rho", "sigma": r"\sigma",
          "alpha": r"\alpha", "beta": r"\beta", "gamma": r"\gamma"}
_OPERATORS = {"<=": r"\leq", ">=": r"\geq", "sum_t": r"\sum_t", "grad": r"\nabla"}
# A symbol: one letter marked as maths by a star, a subscript (w_t, w_(T+1), v_1) or a
# power (^2, ^-1); a bare letter or a word is text.
_SYMBOL = r"\b[A-Za-z](?:\*|_\([^)]*\)|_[A-Za-z0-9]+|\^-?[A-Za-z0-9]+)+(?![A-Za-z])"
_TOKEN = re.compile(
    r"\|\|[^|]+\|\|(?:\^-?\d+)?"  # a norm, squared or not
    r"|<(?=[^<>]*,)[^<>]+>"  # an inner product <a, b>
    r"|<=|>="
    r"|\bsqrt\([^()]*\)"  # sqrt(T)
    r"|(?<=[)\d])\^-?\d+"  # a power of a bracket or a number: (w-2)^2, 5500^2
    r"|\b(?:" + "|".join(_GREEK) + r"|sum_t|grad)\b"
    r"|" + _SYMBOL
)


def _symbol(text: str) -> str:
    """A symbol's LaTeX: w_(T+1) -> w_{T+1}, w* -> w^*, H^-1 -> H^{-1}."""
    text = re.sub(r"_\(([^)]*)\)", r"_{\1}", text)
    text = re.sub(r"_([A-Za-z0-9]+)", r"_{\1}", text)
    text = re.sub(r"\^(-?[A-Za-z0-9]+)", r"^{\1}", text)
    text = text.replace("*", "^*")
    for name, symbol in _GREEK.items():
        text = re.sub(rf"\b{name}\b", lambda _m, s=symbol: s + " ", text)
    return text


def _math(token: str) -> str:
    if token.startswith("||"):
        body, _, power = token[2:].partition("||")
        inner = " ".join(_symbol(part) for part in body.split(" "))
        return rf"\lVert {inner}\rVert" + (f"^{{{power[1:]}}}" if power else "")
    if token.startswith("<") and token.endswith(">") and "," in token:
        inner = ", ".join(" ".join(_symbol(p) for p in part.strip().split(" "))
                          for part in token[1:-1].split(","))
        return rf"\langle {inner}\rangle"
    if token.startswith("sqrt("):
        return rf"\sqrt{{{' '.join(_symbol(p) for p in token[5:-1].split(' '))}}}"
    if token.startswith("^"):
        return f"^{{{token[1:]}}}"
    if token in _OPERATORS:
        return _OPERATORS[token]
    if token in _GREEK:
        return _GREEK[token]
    return _symbol(token)


def ascii_math_latex(text: str, escape: Callable[[str], str]) -> str:
    """``text`` with its plain-text mathematics set as inline math and the rest escaped."""
    out, last = [], 0
    for match in _TOKEN.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append(f"${_math(match.group(0))}$")
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)
