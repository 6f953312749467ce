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
    return 0


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
