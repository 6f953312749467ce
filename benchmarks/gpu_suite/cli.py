"""The command line: `python -m benchmarks.gpu_suite [options]` (see the package docstring)."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from benchmarks.gpu_suite.config import (
    BUDGET_S,
    FULL,
    OPTIONAL,
    PARTS,
    RECIPE_NAMES,
    TINY,
    Sizes,
)
from benchmarks.gpu_suite.context import Context, slug
from benchmarks.gpu_suite.inputs import Data, probe, use_ray_site
from benchmarks.gpu_suite.targets import FULL_TARGETS, TINY_TARGETS, Targets

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_suite",
        description="The GPU suite: every GPU figure against its target, PASS / FAIL, exit 1 "
                    "on any FAIL (2: bad arguments or no GPU).")
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
    parser.add_argument("--targets", choices=["auto", "full", "tiny"], default="auto",
                        help="which targets judge the figures (default: tiny's with --tiny, "
                             "else the full ones; --targets full on --tiny shows a FAIL)")
    parser.add_argument("--budget", type=float, help="seconds for the whole suite "
                                                     f"(default {BUDGET_S:g}; --tiny 300)")
    return parser.parse_args(argv)


def _targets(args: argparse.Namespace) -> Targets:
    tiny = args.tiny if args.targets == "auto" else args.targets == "tiny"
    return TINY_TARGETS if tiny else FULL_TARGETS


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    selected = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = sorted(set(selected) - set(PARTS))
    if unknown:
        print(f"gpu_suite: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}",
              file=sys.stderr)
        return 2
    ray_site = use_ray_site(args.ray_site) if args.ray_site else None
    import torch

    from benchmarks.gpu_suite.parts import BODIES
    from benchmarks.gpu_suite.suite import run_suite
    from harness.environment import device_name, git_commit, resolve_device

    if args.device == "auto" and not torch.cuda.is_available() and not args.tiny:
        print("gpu_suite: no CUDA GPU here; run it on a GPU machine, or with --tiny on a CPU",
              file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    sizes: Sizes = TINY if args.tiny else FULL
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
                  targets=_targets(args), selected=selected)
    ctx.state["suite"] = {
        "device": device.type, "device_name": name, "date": date, "tiny": args.tiny,
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.gpu_suite",
                             *sys.argv[1:]]),
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "python": platform.python_version(), "git_commit": git_commit(),
        "budget_seconds": sizes.budget_s, "shares": dict(sizes.shares), "modules": modules,
        "ray_site": ray_site, "out": str(out), "targets": ctx.targets.__dict__,
    }
    ctx.log(f"GPU suite on {name} ({device.type}), writing {out}; optional modules: "
            + ", ".join(f"{m} {'yes' if v['ok'] else 'no'}" for m, v in modules.items()))
    if {"throughput", "recipe", "sharing"} & set(selected):
        # Decoded once, before any part's share starts: 60,000 JPEGs are the suite's data
        # cost, not the throughput part's (the whole budget still counts them).
        try:
            ctx.data.get("cifar10")
        except Exception as error:  # noqa: BLE001 - any reason the data cannot be read
            print(f"gpu_suite: cannot load CIFAR-10: {error}", file=sys.stderr)
            return 2
        ctx.log(f"data: {ctx.data.describe()}")
    return run_suite(ctx, BODIES)
