"""Running the parts: each inside its deadline, its entry written to suite.json and
summary.md after it, then every part's verdict printed and the exit code returned."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from benchmarks.gpu_suite.budget import OverBudget, part_deadline
from benchmarks.gpu_suite.config import PARTS, SkipPart
from benchmarks.gpu_suite.context import Context
from benchmarks.gpu_suite.targets import exit_code, suite_verdicts

Body = Callable[[Context], dict[str, Any]]


def run_part(ctx: Context, name: str, body: Body) -> None:
    """Run one part inside its share of the budget, or record why it did not run; write
    every file after it."""
    parts = ctx.state.setdefault("parts", {})
    need = ctx.sizes.needs.get(name, 0)
    entry: dict[str, Any] = {"status": "skipped", "why": "", "seconds": 0.0, "figures": {}}
    if name not in ctx.selected:
        entry["why"] = f"not selected (--parts {','.join(ctx.selected)})"
    elif ctx.spendable(name) < need or ctx.spendable(name) <= 0:
        entry["why"] = (f"time budget: {ctx.remaining():.0f}s of {ctx.sizes.budget_s:.0f}s left, "
                        f"{ctx.reserve_after(name):.0f}s kept for later parts, this part needs "
                        f"about {need:.0f}s")
    else:
        share = ctx.spendable(name)
        entry["share_seconds"] = round(share, 1)
        ctx.log(f"part {name} (at most {share:.0f}s)")
        began = time.perf_counter()
        try:
            with part_deadline(name, share, ctx.sizes.grace_s) as deadline:
                ctx.deadline = deadline
                figures = body(ctx)
            entry.update(status=figures.pop("_status", "ran"), why=figures.pop("_why", ""),
                         figures=figures)
        except OverBudget as stop:
            entry.update(status="stopped", why=str(stop))
        except SkipPart as skip:
            entry["why"] = str(skip)
        except Exception as error:  # noqa: BLE001 - one broken part must not stop the suite
            entry.update(status="failed", why=f"{type(error).__name__}: {error}",
                         traceback=traceback.format_exc())
            ctx.log(entry["traceback"])
        finally:
            ctx.deadline = type(ctx.deadline).never(name)
        entry["seconds"] = round(time.perf_counter() - began, 2)
    parts[name] = entry
    ctx.log(f"part {name}: {entry['status']}" + (f" ({entry['why']})" if entry["why"] else ""))
    write_outputs(ctx)


def write_outputs(ctx: Context) -> None:
    from benchmarks.gpu_suite.report import render_summary
    from harness.files import write_json_atomic

    suite = ctx.state.setdefault("suite", {})
    suite["wall_seconds"] = round(ctx.elapsed(), 1)
    suite["data"] = ctx.data.describe()
    ctx.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(ctx.out / "suite.json", ctx.state)
    (ctx.out / "summary.md").write_text(render_summary(ctx.state))


def run_suite(ctx: Context, bodies: Mapping[str, Body]) -> int:
    """Every part in order, then the verdicts (PASS / FAIL / SKIP with the figure) printed,
    kept in suite.json and summary.md; 1 when any part FAILs, else 0."""
    for part in PARTS:
        if part in bodies:
            run_part(ctx, part, bodies[part])
    verdicts = suite_verdicts(ctx.state.get("parts", {}), ctx.targets, PARTS)
    ctx.state["verdicts"] = [v.__dict__ for v in verdicts]
    code = exit_code(verdicts)
    ctx.state.setdefault("suite", {})["exit_code"] = code
    write_outputs(ctx)
    print("\nGPU suite verdicts:", flush=True)
    for verdict in verdicts:
        print(verdict.line(), flush=True)
    print(("FAIL: at least one part missed its target" if code else "PASS: every part "
           "checked met its target") + f" ({ctx.out / 'summary.md'})", flush=True)
    return code
