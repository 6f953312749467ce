"""summary.md: the verdicts, then every part's figures beside their anchors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from benchmarks.gpu_suite.config import (
    ANCHOR_MACHINE,
    EXPERIMENT,
    PARTS,
    RECIPE_ANCHOR,
    THROUGHPUT_ANCHORS,
)


def _cell(text: Any, limit: int = 300) -> str:
    """Text for one table cell: one line, no pipes, cut short (suite.json has it whole)."""
    flat = " ".join(str(text).split()).replace("|", "/")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None, anchor: float | None) -> str:
    return f"{value / anchor:.2f}" if value and anchor else "—"


def render_throughput(figures: Mapping[str, Any]) -> list[str]:
    result = figures["result"]
    ips = result["images_per_second"]
    rows = [("device-resident (harness)", ips["harness_device_resident"],
             THROUGHPUT_ANCHORS.get("harness_device_resident"))]
    rows += [(f"DataLoader + PIL, {w} workers", v, THROUGHPUT_ANCHORS.get(w))
             for w, v in result["dataloader_pil_by_workers"].items()]
    lines = [f"{result['model']}, batch {result['batch_size']}, {result['steps']} timed steps, "
             f"{result['dataset']}, {result['machine']}.", "",
             f"| pipeline | images/s | anchor ({ANCHOR_MACHINE}) | measured / anchor |",
             "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {_n(v)} | {_n(a)} | {_ratio(v, a)} |" for name, v, a in rows]
    resident = ips["harness_device_resident"]
    speedups = ", ".join(f"{resident / v:.1f}x vs {w} workers"
                         for w, v in result["dataloader_pil_by_workers"].items() if v)
    lines += ["", f"Device-resident over DataLoader: {speedups} (anchor: "
              f"{THROUGHPUT_ANCHORS['harness_device_resident'] / THROUGHPUT_ANCHORS['8']:.1f}x "
              "vs 8 workers; target >= 10x vs the fastest DataLoader)."]
    return lines


def render_recipe(figures: Mapping[str, Any]) -> list[str]:
    acc, secs = figures["test_acc_percent"], figures["train_seconds"]
    lines = [f"Recipe `{figures['recipe']}`"
             + (", after one untimed warm-up run" if figures.get("warmup_run") else "") + ".", "",
             "| repeat | seed | status | test accuracy (%) | training s | wall s |",
             "| ---: | ---: | --- | ---: | ---: | ---: |"]
    for run in figures["runs"]:
        acc_text = _n(run["test_acc"] * 100, 2) if run["test_acc"] is not None else "—"
        lines.append(f"| {run['repeat']} | {run['seed']} | {run['status']} | {acc_text} | "
                     f"{run['train_seconds']:.2f} | {run['wall_seconds']:.2f} |")
    lines += ["", "| figure | measured (mean ± sd, n) | anchor: airbench94, JPEG copy, "
              f"{ANCHOR_MACHINE} |", "| --- | ---: | ---: |",
              f"| test accuracy (%) | {_n(acc['mean'], 2)} ± {_n(acc['sd'], 2)} ({acc['n']}) | "
              f"{RECIPE_ANCHOR['test_acc_percent']:.2f} |",
              f"| training seconds | {_n(secs['mean'], 2)} ± {_n(secs['sd'], 2)} ({secs['n']}) | "
              f"about {RECIPE_ANCHOR['train_seconds']} |"]
    return lines


def render_sharing(figures: Mapping[str, Any]) -> list[str]:
    config = figures["config"]
    lines = [f"{config.get('model')} at batch {config.get('batch_size')}, "
             f"{figures['mode']}, each count trained together for {figures['seconds']:g}s "
             "after warming up (no anchor measured yet).", "",
             "| trials | aggregate images/s | x one trial | per trial images/s |",
             "| ---: | ---: | ---: | --- |"]
    for row in figures["rows"]:
        per = ", ".join(_n(v) for v in row["per_trial_images_per_second"])
        lines.append(f"| {row['trials']} | {_n(row['aggregate_images_per_second'])} | "
                     f"{row['speedup']:.2f} | {per} |")
    return lines


def render_slices(figures: Mapping[str, Any]) -> list[str]:
    lines = [f"Profile `{figures['profile']}`: per study, one trial of its first training stage "
             "(the first configuration), a few epochs cut short; epoch 1 includes warm-up "
             "(and compilation).", "",
             "| study | stage | model | compile | precision | channels_last | status | "
             "epoch 1 s | last epoch images/s | last metrics |",
             "| --- | --- | --- | --- | --- | --- | --- | ---: | ---: | --- |"]
    for name, entry in figures["studies"].items():
        if not entry["runs"]:
            status = "failed" if entry.get("failed") else "skipped"
            lines.append(f"| {name} | — | — | — | — | — | {status} | — | — | "
                         f"{_cell(entry.get('why', ''))} |")
            continue
        for run in entry["runs"]:
            epochs = run.get("epochs") or []
            first = epochs[0].get("epoch_seconds") if epochs else None
            last = epochs[-1] if epochs else {}
            shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items()
                              if k.startswith(("test_", "train_loss")))
            lines.append(
                f"| {name} | {entry.get('stage', '—')} | {entry.get('model', '—')} | "
                f"{'on' if run['compile'] else 'off'} | {run.get('precision', '—')} | "
                f"{run.get('channels_last', '—')} | {run['status']} | {_n(first, 2)} | "
                f"{_n(last.get('images_per_second'))} | {_cell(shown or run.get('why', ''))} |")
    return lines


def render_pricing(figures: Mapping[str, Any]) -> list[str]:
    lines = [f"Profile `{figures['profile']}`: {figures['timed']} of {figures['workloads']} "
             f"workloads timed within {figures['budget_seconds']:g}s (the rest scaled by MACs, "
             f"~); the table is {figures['file']}, which `harness run STUDY --profile "
             f"{figures['profile']} --dry-run` reads.", ""]
    for table in figures["tables"]:
        lines += [table, ""]
    return lines


def render_mlflow(figures: Mapping[str, Any]) -> list[str]:
    return [f"{figures['metrics']} figures logged to {figures['tracking_uri']} "
            f"(experiment {EXPERIMENT}, run {figures['run_id']})."]


RENDERERS: dict[str, tuple[str, Callable[[Mapping[str, Any]], list[str]]]] = {
    "throughput": ("1. Throughput: device-resident vs DataLoader (benchmarks/throughput.py)",
                   render_throughput),
    "recipe": ("2. fastnet recipe (airbench94), seeds", render_recipe),
    "sharing": ("3. Trials sharing one GPU", render_sharing),
    "pricing": ("4. Pricing: every study's profile on this device", render_pricing),
    "slices": ("5. Every study's GPU path: one trial each, torch.compile off and on",
               render_slices),
    "mlflow": ("6. MLflow", render_mlflow),
}


def render_verdicts(verdicts: list[Mapping[str, Any]]) -> list[str]:
    """The verdicts table: every part's figure against its target (targets.py)."""
    lines = ["| part | verdict | figure | target |", "| --- | --- | --- | --- |"]
    lines += [f"| {v['part']} | **{v['status']}** | {_cell(v['figure'])} | {_cell(v['target'])} |"
              for v in verdicts]
    return lines


def render_summary(state: Mapping[str, Any]) -> str:
    suite = state.get("suite", {})
    modules = "; ".join(
        f"{name} {m.get('version', '?')}" if m["ok"] else f"{name}: not importable ({m['why']})"
        for name, m in suite.get("modules", {}).items())
    sizes = "--tiny (toy sizes, synthetic CIFAR-shaped data)" if suite.get("tiny") else "full"
    lines = [
        f"# GPU suite: {suite.get('device_name', '?')}, {suite.get('date', '?')}", "",
        f"- command: `{suite.get('command', '?')}`",
        f"- wall time: {suite.get('wall_seconds', 0):.0f}s of a "
        f"{suite.get('budget_seconds', 0):.0f}s budget (data loading included)",
        f"- machine: {suite.get('device_name', '?')} ({suite.get('device', '?')}); torch "
        f"{suite.get('torch', '?')}, CUDA {suite.get('cuda')}, Python {suite.get('python', '?')}; "
        f"harness commit {suite.get('git_commit', '?')}",
        f"- data: {suite.get('data', '—')}",
        f"- optional modules: {modules or '—'}" + (f"; Ray from {suite['ray_site']}"
                                                   if suite.get("ray_site") else ""),
        f"- sizes: {sizes}",
    ]
    if "verdicts" in state:
        lines += ["", f"## Verdicts (exit code {suite.get('exit_code', '?')})", "",
                  *render_verdicts(state["verdicts"])]
    lines += ["", "## Parts", "", "| part | status | seconds | why |",
              "| --- | --- | ---: | --- |"]
    parts = state.get("parts", {})
    for name in PARTS:
        entry = parts.get(name, {"status": "not run yet", "why": "", "seconds": 0})
        lines.append(f"| {name} | {entry['status']} | {entry['seconds']:.1f} | "
                     f"{_cell(entry.get('why', ''))} |")
    for name, (title, render) in RENDERERS.items():
        entry = parts.get(name)
        if not entry or not entry.get("figures"):
            continue
        lines += ["", f"## {title}", ""]
        try:
            lines += render(entry["figures"])
        except Exception as error:  # noqa: BLE001 - the raw numbers are in suite.json
            lines.append(f"(could not render: {type(error).__name__}: {error}; see suite.json)")
    return "\n".join(lines) + "\n"

