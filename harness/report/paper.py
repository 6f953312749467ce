"""The paper: every study's results assembled into one report (Markdown, LaTeX, PDF).

``harness report --profile P`` reads results/<study>/<profile>/ (the records, the tables
and figures the studies' summaries wrote, run.json) and writes results/report/<P>/report.md
and report.tex, and report.pdf when a LaTeX engine is installed. It never trains. Each
study's section comes from its ``narrative`` (question, the write-up's claim, the measured
answer and a verdict, every number computed from the records) and from facts read off the
records here (models and sizes, recipe, data and its sha256, seeds, machine, commit, wall
time). A study or profile that has not been run is listed as not run, with the command that
would run it. The same records give byte-identical .md and .tex: nothing here reads a
clock, and every list is sorted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.records import finished, load_records
from harness.report.tables import data_caption, latex_escape
from harness.study import Narrative, Study, get_study, list_studies

# The write-up's order: Part 1, Part 2, the paper review, claim 7's study, the theory.
STUDY_ORDER = ("cnn_search", "imbalance", "memorization", "denoising", "theory")
TITLES = {
    "cnn_search": "CNN architecture search",
    "imbalance": "Class imbalance and loss functions",
    "memorization": "Memorization of random labels (Zhang et al., ICLR 2017)",
    "denoising": "Denoising with noisy targets (Noise2Noise)",
    "theory": "The write-up's theory, checked numerically",
}
REPORT_DIR = "report"
_RECIPE_KEYS = ("epochs", "batch_size", "optimizer", "lr", "schedule", "weight_decay", "loss")


@dataclass
class Section:
    study: str
    title: str
    profile: str
    command: str
    narrative: Narrative | None = None
    setup: list[tuple[str, str]] = field(default_factory=list)
    tables: list[tuple[str, str, str]] = field(default_factory=list)  # name, md, tex
    figures: list[tuple[str, str, Path]] = field(default_factory=list)  # name, caption, png

    @property
    def ran(self) -> bool:
        return self.narrative is not None


# ---------------------------------------------------------------------------- facts


def _fmt_int(value: float) -> str:
    return f"{int(value):,}"


def _values(records: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    seen = {json.dumps(r["config"].get(key), sort_keys=True) for r in records if key in r["config"]}
    return [json.loads(v) for v in sorted(seen)]


def _describe_values(values: list[Any]) -> str:
    if len(values) <= 4:
        return ", ".join(str(v) for v in values)
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) == len(values):
        return f"{min(numbers):.3g} to {max(numbers):.3g} ({len(values)} values, searched)"
    return f"{len(values)} values"


def _models(records: Sequence[Mapping[str, Any]]) -> str:
    sizes: dict[str, tuple[int, int]] = {}
    for record in records:
        config = record["config"]
        if "model" not in config or record.get("num_params") is None:
            continue
        options = ", ".join(f"{k[6:]}={v}" for k, v in sorted(config.items())
                            if k.startswith("model."))
        name = f"{config['model']}" + (f" ({options})" if options else "")
        sizes[name] = (int(record["num_params"]), int(record.get("macs_per_image") or 0))
    if not sizes:
        return ""
    if len(sizes) > 6:
        params = [p for p, _ in sizes.values()]
        return (f"{len(sizes)} model configurations, {_fmt_int(min(params))} to "
                f"{_fmt_int(max(params))} parameters")
    return "; ".join(f"{name}: {_fmt_int(p)} parameters, {_macs(m)} MACs per image"
                     for name, (p, m) in sorted(sizes.items()))


def _macs(count: int) -> str:
    return f"{count / 1e6:.1f} M" if count >= 100_000 else f"{count / 1e3:.1f} k"


def setup_facts(records: list[dict[str, Any]], run: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """What the section's setup paragraph says, read off the records (and run.json)."""
    done = finished(records) or records
    facts: list[tuple[str, str]] = []
    models = _models(done)
    if models:
        facts.append(("models", models))
    recipe = "; ".join(f"{key.replace('_', ' ')} {_describe_values(_values(done, key))}"
                       for key in _RECIPE_KEYS if _values(done, key))
    if recipe:
        facts.append(("recipe", recipe))
    sources = sorted({(r["data"].get("source"), r["data"].get("sha256")) for r in done
                      if r.get("data")}, key=str)
    sizes = sorted({r["data"].get("train_size") for r in done if r.get("data", {}).get("train_size")})
    data = data_caption(done)
    if sizes:
        data += (f", {_fmt_int(sizes[0])} training images" if len(sizes) == 1 else
                 f", {_fmt_int(sizes[0])} to {_fmt_int(sizes[-1])} training images")
    shas = [sha for _, sha in sources if sha]
    if shas:
        data += "; sha256 " + ", ".join(shas)
    facts.append(("data", data))
    repeats = sorted({int(r["config"].get("repeat", 0)) for r in done})
    facts.append(("seeds", f"{len(repeats)} per configuration (repeat index "
                           f"{', '.join(map(str, repeats))}); seeds hashed from each config"))
    machines = sorted({(r.get("environment") or {}).get("device_name") or "unknown" for r in done})
    torches = sorted({(r.get("environment") or {}).get("torch") or "?" for r in done})
    facts.append(("machine", f"{'; '.join(machines)}; torch {', '.join(torches)}"))
    commits = sorted({((r.get("environment") or {}).get("git_commit") or "unknown")[:12]
                      for r in done})
    facts.append(("commit", ", ".join(commits)))
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    trial_hours = sum(float(r.get("wall_seconds") or 0) for r in records) / 3600
    wall = f"{len(records)} trials ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))})"
    if run and run.get("wall_seconds") is not None:
        wall += f"; the run took {float(run['wall_seconds']) / 60:.1f} min"
    wall += f"; trials' own time {trial_hours:.2f} h in all"
    facts.append(("trials", wall))
    return facts


# ---------------------------------------------------------------------------- sections


def _results_folder(results_dir: Path, study: str, profile: str) -> Path:
    return results_dir / study / profile


def build_section(study: Study, profile: str, results_dir: Path) -> Section:
    folder = _results_folder(results_dir, study.name, profile)
    section = Section(
        study.name, TITLES.get(study.name, study.description), profile,
        command=f"harness run {study.name} --profile {profile}",
    )
    if profile not in study.profiles:
        section.command = f"(study {study.name} has no {profile} profile)"
        return section
    records_dir = folder / "records"
    if study.narrative is None or not records_dir.is_dir() or not any(records_dir.rglob("*.json")):
        return section
    records = load_records(records_dir)
    if not finished(records):
        return section
    run_file = folder / "run.json"
    run = json.loads(run_file.read_text()) if run_file.is_file() else None
    section.narrative = study.narrative(records, profile)
    section.setup = setup_facts(records, run)
    for name in section.narrative.tables:
        md, tex = folder / f"{name}.md", folder / f"{name}.tex"
        if md.is_file() and tex.is_file():
            section.tables.append((name, md.read_text(), tex.read_text()))
    captions = {}
    if (folder / "outputs.json").is_file():
        captions = {o["name"]: o["caption"] for o in json.loads((folder / "outputs.json").read_text())}
    for name in section.narrative.figures:
        png = folder / f"{name}.png"
        if png.is_file():
            section.figures.append((name, captions.get(name, name), png))
    return section


def report_studies() -> list[Study]:
    names = list_studies()
    ordered = [n for n in STUDY_ORDER if n in names]
    return [get_study(n) for n in ordered]


def build_sections(profile: str, results_dir: Path) -> list[Section]:
    from harness.results import using_results_dir

    with using_results_dir(results_dir):  # a narrative may cite another study's results
        return [build_section(study, profile, results_dir) for study in report_studies()]


# ---------------------------------------------------------------------------- text


def limitations(sections: Sequence[Section], profile: str) -> list[str]:
    """Limitations computed from what the sections ran on."""
    text = []
    setups = [dict(s.setup) for s in sections if s.ran]
    data = " ".join(s.get("data", "") for s in setups)
    machines = " ".join(s.get("machine", "") for s in setups)
    if profile != "paper":
        text.append(f"Scale: the {profile} profile shrinks every study (subsets, smaller "
                    "networks, fewer epochs) to fit a small machine; its absolute numbers sit "
                    "below the published ones, and a verdict 'not supported at this scale' "
                    "says nothing about the full-scale claim.")
    if "JPEG" in data:
        text.append("Data: CIFAR-10 here is a JPEG (quality 75) copy, not the canonical "
                    "pixels; airbench94's recipe reaches 90.61% on it against 94.01% on "
                    "canonical CIFAR-10, so expect classification accuracies 3 to 4 points "
                    "below published figures.")
    if machines and "GPU" not in machines and "NVIDIA" not in machines:
        text.append("Hardware: every trial here ran on a CPU; speeds and the GPU-only "
                    "recipes (bf16, torch.compile) are not measured by this report.")
    missing = [s.study for s in sections if not s.ran]
    if missing:
        text.append(f"Not run at this profile: {', '.join(missing)}.")
    return text


def reproduction(sections: Sequence[Section], profile: str) -> list[str]:
    lines = ["python3 -m pip install -e '.[tune,dev]'",
             "export HARNESS_DATA=/path/to/folder/with/cifar10-jpeg.tar.gz"]
    lines += [s.command for s in sections if not s.command.startswith("(")]
    lines.append(f"harness report --profile {profile}")
    return lines


def abstract(sections: Sequence[Section], profile: str) -> str:
    ran = [s for s in sections if s.ran]
    if not ran:
        return f"No study has been run at the {profile} profile yet."
    parts = [s.narrative.headline for s in ran if s.narrative and s.narrative.headline]
    return (f"This report re-examines the write-up's claims with {len(ran)} studies run at "
            f"the {profile} profile. " + " ".join(parts))


def render_markdown(sections: Sequence[Section], profile: str, out_dir: Path) -> str:
    lines = [
        f"# Re-examining a deep-learning write-up ({profile} profile)",
        "",
        f"*Generated by `harness report --profile {profile}` from the trial records under "
        "results/; every number below is computed from them. Regenerate it after a run; "
        "do not edit it.*",
        "",
        "## Abstract",
        "",
        abstract(sections, profile),
        "",
    ]
    for number, section in enumerate(sections, start=1):
        lines += [f"## {number}. {section.title} (`{section.study}`)", ""]
        if not section.ran:
            lines += [f"Not run at the {profile} profile. To run it: `{section.command}`.", ""]
            continue
        n = section.narrative
        assert n is not None
        lines += [f"**Question.** {n.question}", "", f"**The write-up's claim.** {n.claim}", "",
                  "**Setup.**", ""]
        lines += [f"- {label}: {text}" for label, text in section.setup] + [""]
        for _name, md, _tex in section.tables:
            lines += [md.rstrip(), ""]
        for name, caption, png in section.figures:
            rel = Path(os.path.relpath(png, out_dir)).as_posix()
            lines += [f"![{name}]({rel})", "", f"*{caption}*", ""]
        lines += [f"**Answer.** {n.answer}", ""]
        if n.published:
            lines += [f"**Published figures.** {n.published}", ""]
        lines += [f"**Verdict on the write-up's claim: {n.verdict}.** {n.verdict_reason}", ""]
    lines += ["## Limitations", ""]
    lines += [f"- {item}" for item in limitations(sections, profile)] + [""]
    lines += ["## Reproduction", "", "```bash", *reproduction(sections, profile), "```", ""]
    return "\n".join(lines)


_TEX_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[a4paper,margin=2.2cm]{geometry}
\usepackage{booktabs}
\usepackage{array}
\usepackage{graphicx}
\usepackage{adjustbox}
\usepackage{float}
\usepackage[hidelinks]{hyperref}
\setlength{\parskip}{0.4em}
\setlength{\parindent}{0pt}
"""


def breakable(text: str) -> str:
    """LaTeX text where long unbroken runs (a sha256, a path) may break across lines."""
    return re.sub(r"[0-9a-f]{16}(?=[0-9a-f]{8})", lambda m: m.group(0) + r"\allowbreak{}", text)


def _tex_table(tex: str) -> str:
    """A study's table environment, kept inside the text width and in place."""
    body = tex.replace(r"\begin{table}[htbp]", r"\begin{table}[H]")
    body = body.replace(r"  \begin{tabular}", "  \\begin{adjustbox}{max width=\\linewidth}\n  \\begin{tabular}")
    return body.replace(r"  \end{tabular}", "  \\end{tabular}\n  \\end{adjustbox}")


def render_latex(sections: Sequence[Section], profile: str, out_dir: Path) -> str:
    e = latex_escape
    lines = [
        "% Generated by `harness report` from trial records: regenerate it, do not edit it.",
        _TEX_PREAMBLE.rstrip(),
        rf"\title{{Re-examining a deep-learning write-up ({e(profile)} profile)}}",
        r"\author{Generated by \texttt{harness report} from the trial records}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        r"\begin{abstract}",
        e(abstract(sections, profile)),
        r"\end{abstract}",
    ]
    for section in sections:
        lines.append(rf"\section{{{e(section.title)} (\texttt{{{e(section.study)}}})}}")
        if not section.ran:
            lines.append(rf"Not run at the {e(profile)} profile. To run it: "
                         rf"\texttt{{{e(section.command)}}}.")
            continue
        n = section.narrative
        assert n is not None
        lines += [rf"\paragraph{{Question.}} {e(n.question)}",
                  rf"\paragraph{{The write-up's claim.}} {e(n.claim)}",
                  r"\paragraph{Setup.}", r"\begin{itemize}"]
        lines += [rf"  \item {e(label)}: {breakable(e(text))}" for label, text in section.setup]
        lines.append(r"\end{itemize}")
        for _name, _md, tex in section.tables:
            lines.append(_tex_table(tex).rstrip())
        for name, caption, png in section.figures:
            rel = Path(os.path.relpath(png, out_dir)).as_posix()
            lines += [r"\begin{figure}[H]", r"  \centering",
                      rf"  \includegraphics[width=0.62\linewidth]{{{rel}}}",
                      rf"  \caption{{{e(caption)}}}", rf"  \label{{fig:{section.study}-{name}}}",
                      r"\end{figure}"]
        lines.append(rf"\paragraph{{Answer.}} {e(n.answer)}")
        if n.published:
            lines.append(rf"\paragraph{{Published figures.}} {e(n.published)}")
        lines.append(rf"\paragraph{{Verdict on the write-up's claim: {e(n.verdict)}.}} "
                     f"{e(n.verdict_reason)}")
    lines += [r"\section{Limitations}", r"\begin{itemize}"]
    lines += [rf"  \item {e(item)}" for item in limitations(sections, profile)]
    lines += [r"\end{itemize}", r"\section{Reproduction}", r"\begin{verbatim}"]
    lines += reproduction(sections, profile)
    lines += [r"\end{verbatim}", r"\end{document}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- files


def latex_engine() -> list[str] | None:
    if shutil.which("latexmk"):
        return ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-quiet"]
    if shutil.which("pdflatex"):
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
        passes = 1 if engine[0] == "latexmk" else 2  # pdflatex: twice, for references
        for _ in range(passes):
            result = subprocess.run(
                [*engine, f"-output-directory={build}", tex.name], cwd=tex.parent, env=env,
                capture_output=True, text=True, timeout=600,
            )
            if result.returncode != 0:
                log = Path(build, tex.with_suffix(".log").name)
                tail = log.read_text(errors="replace")[-2500:] if log.exists() else result.stdout[-2500:]
                raise HarnessError(f"LaTeX failed on {tex}:\n{tail}")
        target = tex.with_suffix(".pdf")
        os.replace(Path(build, target.name), target)
    return target


def write_report(profile: str, results_dir: Path, pdf: bool = True) -> list[Path]:
    """Write results/report/<profile>/report.{md,tex} (and .pdf); returns the paths."""
    from harness.files import write_text_atomic

    out_dir = results_dir / REPORT_DIR / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = build_sections(profile, results_dir)
    written = [
        write_text_atomic(out_dir / "report.md", render_markdown(sections, profile, out_dir)),
        write_text_atomic(out_dir / "report.tex", render_latex(sections, profile, out_dir)),
    ]
    if pdf:
        made = compile_pdf(out_dir / "report.tex")
        if made is not None:
            written.append(made)
    return written


def studies_with_results(results_dir: Path, profile: str) -> Iterable[str]:
    for study in report_studies():
        if (_results_folder(results_dir, study.name, profile) / "records").is_dir():
            yield study.name
