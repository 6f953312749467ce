"""3. sharing: aggregate images/s of 1, 2, 4 and 8 concurrent trials on the card, through
Ray's fractional GPUs when Ray imports, else as separate processes. Workers get what is
left of the part's share as their timeout; the deadline is checked between counts."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from benchmarks.gpu_suite.context import Context
from benchmarks.gpu_suite.inputs import dataset_from_spec

REPO = Path(__file__).resolve().parents[3]


def sharing_worker(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One trial sharing the card: the engine's task, model, loss and optimizer, trained
    for ``seconds`` once every trial is warm (a barrier of files), images counted."""
    import time as clock

    import torch as th

    from harness.config import TrialConfig
    from harness.models import create_model
    from harness.optim import build_optimizer
    from harness.tasks import create_task
    from harness.train import autocast_factory, synchronize, train_step

    device = th.device(spec["device"])
    if device.type == "cuda":
        th.backends.cudnn.benchmark = True
    else:
        th.set_num_threads(1)  # as Ray gives a one-CPU trial
    config = TrialConfig.from_dict(spec["config"])
    task = create_task(config, dataset_from_spec(spec["data"]), device)
    model = create_model(config.model, task.num_outputs, task.in_shape,
                         **config.model_options).to(device)
    if device.type == "cuda" and config.channels_last:
        model = model.to(memory_format=th.channels_last)
    loss_fn = task.create_loss().to(device)
    optimizer = build_optimizer(model, config)
    # The engine's precision for this config (bf16 autocast on CUDA by default).
    autocast = autocast_factory(config, device)

    def batches() -> Iterator[Any]:
        epoch = 0
        while True:
            yield from task.batches(epoch)
            epoch += 1

    stream = batches()

    def step() -> int:
        inputs, targets = next(stream)
        train_step(model, loss_fn, optimizer, autocast, inputs, targets)
        return int(inputs.shape[0])

    for _ in range(spec["warmup_steps"]):
        step()
    synchronize(device)
    barrier = Path(spec["barrier"])
    (barrier / f"ready-{spec['index']}").touch()
    deadline = clock.monotonic() + spec["barrier_timeout"]
    while len(list(barrier.glob("ready-*"))) < spec["count"]:
        if clock.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(barrier.glob('ready-*')))} of {spec['count']} "
                               "trials got ready")
        clock.sleep(0.01)
    began, images = clock.perf_counter(), 0
    while clock.perf_counter() - began < spec["seconds"]:
        images += step()
    synchronize(device)
    seconds = clock.perf_counter() - began
    result = {"index": spec["index"], "images": images, "seconds": round(seconds, 4),
              "images_per_second": round(images / seconds, 2), "pid": os.getpid()}
    (barrier / f"result-{spec['index']}.json").write_text(json.dumps(result))
    return result


def _process_main(spec: Mapping[str, Any]) -> None:
    try:
        sharing_worker(spec)
    except BaseException as error:  # noqa: BLE001 - reported through the barrier folder
        Path(spec["barrier"], f"error-{spec['index']}.txt").write_text(
            f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
        raise


def _run_processes(specs: list[dict[str, Any]], timeout: float,
                   method: str = "spawn") -> list[dict[str, Any]]:
    import multiprocessing

    context = multiprocessing.get_context(method)
    processes = [context.Process(target=_process_main, args=(s,), daemon=True) for s in specs]
    for process in processes:
        process.start()
    ends = time.monotonic() + timeout  # one timeout for them all, not one each
    for process in processes:
        process.join(max(0.0, ends - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(5)
    return _collect(specs)


def _collect(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    barrier = Path(specs[0]["barrier"])
    errors = sorted(barrier.glob("error-*.txt"))
    if errors:
        raise RuntimeError(f"a sharing trial failed: {errors[0].read_text()[:800]}")
    results = [json.loads(p.read_text()) for p in sorted(barrier.glob("result-*.json"))]
    if len(results) != len(specs):
        raise RuntimeError(f"{len(results)} of {len(specs)} sharing trials reported")
    return results


@contextlib.contextmanager
def ray_instance(ctx: Context, slots: int) -> Iterator[Any]:
    """A local Ray with one GPU (or, on a CPU, a stand-in resource of 1 that trials take
    fractions of, so the fractional placement path runs there too)."""
    import ray

    from harness.ray_session import quiet_ray_env

    os.environ["PYTHONPATH"] = os.pathsep.join(  # Ray's workers import the harness from here
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    cuda = ctx.device.type == "cuda"
    with quiet_ray_env():
        ray.init(address="local", num_cpus=max(slots, 2), num_gpus=1 if cuda else 0,
                 resources=None if cuda else {"gpu_slot": 1.0}, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)
        try:
            yield ray
        finally:
            ray.shutdown()


def part_sharing(ctx: Context) -> dict[str, Any]:
    import tempfile

    sizes = ctx.sizes
    ray_ok, ray_why = ctx.modules["ray"]["ok"], ctx.modules["ray"].get("why", "")
    if ray_ok:
        try:
            importlib.import_module("ray")
        except Exception as error:  # noqa: BLE001 - found but broken: run without it
            ray_ok, ray_why = False, f"{type(error).__name__}: {error}"
    mode = "ray" if ray_ok else "processes"
    config = {"dataset": "cifar10", **sizes.sharing_config, "device": ctx.device.type}
    ctx.data.get("cifar10")  # decoded once here, so the workers read the cache
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    longest = 180.0 + 4 * sizes.sharing_seconds
    with contextlib.ExitStack() as stack:
        ray = stack.enter_context(ray_instance(ctx, max(sizes.sharing_counts))) if ray_ok else None
        for count in sizes.sharing_counts:
            ctx.deadline.check()
            # Workers get what is left of the part's share: past it they are stopped.
            timeout = max(1.0, min(longest, ctx.deadline.left()))
            # Each count's trials start, warm up and then train together for `seconds`.
            need = 30.0 + sizes.sharing_seconds if ctx.device.type == "cuda" else 0.0
            if ctx.spendable("sharing") < need:
                skipped.append(f"{count} trials: time budget")
                continue
            barrier = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="share-")))
            specs = [{"index": i, "count": count, "config": config, "device": ctx.device.type,
                      "data": ctx.data.spec("cifar10"), "barrier": str(barrier),
                      "warmup_steps": sizes.sharing_warmup_steps, "seconds": sizes.sharing_seconds,
                      "barrier_timeout": timeout} for i in range(count)]
            began = time.perf_counter()
            if ray is not None:
                # Every trial asks for 1/max(counts) of the card: each count's trials fit on
                # it together, and one resource shape lets Ray reuse the same worker
                # processes for every count instead of starting new ones.
                fraction = 1 / max(sizes.sharing_counts)
                share = {"num_gpus": fraction} if ctx.device.type == "cuda" \
                    else {"resources": {"gpu_slot": fraction}}
                remote = ray.remote(num_cpus=1, max_retries=0, **share)(sharing_worker)
                try:
                    ray.get([remote.remote(s) for s in specs], timeout=timeout)
                except ray.exceptions.GetTimeoutError:
                    ctx.deadline.check()  # the share is spent: stopped, not failed
                    raise
                results = _collect(specs)
            else:
                # A process that has used CUDA cannot fork; a CPU-only one forks in a moment.
                method = "spawn" if ctx.device.type == "cuda" else "fork"
                try:
                    results = _run_processes(specs, timeout, method)
                except RuntimeError:
                    ctx.deadline.check()
                    raise
            total = sum(r["images_per_second"] for r in results)
            rows.append({"trials": count, "aggregate_images_per_second": round(total, 1),
                         "per_trial_images_per_second": [r["images_per_second"] for r in results],
                         "wall_seconds": round(time.perf_counter() - began, 1)})
            ctx.log(f"sharing {count}: {total:,.0f} images/s in aggregate")
    base = rows[0]["aggregate_images_per_second"] if rows else None
    for row in rows:
        row["speedup"] = round(row["aggregate_images_per_second"] / base, 2) if base else None
    why = ("Ray fractional resources" if ray_ok else
           f"separate processes: Ray not importable ({ray_why})")
    if ray_ok and ctx.device.type != "cuda":
        why += " (a stand-in 'gpu_slot' resource on this CPU)"
    if skipped:
        why += "; skipped " + ", ".join(skipped)
    return {"_status": "ran" if not skipped else "partial", "_why": why, "mode": mode,
            "config": config, "seconds": sizes.sharing_seconds, "rows": rows}

