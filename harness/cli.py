"""The `harness` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import HarnessError

DEFAULT_TRAIN_OUT = Path("runs") / "records"


def _train(args: argparse.Namespace) -> int:
    from harness.config import TrialConfig, parse_overrides
    from harness.records import write_record
    from harness.train import train

    values: dict[str, object] = parse_overrides(args.set or [])
    for key in ("dataset", "model", "loss", "epochs", "device", "train_limit"):
        given = getattr(args, key)
        if given is not None:
            values[key] = given
    if args.deterministic:
        values["deterministic"] = True
    config = TrialConfig.from_dict(values)

    def progress(metrics: dict, _checkpoint: dict | None) -> None:
        print(
            f"epoch {metrics['epoch']:>3}/{config.epochs}  "
            f"train loss {metrics['train_loss']:.4f} acc {metrics['train_acc']:.4f}  "
            f"test loss {metrics['test_loss']:.4f} acc {metrics['test_acc']:.4f}  "
            f"{metrics['epoch_seconds']:.1f}s  {metrics['images_per_second']:.0f} img/s",
            flush=True,
        )

    record = train(config, progress, data_root=args.data_root)
    path = write_record(record, args.out)
    if record["status"] != "completed":
        print(f"trial {record['status']} at epoch {record['history'][-1]['epoch']}", flush=True)
    print(path)
    return 0


def _list(_args: argparse.Namespace) -> int:
    from harness.data import list_datasets
    from harness.losses import list_losses, loss_options
    from harness.models import list_models, model_options
    from harness.study import get_study, list_studies

    def options(defaults: dict) -> str:
        return ", ".join(f"{k}={v}" for k, v in defaults.items()) or "-"

    print("datasets:")
    for name in list_datasets():
        print(f"  {name}")
    print("models:")
    for name in list_models():
        print(f"  {name:<20} {options(model_options(name))}")
    print("losses:")
    for name in list_losses():
        print(f"  {name:<20} {options(loss_options(name))}")
    print("studies:")
    for name in list_studies():
        study = get_study(name)
        headline = study.description.strip().splitlines()[0] if study.description else ""
        print(f"  {name:<20} {headline}")
        for profile in study.profiles.values():
            stages = ", ".join(stage.name for stage in profile.stages)
            print(f"    --profile {profile.name:<10} {profile.description} [stages: {stages}]")
    return 0


def _run(args: argparse.Namespace) -> int:
    from harness.config import parse_overrides
    from harness.runner import RunOptions, run_study

    options = RunOptions(
        study=args.study,
        profile=args.profile,
        overrides=parse_overrides(args.set or []),
        gpus_per_trial=args.gpus_per_trial,
        ray_address=args.ray_address,
        resume=args.resume,
        runs_dir=args.runs_dir,
        results_dir=args.results_dir,
        data_root=str(Path(args.data_root).resolve()) if args.data_root else None,
        tracking=not args.no_mlflow,
    )
    summary = run_study(options, echo=lambda line: print(line, flush=True))
    print(f"{len(summary.records)} trials in {summary.seconds:.1f}s; "
          f"results in {summary.results_dir}")
    if summary.tracking_uri:
        print(f"MLflow: {summary.tracking_uri}  "
              f"(browse with `harness ui --runs-dir {args.runs_dir}`)")
    return 0


def _tables(args: argparse.Namespace) -> int:
    from harness.runner import rebuild_tables

    out = rebuild_tables(args.study, args.profile, args.runs_dir, args.results_dir,
                         from_results=args.from_results)
    print(out)
    return 0


def _ui(args: argparse.Namespace) -> int:
    import os

    from harness.tracking import tracking_uri

    uri = tracking_uri(args.runs_dir)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(args.port)]
    print(" ".join(command[1:]), flush=True)
    os.execv(sys.executable, command)  # replaces this process: Ctrl-C stops the server
    return 0  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Reproducible CIFAR-10 studies: train, run, tabulate."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="run one trial and write its record")
    train.add_argument("--dataset", help="dataset name (see `harness list`)")
    train.add_argument("--model", help="model name (see `harness list`)")
    train.add_argument("--loss", help="loss name (see `harness list`)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="any config key, e.g. lr=0.1, model.blocks=4, loss.beta=0.999")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"])
    train.add_argument("--data-root", help="folder with the data (default: $HARNESS_DATA)")
    train.add_argument("--train-limit", type=int, help="train on a seeded subset of N images")
    train.add_argument("--deterministic", action="store_true",
                       help="torch deterministic algorithms on CUDA (CPU runs are always repeatable)")
    train.add_argument("--out", type=Path, default=DEFAULT_TRAIN_OUT,
                       help=f"folder for the record (default: {DEFAULT_TRAIN_OUT})")
    train.set_defaults(func=_train)

    lister = sub.add_parser("list", help="show datasets, models, losses and studies")
    lister.set_defaults(func=_list)

    run = sub.add_parser("run", help="run a study's profile on Ray Tune and write its results")
    run.add_argument("study", help="study name (see `harness list`)")
    run.add_argument("--profile", required=True, help="profile of the study, e.g. smoke or paper")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="replace a config key in every stage, e.g. epochs=2 or device=cpu")
    run.add_argument("--gpus-per-trial", type=float,
                     help="GPUs per trial, overriding the study's; 0.25 runs four trials per card")
    run.add_argument("--ray-address",
                     help="an existing Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
    run.add_argument("--resume", action="store_true",
                     help="continue an interrupted run: finished stages and trials are kept")
    run.add_argument("--runs-dir", type=Path, default=Path("runs"),
                     help="scratch folder: Ray storage, records, MLflow store (default: runs)")
    run.add_argument("--results-dir", type=Path, default=Path("results"),
                     help="where results/<study>/<profile>/ goes (default: results)")
    run.add_argument("--data-root", help="folder with the data (default: $HARNESS_DATA)")
    run.add_argument("--no-mlflow", action="store_true", help="skip MLflow logging")
    run.set_defaults(func=_run)

    tables = sub.add_parser(
        "tables", help="rebuild results/<study>/<profile>/ from stored records, no training",
        description="Reads runs/records/<study>/<profile>/ if it holds records (the latest "
                    "run), else the records/ folder committed in results/<study>/<profile>/.")
    tables.add_argument("study")
    tables.add_argument("--profile", required=True)
    tables.add_argument("--runs-dir", type=Path, default=Path("runs"))
    tables.add_argument("--results-dir", type=Path, default=Path("results"))
    tables.add_argument("--from-results", action="store_true",
                        help="read the committed results/<study>/<profile>/records/ even "
                             "when runs/ has records")
    tables.set_defaults(func=_tables)

    ui = sub.add_parser("ui", help="browse the MLflow store (mlflow ui on 127.0.0.1)")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--runs-dir", type=Path, default=Path("runs"),
                    help="the runs folder whose mlflow.db to open ($MLFLOW_TRACKING_URI wins)")
    ui.set_defaults(func=_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except HarnessError as error:
        # Expected, fixable failures: one message, no traceback.
        print(f"harness: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
