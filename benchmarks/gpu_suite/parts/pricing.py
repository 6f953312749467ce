"""4. pricing: every workload of every study's profile timed on this card
(harness.pricing), written to throughput.json, which `harness run ... --dry-run` reads
for its GPU-hours column; timing stops within the part's share."""

from __future__ import annotations

from typing import Any

from benchmarks.gpu_suite.context import Context


def part_pricing(ctx: Context) -> dict[str, Any]:
    from harness.files import write_json_atomic
    from harness.pricing import estimate_profile, measure, render_estimate, table_json

    plans = [p for p in ctx.plans().values() if p is not None and not isinstance(p, str)]
    broken = [f"{n}: {p}" for n, p in ctx.plans().items() if isinstance(p, str)]
    # Timing stops itself at this budget; the rest of the share is left for the workload
    # being timed when it runs out and for writing the table.
    budget = max(1.0, min(ctx.sizes.pricing_budget_s, 0.7 * ctx.spendable("pricing")))
    table = measure(plans, budget, device=ctx.device.type, echo=ctx.log)
    sharing = ctx.state["parts"].get("sharing", {}).get("figures", {})
    if sharing.get("rows"):
        table = type(table)(**{**table.__dict__, "sharing": {
            "model": sharing["config"].get("model"),
            "batch_size": sharing["config"].get("batch_size"), "mode": sharing.get("mode"),
            "aggregate_images_per_second": {str(r["trials"]): r["aggregate_images_per_second"]
                                            for r in sharing["rows"]},
            "speedup": {str(r["trials"]): r["speedup"] for r in sharing["rows"]}}})
    write_json_atomic(ctx.out / "throughput.json", table_json(table, profile=ctx.sizes.profile))
    gpu = table if table.device == "cuda" else None
    tables = [render_estimate(estimate_profile(plan, table, gpu)) for plan in plans]
    workloads = {p.workload for plan in plans for s in plan.stages for p in s.points}
    return {"_status": "partial" if broken else "ran",
            "_why": ("not planned: " + "; ".join(broken)) if broken else "",
            "profile": ctx.sizes.profile, "budget_seconds": round(budget, 1),
            "workloads": len(workloads), "timed": len(table.rates), "tables": tables,
            "file": "throughput.json"}

