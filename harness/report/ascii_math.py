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
_OPERATORS = {"<=": r"\leq", ">=": r"\geq", "->": r"\to", "sum_t": r"\sum_t",
              "grad": r"\nabla"}
# A map between capital-letter terms (X -> XS - SX), set whole.
_MAP = r"\b[A-Z]{1,2} -> [A-Z]{1,2}(?: [-+] [A-Z]{1,2})*\b"
# A symbol: one letter marked as maths by a star, a subscript (w_t, w_(T+1), v_1) or a
# power (^2, ^-1); a bare letter or a word is text.
_SYMBOL = r"\b[A-Za-z](?:\*|_\([^)]*\)|_[A-Za-z0-9]+|\^-?[A-Za-z0-9]+)+(?![A-Za-z])"
_TOKEN = re.compile(
    _MAP + r"|\|\|[^|]+\|\|(?:\^-?\d+)?"  # a norm, squared or not
    r"|<(?=[^<>]*,)[^<>]+>"  # an inner product <a, b>
    r"|<=|>=|(?<= )->(?= )"
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
    if re.fullmatch(_MAP, token):
        left, right = token.split(" -> ")
        return rf"{left} \mapsto {right}"
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


# What may sit between two mathematical tokens of one formula: operators, brackets, numbers
# and one-letter symbols ("B rho / sqrt(T)", "w_t - (1/lambda) grad f(w_t)"); a word ends it.
_GLUE = re.compile(r"(?:[ ()/+=*-]|\b[A-Za-z]\b|\b\d+(?:\.\d+)?\b)*")
_LEFT = re.compile(r"(?:(?<![\w.])[B-HJ-Zb-z](?:\d)? ?)?\(?$")  # "f(", "B ", not "a "


def _glue_math(gap: str) -> str:
    return gap.replace("*", r"\cdot ")


def _runs(text: str) -> list[tuple[int, int, list[re.Match[str]]]]:
    """Spans of ``text`` that are one formula each: adjacent tokens joined by glue, widened
    to their brackets and a one-letter function name ("f(w_t)")."""
    runs: list[tuple[int, int, list[re.Match[str]]]] = []
    for match in _TOKEN.finditer(text):
        if runs:
            start, end, tokens = runs[-1]
            gap = text[end:match.start()]
            if len(gap) <= 12 and _GLUE.fullmatch(gap) and match.group(0) != "->":
                runs[-1] = (start, match.end(), [*tokens, match])
                continue
        runs.append((match.start(), match.end(), [match]))
    out = []
    for start, end, tokens in runs:
        if len(tokens) == 1 and tokens[0].group(0) == "->":
            out.append((start, end, tokens))
            continue
        if text[start - 1:start] == ")":  # a power of a bracket: (w-2)^2
            start -= 1
        if tokens[-1].group(0) in ("<=", ">="):  # its right-hand side: <= 0
            number = re.match(r" ?-?\d+(?:\.\d+)?", text[end:])
            end += number.end() if number else 0
        depth = text[start:end].count("(") - text[start:end].count(")")
        while depth < 0:  # a bracket closed inside: take in where it opened
            opened = text.rfind("(", 0, start)
            if opened < 0 or not _GLUE.fullmatch(text[opened:start]):
                break
            start = opened
            depth = text[start:end].count("(") - text[start:end].count(")")
        while depth > 0 and text[end:end + 1] == ")":
            end, depth = end + 1, depth - 1
        left = _LEFT.search(text[:start])
        if left and left.group(0) and not left.group(0).endswith("("):
            start = left.start()
        elif left and left.group(0) and text[end:end + 1] == ")":
            start, end = left.start(), end + 1
        out.append((start, end, tokens))
    return out


def ascii_math_latex(text: str, escape: Callable[[str], str]) -> str:
    """``text`` with its plain-text mathematics set as inline math and the rest escaped;
    tokens of one formula (joined only by operators, brackets, numbers and one-letter
    symbols) share one math span, so "B rho / sqrt(T)" is set whole."""
    out, last = [], 0
    for start, end, tokens in _runs(text):
        out.append(escape(text[last:start]))
        pieces, at = [], start
        for token in tokens:
            pieces.append(_glue_math(text[at:token.start()]))
            pieces.append(_math(token.group(0)))
            at = token.end()
        pieces.append(_glue_math(text[at:end]))
        out.append("$" + "".join(pieces).strip() + "$" + (" " if text[end - 1:end] == " " else ""))
        last = end
    out.append(escape(text[last:]))
    return "".join(out)
