#!/usr/bin/env python3
"""One GPU suite: every GPU figure this project reports, from one run of at most 9 minutes
(data decoding included) on one CUDA GPU, each figure written beside its anchor.

Parts (each says in summary.md whether it ran, and if not, why):

1. throughput: benchmarks/throughput.py, fastnet at batch 512, the engine's device-resident
   pipeline against a DataLoader + PIL pipeline with 4, 8 and 16 workers;
2. recipe: fastnet's airbench94 recipe (a dict of config keys looked up by name at run
   time: harness.recipes.FASTNET_RECIPE, else harness.models.fastnet.FASTNET_RECIPE), five
   seeds, test accuracy and training seconds, after one untimed warm-up run;
3. sharing: aggregate images/s of 1, 2, 4 and 8 concurrent ResNet-32 trials on the card,
   through Ray's fractional GPUs when Ray imports, else as separate processes;
4. pricing: every workload of every study's paper profile timed on this card
   (harness.pricing), written to throughput.json, which `harness run ... --dry-run` reads
   for its GPU-hours column; the dry-run tables go into summary.md;
5. slices: every registered study's paper profile, one trial of its first training stage,
   two epochs of about a hundred steps, with torch.compile off and on (bf16 autocast and
   channels-last as the engine sets them on CUDA), compiling while time is left;
6. mlflow: the figures and files logged as one MLflow run, when MLflow imports.

It writes results/gpu/<card>-<date>/ (``--out-root``, or ``--out`` for the exact folder):
summary.md (every figure beside its anchor), suite.json (the raw numbers) and
throughput.json (pricing's table), rewritten after each part, so a run cut short leaves
what it measured. Ray, MLflow and Optuna are optional; a part that needs a missing one
says so and the rest runs.

A session with a GPU (device tool; see /work/.library/device/README.md), from the checkout:

    # here: the data (19 MB) and, optionally, Ray (~38 MB) into git-ignored folders that
    # travel with `carry` (64 MiB in all)
    mkdir -p .data && cp ../shared/data/cifar10-jpeg.tar.gz .data/
    bash ../shared/tools/offline-ray-bundle.sh 3.12      # optional: .whl/ray-site-py312.tar.xz

    # the device call: run(carry=[".data", ".whl"], timeout_s=600, command=
    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_suite.py --data-root .data \\
        --ray-site .whl/ray-site-py312.tar.xz --out-root $OUT
    # without the bundle: carry [".data"] and leave out --ray-site (sharing then runs
    # separate processes). Then copy the folder under files_at into results/gpu/.

On a CPU, ``--tiny`` runs every code path at toy sizes on synthetic CIFAR-shaped data and
the smoke profiles (tests/test_gpu_suite.py does, with Ray blocked and with it present):

    python benchmarks/gpu_suite.py --tiny --device cpu --out /tmp/suite
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import math
import os
import platform
import statistics
import sys
import tarfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
# A plain script: the harness package and throughput.py import from the checkout.
for _path in (str(REPO), str(BENCHMARKS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

STARTED = time.perf_counter()  # the budget counts from here: imports and data included

import torch  # noqa: E402 - after the checkout is on sys.path, like every import below

# In this order: pricing (what the dry run reads) before the slices' torch.compile runs,
# which take whatever time is left.
PARTS = ("throughput", "recipe", "sharing", "pricing", "slices", "mlflow")
RECIPE_NAMES = ("harness.recipes:FASTNET_RECIPE", "harness.models.fastnet:FASTNET_RECIPE")
ANCHOR_MACHINE = "H100"
# Images/s measured on an H100 (docs: DESIGN.md), per pipeline.
THROUGHPUT_ANCHORS = {"harness_device_resident": 139_000, "4": 12_100, "8": 23_700}
# airbench94 on the JPEG q75 copy on an H100: test accuracy (%) and training seconds.
RECIPE_ANCHOR = {"test_acc_percent": 90.61, "train_seconds": 2.3}
BUDGET_S = 540.0  # 9 minutes, data decoding included
OPTIONAL = ("ray", "mlflow")
EXPERIMENT = "gpu-suite"  # the MLflow experiment the suite logs to


@dataclass(frozen=True)
class Sizes:
    """How big each part runs: the GPU suite, or --tiny for a CPU."""

    profile: str  # the studies' profile the slices and pricing walk
    throughput_batch: int
    throughput_steps: int
    loader_workers: tuple[int, ...]
    throughput_options: Mapping[str, Any]
    recipe_seeds: int
    recipe_overrides: tuple[Mapping[str, Any], ...]  # tried in order; the first that validates
    recipe_warmup: bool
    sharing_counts: tuple[int, ...]
    sharing_config: Mapping[str, Any]
    sharing_seconds: float
    sharing_warmup_steps: int
    slice_epochs: int
    slice_steps: int
    slice_test: int
    pricing_budget_s: float
    budget_s: float
    # Seconds a part needs at the least to be worth starting (the rest is kept for it).
    needs: Mapping[str, float] = field(default_factory=dict)


FULL = Sizes(
    profile="paper", throughput_batch=512, throughput_steps=50, loader_workers=(4, 8, 16),
    throughput_options={}, recipe_seeds=5, recipe_overrides=({},), recipe_warmup=True,
    sharing_counts=(1, 2, 4, 8), sharing_config={"model": "resnet32", "batch_size": 128},
    sharing_seconds=10.0, sharing_warmup_steps=20, slice_epochs=2, slice_steps=100,
    slice_test=2000, pricing_budget_s=150.0, budget_s=BUDGET_S,
    needs={"throughput": 30, "recipe": 40, "sharing": 60, "slices": 40, "pricing": 40,
           "mlflow": 10},
)
TINY = Sizes(
    profile="smoke", throughput_batch=32, throughput_steps=2, loader_workers=(1, 2),
    throughput_options={"widths": (8, 8, 8)}, recipe_seeds=2,
    # Two epochs if the recipe allows them, else its own length, of a narrow fastnet.
    recipe_overrides=({"batch_size": 32, "model.widths": "8,8,8", "epochs": 2,
                       "warmup_epochs": 0.5},
                      {"batch_size": 32, "model.widths": "8,8,8"}),
    recipe_warmup=False,
    sharing_counts=(1, 2),
    sharing_config={"model": "resnet32", "model.depth": 8, "model.base_width": 4,
                    "batch_size": 32},
    sharing_seconds=1.0, sharing_warmup_steps=2, slice_epochs=2, slice_steps=2,
    slice_test=64, pricing_budget_s=4.0, budget_s=300.0,
    needs={"throughput": 0, "recipe": 0, "sharing": 0, "slices": 0, "pricing": 0, "mlflow": 0},
)
TINY_CIFAR = {"train": 128, "test": 32}  # synthetic CIFAR-shaped images for --tiny


class SkipPart(Exception):
    """A part that cannot run here; its message says why."""


# ---------------------------------------------------------------------------- data


def synthetic_cifar(train: int, test: int) -> Any:
    from harness.pricing import synthetic_dataset

    return synthetic_dataset("cifar10", (3, 32, 32), 10, train, test, seed=0)


def dataset_from_spec(spec: Mapping[str, Any]) -> Any:
    """The dataset a worker process loads: a spec travels, 180 MB of images do not."""
    if spec["kind"] == "synthetic":
        return synthetic_cifar(spec["train"], spec["test"])
    from harness.data import load_dataset

    return load_dataset(spec["name"], spec.get("root"))


class Data:
    """Datasets by name: CIFAR-10 from the data root (or synthetic with --tiny), others
    (the embedded digits and photos) as the registry loads them."""

    def __init__(self, tiny: bool, root: str | None) -> None:
        # Absolute: worker processes (Ray's too) may start in another folder.
        self.tiny, self.root = tiny, str(Path(root).resolve()) if root else None
        self.loaded: dict[str, Any] = {}
        self.seconds: dict[str, float] = {}

    def spec(self, name: str) -> dict[str, Any]:
        if name == "cifar10" and self.tiny:
            return {"kind": "synthetic", **TINY_CIFAR}
        return {"kind": "load", "name": name, "root": self.root}

    def get(self, name: str) -> Any:
        if name not in self.loaded:
            began = time.perf_counter()
            self.loaded[name] = dataset_from_spec(self.spec(name))
            self.seconds[name] = time.perf_counter() - began
        return self.loaded[name]

    def describe(self) -> str:
        if not self.loaded:
            return "no dataset loaded"
        return "; ".join(f"{d.name}: {d.source} (sha256 {d.sha256[:12]}), {len(d.train):,} train / "
                         f"{len(d.test):,} test images, loaded in {self.seconds[n]:.1f}s"
                         for n, d in self.loaded.items())


# ---------------------------------------------------------------------------- optional modules


def use_ray_site(path: str) -> str:
    """Put an offline Ray bundle (a site-packages folder, or the .tar.xz that
    ../shared/tools/offline-ray-bundle.sh builds) first on sys.path and PYTHONPATH, so
    this process and the Ray workers it starts import it."""
    source = Path(path)
    if not source.exists():
        raise SystemExit(f"gpu_suite: --ray-site {path}: no such file or folder")
    folder = source
    if source.is_file():
        folder = Path(os.environ.get("TMPDIR", "/tmp")) / "harness-ray-site"
        if not (folder / ".unpacked").exists():
            folder.mkdir(parents=True, exist_ok=True)
            with tarfile.open(source) as archive:
                archive.extractall(folder, filter="data")
            (folder / ".unpacked").touch()
    sys.path.insert(0, str(folder))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(folder)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return str(folder)


def probe(module: str) -> dict[str, Any]:
    """Whether an optional module is installed here and its version, or why not. Found,
    not imported (Ray and MLflow take seconds each): the part that uses it imports it and
    says so if that fails."""
    import importlib.metadata
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return {"ok": False, "why": f"No module named {module!r}"}
    except (ImportError, ValueError) as error:  # a blocked or broken install
        return {"ok": False, "why": f"{type(error).__name__}: {error}"}
    try:
        version = importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:  # e.g. an unpacked bundle without metadata
        version = "?"
    return {"ok": True, "version": version}


# ---------------------------------------------------------------------------- the suite


def slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())[:48]


@dataclass
class Context:
    args: argparse.Namespace
    sizes: Sizes
    device: torch.device
    data: Data
    out: Path
    modules: dict[str, dict[str, Any]]
    started: float = STARTED
    state: dict[str, Any] = field(default_factory=dict)
    selected: tuple[str, ...] = PARTS
    _plans: dict[str, Any] | None = None

    def plans(self) -> dict[str, Any]:
        """Study name -> its cost plan (harness.pricing) for the suite's profile, or the
        error that stopped it planning; None for a study without that profile."""
        if self._plans is None:
            from harness.pricing import check_profile, plan_profile
            from harness.study import get_study, list_studies

            self._plans = {}
            for name in list_studies():
                study = get_study(name)
                if self.sizes.profile not in study.profiles:
                    self._plans[name] = None
                    continue
                profile = study.profile(self.sizes.profile)
                try:
                    self._plans[name] = plan_profile(study, profile, check_profile(profile, {}),
                                                     self.args.data_root)
                except Exception as error:  # noqa: BLE001 - reported per study
                    self._plans[name] = f"{type(error).__name__}: {error}"
        return self._plans

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def remaining(self) -> float:
        return self.sizes.budget_s - self.elapsed()

    def reserve_after(self, part: str) -> float:
        """Seconds the selected parts after ``part`` need: what ``part`` must leave."""
        later = PARTS[PARTS.index(part) + 1:]
        return sum(self.sizes.needs.get(p, 0) for p in later if p in self.selected)

    def spendable(self, part: str) -> float:
        return self.remaining() - self.reserve_after(part)

    def log(self, line: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {line}", flush=True)


def run_part(ctx: Context, name: str, body: Callable[[Context], dict[str, Any]]) -> None:
    """Run one part, or record why it did not run; write every file after it."""
    parts = ctx.state.setdefault("parts", {})
    need = ctx.sizes.needs.get(name, 0)
    entry: dict[str, Any] = {"status": "skipped", "why": "", "seconds": 0.0, "figures": {}}
    if name not in ctx.selected:
        entry["why"] = f"not selected (--parts {','.join(ctx.selected)})"
    elif ctx.spendable(name) < need:
        entry["why"] = (f"time budget: {ctx.remaining():.0f}s of {ctx.sizes.budget_s:.0f}s left, "
                        f"{ctx.reserve_after(name):.0f}s kept for later parts, this part needs "
                        f"about {need:.0f}s")
    else:
        ctx.log(f"part {name}")
        began = time.perf_counter()
        try:
            figures = body(ctx)
            entry.update(status=figures.pop("_status", "ran"), why=figures.pop("_why", ""),
                         figures=figures)
        except SkipPart as skip:
            entry["why"] = str(skip)
        except Exception as error:  # noqa: BLE001 - one broken part must not stop the suite
            entry.update(status="failed", why=f"{type(error).__name__}: {error}",
                         traceback=traceback.format_exc())
            ctx.log(entry["traceback"])
        entry["seconds"] = round(time.perf_counter() - began, 2)
    parts[name] = entry
    ctx.log(f"part {name}: {entry['status']}" + (f" ({entry['why']})" if entry["why"] else ""))
    write_outputs(ctx)


def write_outputs(ctx: Context) -> None:
    from harness.files import write_json_atomic

    ctx.state["suite"]["wall_seconds"] = round(ctx.elapsed(), 1)
    ctx.state["suite"]["data"] = ctx.data.describe()
    ctx.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(ctx.out / "suite.json", ctx.state)
    (ctx.out / "summary.md").write_text(render_summary(ctx.state))


# ---------------------------------------------------------------------------- 1. throughput


def part_throughput(ctx: Context) -> dict[str, Any]:
    from throughput import run_benchmark

    sizes = ctx.sizes
    result = run_benchmark(ctx.data.get("cifar10"), "fastnet", ctx.device, sizes.throughput_batch,
                           sizes.throughput_steps, sizes.loader_workers,
                           model_options=dict(sizes.throughput_options))
    return {"result": result}


# ---------------------------------------------------------------------------- 2. recipe


def find_recipe(names: tuple[str, ...] = RECIPE_NAMES) -> tuple[dict[str, Any] | None, str]:
    """The first ``module:NAME`` that is a dict of config keys, and where it came from; or
    None and what was tried."""
    tried = []
    for name in names:
        module_name, _, attribute = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            tried.append(f"{module_name} does not import ({error})")
            continue
        value = getattr(module, attribute, None)
        if isinstance(value, Mapping):
            return dict(value), name
        tried.append(f"{name} is not defined" if value is None else f"{name} is not a dict")
    return None, "; ".join(tried)


def part_recipe(ctx: Context) -> dict[str, Any]:
    from harness.config import TrialConfig
    from harness.errors import ConfigError
    from harness.train import train

    recipe, where = find_recipe(tuple(ctx.args.recipe) if ctx.args.recipe else RECIPE_NAMES)
    if recipe is None:
        raise SkipPart(f"no fastnet recipe preset yet: {where}")
    errors = []
    for overrides in ctx.sizes.recipe_overrides:
        values = {**recipe, "dataset": "cifar10", "device": ctx.device.type, **overrides}
        try:
            TrialConfig.from_dict(values)
            break
        except ConfigError as error:
            errors.append(str(error))
    else:
        raise SkipPart(f"the recipe {where} does not validate here: {'; '.join(errors)}")
    dataset = ctx.data.get("cifar10")
    if ctx.sizes.recipe_warmup:  # cuDNN autotuning and lazy CUDA init out of the timed runs
        train(TrialConfig.from_dict({**values, "repeat": 1000}), dataset=dataset)
    runs = []
    for repeat in range(ctx.sizes.recipe_seeds):
        config = TrialConfig.from_dict({**values, "repeat": repeat})
        record = train(config, dataset=dataset)
        runs.append({"repeat": repeat, "seed": record["seed"], "status": record["status"],
                     "test_acc": record["final"].get("test_acc"),
                     "train_seconds": round(record["train_seconds"], 3),
                     "wall_seconds": round(record["wall_seconds"], 3)})
        ctx.log(f"recipe seed {repeat}: {runs[-1]}")
    accs = [r["test_acc"] * 100 for r in runs if r["test_acc"] is not None]
    secs = [r["train_seconds"] for r in runs]
    return {"recipe": where, "config": values, "runs": runs,
            "warmup_run": ctx.sizes.recipe_warmup,
            "test_acc_percent": _mean_sd(accs), "train_seconds": _mean_sd(secs)}


def _mean_sd(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"mean": None, "sd": None, "n": 0}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "sd": round(sd, 4), "n": len(values)}


# ---------------------------------------------------------------------------- 3. sharing


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
    for process in processes:
        process.join(timeout)
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
        [str(REPO), str(BENCHMARKS)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
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
    timeout = 180.0 + 4 * sizes.sharing_seconds
    with contextlib.ExitStack() as stack:
        ray = stack.enter_context(ray_instance(ctx, max(sizes.sharing_counts))) if ray_ok else None
        for count in sizes.sharing_counts:
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
                ray.get([remote.remote(s) for s in specs], timeout=timeout)
                results = _collect(specs)
            else:
                # A process that has used CUDA cannot fork; a CPU-only one forks in a moment.
                method = "spawn" if ctx.device.type == "cuda" else "fork"
                results = _run_processes(specs, timeout, method)
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


# ---------------------------------------------------------------------------- 4. slices


class _EnoughEpochs(Exception):
    pass


def _first_training_example(plan: Any) -> tuple[str, Mapping[str, Any]] | None:
    """The first training stage and its first configuration, in the study's own order."""
    for stage in plan.stages:
        if stage.trial_kind == "train" and stage.points:
            workloads = {point.workload for point in stage.points}
            first = next(w for w in plan.examples if w in workloads)
            return stage.name, plan.examples[first]
    return None


def run_slice(ctx: Context, example: Mapping[str, Any], compile_model: bool) -> dict[str, Any]:
    """A few epochs of one study trial (cut to slice_steps steps each), its reports kept."""
    from harness.config import TrialConfig
    from harness.train import train

    sizes = ctx.sizes
    values = {**example, "device": ctx.device.type, "compile": compile_model,
              "test_limit": min(example.get("test_limit") or sizes.slice_test, sizes.slice_test)}
    if example.get("imbalance", "none") == "none":
        # About slice_steps steps per epoch; a long tail is left whole (a subset small
        # enough for that would leave its rarest classes empty), the epoch count cuts it.
        limit = example.get("train_limit") or 0
        steps_images = int(example.get("batch_size", 128)) * sizes.slice_steps
        values["train_limit"] = min(limit, steps_images) if limit else steps_images
    config = TrialConfig.from_dict(values)
    epochs: list[dict[str, Any]] = []

    def report(metrics: dict[str, Any], _state: Any) -> None:
        epochs.append({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        if len(epochs) >= sizes.slice_epochs:
            raise _EnoughEpochs

    began = time.perf_counter()
    status = "completed"
    try:
        record = train(config, report, dataset=ctx.data.get(config.dataset))
        status = record["status"]
        epochs = epochs or [h for h in record["history"] if isinstance(h, dict)]
    except _EnoughEpochs:
        status = f"stopped after {sizes.slice_epochs} epochs (slice)"
    precision = config.precision if config.precision != "auto" else (
        "bf16" if ctx.device.type == "cuda" else "fp32")
    return {"compile": compile_model, "status": status, "precision": precision,
            "channels_last": bool(config.channels_last and ctx.device.type == "cuda"),
            "train_limit": config.train_limit, "batch_size": config.batch_size,
            "epochs": epochs, "wall_seconds": round(time.perf_counter() - began, 2)}


def part_slices(ctx: Context) -> dict[str, Any]:
    profile_name = ctx.sizes.profile
    studies: dict[str, Any] = {}
    for name, plan in ctx.plans().items():
        entry: dict[str, Any] = {"runs": []}
        studies[name] = entry
        if plan is None:
            entry["why"] = f"no {profile_name} profile"
            continue
        if isinstance(plan, str):
            entry["why"] = f"its {profile_name} profile does not plan: {plan}"
            entry["failed"] = True
            continue
        found = _first_training_example(plan)
        if found is None:
            entry["why"] = "no training trials (check trials compute on the CPU: no GPU path)"
            continue
        entry["stage"], example = found
        entry["model"] = example.get("model")
        for compile_model in (False, True):
            if compile_model and ctx.device.type != "cuda":
                entry["runs"].append({"compile": True, "status": "skipped", "why":
                                      "torch.compile on a CPU takes minutes per model; the GPU "
                                      "run compiles"})
                continue
            need = 60.0 if compile_model else 15.0
            if ctx.device.type == "cuda" and ctx.spendable("slices") < need:
                entry["runs"].append({"compile": compile_model, "status": "skipped",
                                      "why": "time budget"})
                continue
            ctx.log(f"slice {name}/{entry['stage']} compile={compile_model}")
            try:
                entry["runs"].append(run_slice(ctx, example, compile_model))
            except Exception as error:  # noqa: BLE001 - one study's failure is its row
                entry["runs"].append({"compile": compile_model, "status": "failed",
                                      "why": f"{type(error).__name__}: {error}"})
    failed = [n for n, e in studies.items()
              if e.get("failed") or any(r["status"] == "failed" for r in e["runs"])]
    return {"_status": "failed" if failed else "ran",
            "_why": f"failed: {', '.join(failed)}" if failed else "",
            "profile": profile_name, "studies": studies}


# ---------------------------------------------------------------------------- 5. pricing


def part_pricing(ctx: Context) -> dict[str, Any]:
    from harness.files import write_json_atomic
    from harness.pricing import estimate_profile, measure, render_estimate, table_json

    plans = [p for p in ctx.plans().values() if p is not None and not isinstance(p, str)]
    broken = [f"{n}: {p}" for n, p in ctx.plans().items() if isinstance(p, str)]
    budget = max(1.0, min(ctx.sizes.pricing_budget_s, ctx.spendable("pricing")))
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


# ---------------------------------------------------------------------------- 6. mlflow


def _numbers(prefix: str, value: Any) -> Iterator[tuple[str, float]]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float) and math.isfinite(value):
        yield prefix, float(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numbers(f"{prefix}.{key}" if prefix else str(key), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(f"{prefix}.{index}", item)


def part_mlflow(ctx: Context) -> dict[str, Any]:
    if not ctx.modules["mlflow"]["ok"]:
        raise SkipPart(f"MLflow not importable ({ctx.modules['mlflow']['why']})")
    import mlflow

    from harness.plan import resolve_runs_dir
    from harness.tracking import ARTIFACTS_DIR, quiet_mlflow, tracking_uri

    quiet_mlflow()
    uri = ctx.args.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri(
        resolve_runs_dir(None))
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        # As harness.tracking does: a SQLite store keeps artifacts beside its database
        # file, not in whatever folder the suite ran from.
        location = None
        if uri.startswith("sqlite:///"):
            database = Path(uri.removeprefix("sqlite:///")).resolve()
            location = (database.parent / ARTIFACTS_DIR / EXPERIMENT).as_uri()
        mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(EXPERIMENT)
    metrics = {}
    for part, entry in ctx.state["parts"].items():
        for key, value in _numbers(part, entry.get("figures", {})):
            # MLflow keys allow letters, digits and _-. /; the figures' keys are such.
            metrics[key[:250]] = value
    with mlflow.start_run(run_name=ctx.out.name) as run:
        mlflow.log_params({"device": ctx.state["suite"]["device_name"],
                           "torch": torch.__version__, "tiny": ctx.args.tiny})
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(ctx.out))
    return {"tracking_uri": uri, "run_id": run.info.run_id, "metrics": len(metrics)}


# ---------------------------------------------------------------------------- summary.md


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
              f"{139_000 / 23_700:.1f}x vs 8 workers, target >= 10x vs the best DataLoader)."]
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


def render_summary(state: Mapping[str, Any]) -> str:
    suite = state["suite"]
    modules = "; ".join(
        f"{name} {m['version']}" if m["ok"] else f"{name}: not importable ({m['why']})"
        for name, m in suite["modules"].items())
    lines = [
        f"# GPU suite: {suite['device_name']}, {suite['date']}", "",
        f"- command: `{suite['command']}`",
        f"- wall time: {suite.get('wall_seconds', 0):.0f}s of a {suite['budget_seconds']:.0f}s "
        "budget (data loading included)",
        f"- machine: {suite['device_name']} ({suite['device']}); torch {suite['torch']}, CUDA "
        f"{suite['cuda']}, Python {suite['python']}; harness commit {suite['git_commit']}",
        f"- data: {suite.get('data', '—')}",
        f"- optional modules: {modules}" + (f"; Ray from {suite['ray_site']}"
                                            if suite.get("ray_site") else ""),
        f"- sizes: {'--tiny (toy sizes, synthetic CIFAR-shaped data)' if suite['tiny'] else 'full'}",
        "", "## Parts", "", "| part | status | seconds | why |", "| --- | --- | ---: | --- |",
    ]
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


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true",
                        help="toy sizes and synthetic CIFAR-shaped data: the code paths on a CPU")
    parser.add_argument("--data-root", help="folder with CIFAR-10 (default: $HARNESS_DATA)")
    parser.add_argument("--out", type=Path, help="the exact output folder")
    parser.add_argument("--out-root", type=Path, default=REPO / "results" / "gpu",
                        help="where <card>-<date>/ goes (default: results/gpu)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma list of parts to run (default: all of {','.join(PARTS)})")
    parser.add_argument("--ray-site", help="an offline Ray bundle: a site-packages folder or "
                                           "the .tar.xz of ../shared/tools/offline-ray-bundle.sh")
    parser.add_argument("--recipe", action="append",
                        help="module:NAME of the fastnet recipe dict (default: "
                             + ", then ".join(RECIPE_NAMES) + ")")
    parser.add_argument("--mlflow-uri", help="tracking URI (default: $MLFLOW_TRACKING_URI, else "
                                             "sqlite:///runs/mlflow.db)")
    parser.add_argument("--budget", type=float, help="seconds for the whole suite "
                                                     f"(default {BUDGET_S:g}; --tiny 300)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ray_site = use_ray_site(args.ray_site) if args.ray_site else None
    selected = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = sorted(set(selected) - set(PARTS))
    if unknown:
        print(f"gpu_suite: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}",
              file=sys.stderr)
        return 2
    from harness.environment import device_name, git_commit, resolve_device

    if args.device == "auto" and not torch.cuda.is_available() and not args.tiny:
        print("gpu_suite: no CUDA GPU here; run it on a GPU machine, or with --tiny on a CPU",
              file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    sizes = TINY if args.tiny else FULL
    if device.type == "cpu":
        # As Ray runs a one-CPU trial; on a small shared CPU more threads mostly spin.
        torch.set_num_threads(1)
    if args.budget is not None:
        sizes = Sizes(**{**sizes.__dict__, "budget_s": args.budget})
    name = device_name(device)
    date = time.strftime("%Y-%m-%d")
    out = args.out or args.out_root / f"{slug(name)}-{date}"
    modules = {module: probe(module) for module in OPTIONAL}
    ctx = Context(args, sizes, device, Data(args.tiny, args.data_root), out, modules,
                  selected=selected)
    ctx.state["suite"] = {
        "device": device.type, "device_name": name, "date": date, "tiny": args.tiny,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "python": platform.python_version(), "git_commit": git_commit(),
        "budget_seconds": sizes.budget_s, "modules": modules, "ray_site": ray_site,
        "out": str(out),
    }
    ctx.log(f"GPU suite on {name} ({device.type}), writing {out}; optional modules: "
            + ", ".join(f"{m} {'yes' if v['ok'] else 'no'}" for m, v in modules.items()))
    bodies = {"throughput": part_throughput, "recipe": part_recipe, "sharing": part_sharing,
              "slices": part_slices, "pricing": part_pricing, "mlflow": part_mlflow}
    for part in PARTS:
        run_part(ctx, part, bodies[part])
    ctx.log(f"done: {out / 'summary.md'}")
    failed = [p for p, e in ctx.state["parts"].items() if e["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
