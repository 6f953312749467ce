"""How much does running trials through Ray Tune (and MLflow) cost over training alone?

Runs a study of N one-epoch trials on digits through ``harness.results.run_study`` (the
same path as ``harness run``) and prints the command's wall time against the sum of the
trials' own wall and train seconds (from their records), with the time split into Ray
start, Tune stage, MLflow logging and results writing.

    python benchmarks/ray_overhead.py                 # 20 trials, mlp hidden=32
    python benchmarks/ray_overhead.py --hidden 2048 --layers 2    # ~1 s trials
    ray start --head --num-cpus=2                     # a Ray instance that stays up, then
    RAY_AUTH_MODE=token python benchmarks/ray_overhead.py --ray-address HOST:PORT

``--ray-address`` (or ``RAY_ADDRESS``) joins a running Ray instance instead of starting and
stopping one, as ``harness run --ray-address`` does; "ray start" and "ray stop" below are
then connecting and disconnecting.

The ratio wall / sum(trial wall) is what "overhead" means here; with C CPUs and one CPU
per trial, perfect packing gives about 1/C, so the ratio also shows how well Tune keeps
the CPUs busy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness import ray_session, results, runner, tune
from harness.space import grid
from harness.study import STUDIES, Profile, Stage, Study, register_study

TIMES: dict[str, float] = defaultdict(float)


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[name] += time.perf_counter() - start

    return wrapper


def _timed_session(original: Callable[..., Any]) -> Callable[..., Any]:
    """ray_session, timing its start (ray.init) and its stop (ray.shutdown) apart."""

    @contextlib.contextmanager
    def session(*args: Any, **kwargs: Any) -> Iterator[str]:
        start = time.perf_counter()
        manager = original(*args, **kwargs)
        where = manager.__enter__()
        TIMES["ray start"] += time.perf_counter() - start
        try:
            yield where
        finally:
            stop = time.perf_counter()
            manager.__exit__(None, None, None)
            TIMES["ray stop"] += time.perf_counter() - stop

    return session


def register(trials: int, hidden: int, layers: int, epochs: int) -> str:
    name = "ray-overhead"
    space = {
        "dataset": "digits",
        "model": "mlp",
        "model.hidden": (hidden,) * layers,
        "device": "cpu",
        "epochs": epochs,
        "batch_size": 64,
        "schedule": "constant",
        "lr": grid(0.05, 0.1),
    }
    stage = Stage("bench", space, repeats=max(1, trials // 2))
    if name not in STUDIES:
        register_study(
            Study(
                name,
                "Ray overhead benchmark",
                {"bench": Profile("bench", f"{trials} one-epoch digits trials", (stage,))},
                summary=lambda _records, _profile: [],
            )
        )
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=32, help="MLP width: bigger = longer trials")
    parser.add_argument("--layers", type=int, default=1, help="hidden layers of that width")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--ray-address",
                        help="join this running Ray instance (default: $RAY_ADDRESS, else "
                             "start a local one and stop it afterwards)")
    args = parser.parse_args(argv)

    study = register(args.trials, args.hidden, args.layers, args.epochs)
    results.plan_run = _timed("validate (imports studies)", results.plan_run)
    runner._run_stage = _timed("stage (tune + mlflow)", runner._run_stage)
    tune.run_tuner = _timed("  tune.fit", tune.run_tuner)
    results.write_results = _timed("results", results.write_results)
    ray_session.ray_session = _timed_session(ray_session.ray_session)
    if not args.no_mlflow:
        from harness.tracking import Tracker

        Tracker.log_trial = _timed("  mlflow per trial (bg)", Tracker.log_trial)
        Tracker.sync_stage = _timed("  mlflow reconcile", Tracker.sync_stage)
        Tracker.open = classmethod(_timed("  mlflow open", Tracker.open.__func__))
    with tempfile.TemporaryDirectory(prefix="ray-overhead-") as folder:
        start = time.perf_counter()
        summary = results.run_study(
            runner.RunOptions(
                study,
                "bench",
                runs_dir=Path(folder) / "runs",
                results_dir=Path(folder) / "results",
                tracking=not args.no_mlflow,
                ray_address=args.ray_address,
            ),
            echo=lambda _line: None,
        )
        wall = time.perf_counter() - start

    records = summary.records
    trial_wall = sum(r["wall_seconds"] for r in records)
    trial_train = sum(r["train_seconds"] for r in records)
    cpus = os.cpu_count() or 1
    joined = args.ray_address or os.environ.get("RAY_ADDRESS")
    numbers = {
        "ray": f"joined {joined}" if joined else "started and stopped a local instance",
        "trials": len(records),
        "cpus": cpus,
        "hidden": args.hidden,
        "layers": args.layers,
        "epochs": args.epochs,
        "mlflow": not args.no_mlflow,
        "wall_s": wall,
        "sum_trial_wall_s": trial_wall,
        "sum_trial_train_s": trial_train,
        "ratio_wall_to_trial_wall": wall / trial_wall,
        "ratio_wall_to_trial_train": wall / trial_train,
        "parts_s": dict(TIMES),
    }
    print(
        f"{len(records)} trials (digits, mlp hidden={args.hidden}x{args.layers}, "
        f"{args.epochs} epoch) "
        f"on {cpus} CPUs, MLflow {'on' if numbers['mlflow'] else 'off'}; Ray: {numbers['ray']}"
    )
    print(f"  command wall time        {wall:8.2f} s")
    print(f"  sum of trial wall time   {trial_wall:8.2f} s   ratio {wall / trial_wall:6.2f}x")
    print(f"  sum of trial train time  {trial_train:8.2f} s   ratio {wall / trial_train:6.2f}x")
    for name, seconds in TIMES.items():
        print(f"    {name:<26} {seconds:8.2f} s")
    stage = TIMES.get("  tune.fit", 0.0)
    other = wall - sum(v for k, v in TIMES.items() if not k.startswith(" "))
    print(f"    {'other':<26} {other:8.2f} s")
    print("    (indented: parts of the line below them, or on a background thread)")
    print(
        f"  tune.fit minus trials/CPUs: {stage - trial_wall / cpus:.2f} s "
        f"({(stage - trial_wall / cpus) / max(1, len(records)):.3f} s per trial)"
    )
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
