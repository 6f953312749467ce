"""The paper's sections, built from each study's results: its narrative (every number
computed from the records), the setup read off the records (models, recipe, data, seeds,
machine, commit, wall time), its tables and figures; and the abstract, limitations and
reproduction commands computed from the sections. Nothing here renders or compiles."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.evidence import Evidence
from harness.layout import results_folder, results_records, run_file
from harness.records import finished, load_records
from harness.report.deviations import not_done
from harness.report.stages_table import stages_table
from harness.report.tables import data_caption, render_latex, render_markdown
from harness.run_conditions import describe_conditions
from harness.study import Narrative, Study, get_study, list_studies, paper_order

DEVIATIONS = "deviations"  # harness.report.deviations: the run against the paper profile
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
    compute: dict[str, str] = field(default_factory=dict)  # the compute table's row
    not_done: list[str] = field(default_factory=list)  # what the paper profile runs and this did not
    records: list[tuple[str, str]] = field(default_factory=list)  # stage, its config hashes by label
    registration: str = ""  # under which registration its verdicts were judged, and why

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


def compute_row(records: Sequence[Mapping[str, Any]], run: Mapping[str, Any] | None) -> dict[str, str]:
    """What a study's run cost and where it ran, from its records and run.json."""
    environments = [r.get("environment") or {} for r in records]
    hours = sum(float(r.get("wall_seconds") or 0) for r in records) / 3600
    wall = run.get("wall_seconds") if run else None
    devices = sorted({e.get("device") or "?" for e in environments})
    return {
        "trials": str(len(records)),
        "wall time (min)": f"{float(wall) / 60:.1f}" if wall is not None else "not recorded",
        "trial hours": f"{hours:.2f} " + ("GPU" if "cuda" in devices else "CPU"),
        "machine": "; ".join(sorted({e.get("device_name") or "unknown" for e in environments})),
        "where": str((run or {}).get("where") or "not recorded"),
        # Timings depend on what else ran; run.json says so only when the runner recorded it.
        "shared the machine with": str((run or {}).get("shared_with") or "not recorded"),
        "python / torch": "; ".join(sorted({f"{e.get('python', '?')} / {e.get('torch', '?')}"
                                            for e in environments})),
    }


def records_by_stage(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Per stage, the config hashes of its trials by label: what each table row and cell
    of the section was computed from (records/<stage>/ holds their JSON)."""
    by_stage: dict[str, dict[str, set[str]]] = {}
    for record in records:
        label = str(record.get("label") or "-")
        by_stage.setdefault(str(record.get("stage")), {}).setdefault(label, set()).add(
            str(record.get("config_hash", ""))[:8])
    return [(stage, "; ".join(f"{label}: {', '.join(sorted(hashes))}"
                              for label, hashes in sorted(labels.items())))
            for stage, labels in by_stage.items()]


def short_commit(commit: str | None) -> str:
    """A commit as the paper prints it: 12 hex digits, its "-dirty" flag kept (a trial run
    from uncommitted code must say so)."""
    if not commit:
        return "unknown"
    sha, dash, flag = commit.partition("-")
    return sha[:12] + dash + flag


def setup_facts(records: list[dict[str, Any]], run: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """What the section's setup paragraph says, read off the records (and run.json)."""
    done = finished(records) or records
    facts: list[tuple[str, str]] = []
    models = _models(done)
    if models:
        facts.append(("models", models))
    # Every trial's recipe, those stopped early by halving included (as the stage table).
    recipe = "; ".join(f"{key.replace('_', ' ')} {_describe_values(_values(records, key))}"
                       for key in _RECIPE_KEYS if _values(records, key))
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
    facts.append(("seeds", "per stage in the stage table below; each trial's seed is hashed "
                           "from its config and repeat index"))
    machines = sorted({(r.get("environment") or {}).get("device_name") or "unknown" for r in done})
    torches = sorted({(r.get("environment") or {}).get("torch") or "?" for r in done})
    facts.append(("machine", f"{'; '.join(machines)}; torch {', '.join(torches)}"))
    numbers_from = describe_conditions(done)
    if numbers_from:  # records made before issue 29 do not say
        facts.append(("numbers from", numbers_from))
    commits = sorted({short_commit((r.get("environment") or {}).get("git_commit"))
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
    return results_folder(results_dir, study, profile)


def build_section(study: Study, profile: str, results_dir: Path) -> Section:
    folder = _results_folder(results_dir, study.name, profile)
    section = Section(
        study.name, study.section_title, profile,
        command=f"harness run {study.name} --profile {profile}",
    )
    if profile not in study.profiles:
        section.command = f"(study {study.name} has no {profile} profile)"
        return section
    records_dir = results_records(results_dir, study.name, profile)
    if study.narrative is None or not records_dir.is_dir() or not any(records_dir.rglob("*.json")):
        return section
    records = load_records(records_dir)
    if not finished(records):
        return section
    path = run_file(results_dir, study.name, profile)
    run = json.loads(path.read_text()) if path.is_file() else None
    section.narrative = study.narrate(records, profile, results_dir)
    section.registration = registration_note(study, profile, run)
    section.setup = setup_facts(records, run)
    section.compute = compute_row(records, run)
    section.not_done = not_done(study, records, profile)
    section.records = records_by_stage(records)
    stages = stages_table(records, data_caption(records),
                          [s.name for s in study.profile(profile).stages])
    if not stages.frame.empty:  # theory's checks train nothing
        section.tables.append(("stages", render_markdown(stages), render_latex(stages)))
    # The run's departures from the paper profile close every section that has them.
    shown = [*section.narrative.tables, *([DEVIATIONS] if DEVIATIONS not in section.narrative.tables else [])]
    for name in shown:
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


def registration_note(study: Study, profile: str, run: dict | None) -> str:
    """Under which registration the section's verdicts were judged: the run's (when, its
    hash, where to check it), or why there is none (the pilot's history)."""
    registration = (run or {}).get("registration")
    where = f"results/{study.name}/{profile}/run.json"
    if registration:
        first = registration.get("first_trial_at")
        return (f"The claims were registered {registration.get('registered_at')} with hash "
                f"{str(registration.get('hash'))[:12]} (in {where}, under 'registration'), "
                "before the first trial" + (f" ({first})" if first else "") + ".")
    if study.pilot is not None and study.pilot.profile == profile:
        return (f"No registration: {where} has none, since these records were made before "
                f"`harness run` registered claims; they are the study's pilot: "
                f"{study.pilot.history}. Every verdict here is therefore post hoc.")
    return (f"No registration: {where} has none, so every verdict here is post hoc.")


def report_studies() -> list[Study]:
    """Every registered study, in the order each declares for the paper."""
    return [get_study(n) for n in paper_order(list_studies())]


def build_sections(profile: str, results_dir: Path) -> list[Section]:
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
                    "below the published ones, and a verdict 'inconclusive at this scale' "
                    "says the interval is too wide at this profile, nothing about the "
                    "full-scale claim.")
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


def claims_judged(sections: Sequence[Section]) -> list[tuple[str, Evidence]]:
    """(study, evidence) for every claim of every section that ran, in the paper's order."""
    return [(s.study, item) for s in sections if s.narrative is not None
            for item in s.narrative.evidence]


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
            f"the {profile} profile. " + evidence_scale(ran, profile) + " " + " ".join(parts))


def evidence_scale(ran: Sequence[Section], profile: str) -> str:
    """One sentence on how much evidence the verdicts rest on: trials, seeds, machine."""
    from harness.evidence import INCONCLUSIVE, NOT_JUDGED, UNDERPOWERED

    trials = sum(int(s.compute.get("trials", 0)) for s in ran)
    judged = [e for s in ran if s.narrative for e in s.narrative.evidence]
    seeds = sorted({e.interval.n for e in judged if e.interval is not None})
    open_ = sum(e.verdict in (INCONCLUSIVE, UNDERPOWERED, NOT_JUDGED) for e in judged)
    post_hoc = sum(e.is_post_hoc for e in judged)
    machines = sorted({s.compute.get("machine", "") for s in ran} - {""})
    n = (f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}") if seeds else "no"
    return (f"The evidence: {trials:,} trials at the {profile} profile on "
            f"{'; '.join(machines) or 'an unrecorded machine'}, {n} seeds behind each "
            f"interval; {open_} of {len(judged)} claims without a verdict at this scale "
            f"(inconclusive, underpowered or not judged), and {post_hoc} of {len(judged)} "
            "judged post hoc (not under a registration made before their run).")
