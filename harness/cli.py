"""The `harness` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import HarnessError

# Progress-line fields that are bookkeeping, not results.
_NOT_SHOWN = {"epoch", "lr", "epoch_seconds", "images_per_second"}


def progress_line(metrics: dict, epochs: int) -> str:
    """One line per epoch: every scalar metric the task reported, then the speed."""
    shown = "  ".join(
        f"{key} {value:.4f}" for key, value in metrics.items()
        if key not in _NOT_SHOWN and isinstance(value, int | float) and not isinstance(value, bool)
    )
    return (f"epoch {metrics['epoch']:>3}/{epochs}  {shown}  "
            f"{metrics['epoch_seconds']:.1f}s  {metrics['images_per_second']:.0f} img/s")


def _train(args: argparse.Namespace) -> int:
    from harness.config import TrialConfig, parse_overrides
    from harness.layout import resolve_runs_dir
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
        print(progress_line(metrics, config.epochs), flush=True)

    out = args.out or resolve_runs_dir(None) / "records"
    record = train(config, progress, data_root=args.data_root)
    path = write_record(record, out)
    if record["status"] != "completed":
        print(f"trial {record['status']} at epoch {record['history'][-1]['epoch']}", flush=True)
    print(path)
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.studies:
        from harness.study import list_studies

        print("\n".join(list_studies()))  # one name per line, for scripts (the noxfile)
        return 0
    from harness.data import list_datasets
    from harness.losses import list_losses, loss_options, loss_output
    from harness.models import list_models, model_options, model_output
    from harness.registry import describe_options as options
    from harness.study import get_study, list_studies
    from harness.tasks import list_tasks, task_class, task_options

    print("datasets:")
    for name in list_datasets():
        print(f"  {name}")
    print("tasks:")
    for name in list_tasks():
        task = task_class(name)
        print(f"  {name:<20} output {task.output}, metric {task.metric} ({task.mode}); "
              f"{options(task_options(name))}")
    print("models:")
    for name in list_models():
        print(f"  {name:<20} [{model_output(name)}] {options(model_options(name))}")
    print("losses:")
    for name in list_losses():
        print(f"  {name:<20} [{loss_output(name)}] {options(loss_options(name))}")
    print("studies:")
    for name in list_studies():
        study = get_study(name)
        headline = study.description.strip().splitlines()[0] if study.description else ""
        print(f"  {name:<20} {headline}")
        if study.uses:
            print(f"    uses the results of: {', '.join(study.uses)} (same profile)")
        for profile in study.profiles.values():
            stages = ", ".join(stage.name for stage in profile.stages)
            print(f"    --profile {profile.name:<10} {profile.description} [stages: {stages}]")
    return 0


def _run(args: argparse.Namespace) -> int:
    from harness.config import parse_overrides
    from harness.errors import ConfigError
    from harness.plan import RunOptions

    if args.all_studies and (args.study or not args.dry_run):
        raise ConfigError("--all-studies goes with --dry-run and no study name "
                          "(run studies one at a time, or `nox -s study -- --all PROFILE`)")
    if not args.all_studies and not args.study:
        raise ConfigError("harness run needs a study name (see `harness list`), or "
                          "--all-studies with --dry-run")
    options = RunOptions(
        study=args.study or "",
        profile=args.profile,
        overrides=parse_overrides(args.set or []),
        gpus_per_trial=args.gpus_per_trial,
        ray_address=args.ray_address,
        resume=args.resume,
        rerun=args.rerun,
        runs_dir=args.runs_dir,
        results_dir=args.results_dir,
        storage=args.storage,
        data_root=str(Path(args.data_root).resolve()) if args.data_root else None,
        tracking=not args.no_mlflow,
        trial_resources=_resources(args.trial_resource or []),
    )
    if args.dry_run:
        from harness.pricing import print_dry_run, print_dry_runs

        if args.all_studies:
            from dataclasses import replace

            from harness.study import list_studies

            print_dry_runs([replace(options, study=name) for name in list_studies()])
        else:
            print_dry_run(options)
            from harness.layout import resolve_results_dir
            from harness.power import power_text
            from harness.study import get_study

            print(power_text(get_study(options.study), options.profile,
                             resolve_results_dir(options.results_dir)))
        return 0
    from harness.results import run_study

    summary = run_study(options, echo=lambda line: print(line, flush=True))
    print(f"{len(summary.records)} trials in {summary.seconds:.1f}s; "
          f"results in {summary.results_dir}")
    if summary.tracking_uri:
        print(f"MLflow: {summary.tracking_uri}  (browse with `harness ui`)")
    return 0


def _resources(items: Sequence[str]) -> dict[str, float]:
    """--trial-resource NAME=AMOUNT: custom Ray resources each trial needs (e.g. a node's
    label, to pin trials to it)."""
    from harness.errors import ConfigError

    parsed: dict[str, float] = {}
    for item in items:
        name, sep, amount = item.partition("=")
        try:
            parsed[name.strip()] = float(amount) if sep else 1.0
        except ValueError:
            raise ConfigError(f"--trial-resource expects NAME=AMOUNT, got {item!r}") from None
        if not name.strip() or parsed[name.strip()] <= 0:
            raise ConfigError(f"--trial-resource expects NAME=AMOUNT with AMOUNT > 0, got {item!r}")
    return parsed


def _tables(args: argparse.Namespace) -> int:
    from harness.results import rebuild_tables

    out = rebuild_tables(args.study, args.profile, args.runs_dir, args.results_dir,
                         from_results=args.from_results)
    print(out)
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from harness.reproduce import ReproduceOptions, reproduce

    reproduce(ReproduceOptions(
        study=args.study, profile=args.profile, sample=args.sample, config_hash=args.hash,
        stage=args.stage, budget_minutes=args.budget_minutes, dry_run=args.dry_run,
        results_dir=args.results_dir, data_root=args.data_root, out=args.out,
        device=args.device,
    ), echo=lambda line: print(line, flush=True))
    return 0


def _report(args: argparse.Namespace) -> int:
    from harness.layout import resolve_results_dir
    from harness.report.paper import write_report

    for path in write_report(args.profile, resolve_results_dir(args.results_dir),
                             pdf=not args.no_pdf):
        print(path)
    return 0


def _ui(args: argparse.Namespace) -> int:
    import os

    from harness.layout import resolve_runs_dir
    from harness.tracking import tracking_uri
    from harness.ui import home_url, ui_links

    uri = tracking_uri(resolve_runs_dir(args.runs_dir))
    # One server process: with MLflow's default of 4, uvicorn kills a worker that has not
    # answered its 5 s health check (each imports MLflow: longer on a busy 2-core machine)
    # and starts another, for ever, and the UI never answers.
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"]
    base = f"http://127.0.0.1:{args.port}"
    links = ui_links(uri, base)
    # An experiment's own page opens MLflow 3's GenAI view; these open one saved view per
    # stage in the Model training view: its runs best first (harness.ui, harness.ui_views).
    if links:
        print("Each study's runs, one view per stage, best first on the metric it chose by:")
    for study in dict.fromkeys(link.study for link in links):
        print(f"  {study}")
        for link in (link for link in links if link.study == study):
            print(f"    {link.what + ': ' if link.what else ''}{link.url}")
    print(f"MLflow UI: {home_url(base)}  (the studies)")
    # The experiments list links to each experiment without that parameter (MLflow 3.18).
    print('  A study opened from there shows MLflow\'s GenAI page until you click "Model '
          'training" at the top of its sidebar once (the browser remembers it).')
    print(f"store: {uri}  (MLflow's server starts now; Ctrl-C stops it)", flush=True)
    # No job runner: it starts 8 more processes (huey consumers) for GenAI jobs (judges,
    # issue detection, trace rollups) that a store of training runs never uses, and each
    # imports MLflow, which slows the UI's start on a small machine. Set it to true to
    # have them.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    os.execv(sys.executable, command)  # replaces this process: Ctrl-C stops the server
    return 0  # pragma: no cover


RUNS_HELP = ("scratch folder: Ray storage, records, MLflow store (default: $HARNESS_RUNS, "
             "else runs/ in the project root when run inside the checkout, else ./runs)")
RESULTS_HELP = ("where results/<study>/<profile>/ goes (default: $HARNESS_RESULTS, else "
                "results/ in the project root when run inside the checkout, else ./results)")


def build_parser() -> argparse.ArgumentParser:
    from harness.errors import exit_codes_text

    parser = argparse.ArgumentParser(
        prog="harness", description="Reproducible CIFAR-10 studies: train, run, tabulate.",
        epilog=exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter,
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
    train.add_argument("--out", type=Path,
                       help="folder for the record (default: <runs folder>/records)")
    train.set_defaults(func=_train)

    lister = sub.add_parser("list", help="show datasets, tasks, models, losses and studies")
    lister.add_argument("--studies", action="store_true",
                        help="print only the registered studies' names, one per line")
    lister.set_defaults(func=_list)

    run = sub.add_parser("run", help="run a study's profile on Ray Tune and write its results")
    run.add_argument("study", nargs="?", help="study name (see `harness list`)")
    run.add_argument("--profile", required=True, help="profile of the study, e.g. smoke or paper")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="replace a config key in every stage, e.g. epochs=2 or device=cpu")
    run.add_argument("--gpus-per-trial", type=float,
                     help="GPUs per trial, overriding the study's; 0.25 runs four trials per card")
    run.add_argument("--ray-address",
                     help="an existing Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
    run.add_argument("--resume", action="store_true",
                     help="continue an interrupted run: finished stages and trials are kept")
    run.add_argument("--rerun", metavar="STAGE",
                     help="with --resume: run STAGE and every later stage again, keeping the "
                          "earlier ones (e.g. after editing that stage in the study)")
    run.add_argument("--runs-dir", type=Path, help=RUNS_HELP)
    run.add_argument("--results-dir", type=Path, help=RESULTS_HELP)
    run.add_argument("--storage",
                     help="Ray Tune storage for a multi-node cluster: an absolute folder every "
                          "node sees, or a URI such as s3://bucket/prefix (default: runs/ray)")
    run.add_argument("--trial-resource", action="append", metavar="NAME=AMOUNT",
                     help="a custom Ray resource each trial needs, e.g. a node label to pin "
                          "trials to that node")
    run.add_argument("--dry-run", action="store_true",
                     help="print the stages, trial counts and estimated cost; start nothing")
    run.add_argument("--all-studies", action="store_true",
                     help="with --dry-run: every registered study's table for --profile")
    run.add_argument("--data-root", help="folder with the data (default: $HARNESS_DATA)")
    run.add_argument("--no-mlflow", action="store_true", help="skip MLflow logging")
    run.set_defaults(func=_run)

    tables = sub.add_parser(
        "tables", help="rebuild results/<study>/<profile>/ from stored records, no training",
        description="Reads runs/records/<study>/<profile>/ if it holds records (the latest "
                    "run), else the records/ folder committed in results/<study>/<profile>/.")
    tables.add_argument("study")
    tables.add_argument("--profile", required=True)
    tables.add_argument("--runs-dir", type=Path, help=RUNS_HELP)
    tables.add_argument("--results-dir", type=Path, help=RESULTS_HELP)
    tables.add_argument("--from-results", action="store_true",
                        help="read the committed results/<study>/<profile>/records/ even "
                             "when runs/ has records")
    tables.set_defaults(func=_tables)

    reproduce = sub.add_parser(
        "reproduce", help="re-train a sample of a study's committed records and say whether "
                          "their numbers come back here; writes nothing to results/ or MLflow",
        description="Classes: identical (bit for bit); within rounding (relative 1e-5 on "
                    "losses and other float reductions, exact on counts and accuracies); "
                    "within noise (another device kind or CUDA without deterministic "
                    "algorithms: inside the record's repeats' spread); differs.")
    reproduce.add_argument("study")
    reproduce.add_argument("--profile", required=True)
    reproduce.add_argument("--sample", type=int, metavar="K",
                           help="the K cheapest records by recorded train time (default 3; "
                                "every match with --hash or --budget-minutes)")
    reproduce.add_argument("--hash", metavar="H", help="only records with config hash H")
    reproduce.add_argument("--stage", metavar="S", help="only records of stage S")
    reproduce.add_argument("--budget-minutes", type=float, metavar="M",
                           help="stop choosing records when their recorded times reach M min")
    reproduce.add_argument("--dry-run", action="store_true",
                           help="list the records it would re-train and the estimated minutes")
    reproduce.add_argument("--results-dir", type=Path, help=RESULTS_HELP)
    reproduce.add_argument("--data-root", help="folder with the data (default: $HARNESS_DATA)")
    reproduce.add_argument("--device", choices=["auto", "cpu", "cuda"],
                           help="re-train on this device (default: the record's config's)")
    reproduce.add_argument("--out", type=Path,
                           help="keep the re-trained records here (default: a temporary "
                                "folder, deleted at the end)")
    reproduce.set_defaults(func=_reproduce)

    report = sub.add_parser(
        "report", help="build the paper (results/report/<profile>/report.md, .tex, .pdf) "
                       "from the studies' results; never trains")
    report.add_argument("--profile", required=True, help="which profile's results to report")
    report.add_argument("--results-dir", type=Path, help=RESULTS_HELP)
    report.add_argument("--no-pdf", action="store_true",
                        help="skip the PDF even when a LaTeX engine is installed")
    report.set_defaults(func=_report)

    ui = sub.add_parser("ui", help="browse the MLflow store (mlflow ui on 127.0.0.1)")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--runs-dir", type=Path,
                    help="the runs folder whose mlflow.db to open ($MLFLOW_TRACKING_URI wins); "
                         + RUNS_HELP)
    ui.set_defaults(func=_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    from harness.termination import signals_stop_like_ctrl_c, stopped_error
    from harness.write_errors import is_file_system_error

    with signals_stop_like_ctrl_c():  # SIGTERM, SIGHUP: as Ctrl-C, exit 143 or 129
        try:
            return func(args)
        except HarnessError as error:
            # Expected, fixable failures: one message, no traceback.
            error = stopped_error(error) or error
            print(f"harness: error: {error}", file=sys.stderr)
            return error.exit_code
        except KeyboardInterrupt as interrupt:
            from harness.errors import INTERRUPTED_EXIT

            stopped = stopped_error(interrupt)
            if stopped is not None:
                print(f"harness: {stopped}", file=sys.stderr)
                return stopped.exit_code
            print("harness: interrupted", file=sys.stderr)
            return INTERRUPTED_EXIT
        except OSError as error:
            if not is_file_system_error(error):
                raise
            # A full or failing disk where no step of ours said more: still one line.
            from harness.write_errors import write_failed

            where = Path(error.filename).parent if error.filename else Path.cwd()
            failed = write_failed(error, where, "a file")
            print(f"harness: error: {failed}", file=sys.stderr)
            return failed.exit_code


if __name__ == "__main__":
    sys.exit(main())
