"""1. throughput: benchmarks/throughput.py, fastnet at the suite's batch, the engine's
device-resident pipeline against a DataLoader + PIL pipeline per worker count; the
deadline is checked every step."""

from __future__ import annotations

from typing import Any

from benchmarks.gpu_suite.context import Context


def part_throughput(ctx: Context) -> dict[str, Any]:
    from benchmarks.throughput import run_benchmark

    sizes = ctx.sizes
    result = run_benchmark(ctx.data.get("cifar10"), "fastnet", ctx.device, sizes.throughput_batch,
                           sizes.throughput_steps, sizes.loader_workers,
                           model_options=dict(sizes.throughput_options),
                           check=ctx.deadline.check)
    return {"result": result}
