"""The command line: progress, a record on disk, and one clear message per bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_train_prints_progress_and_the_record_path(tmp_path):
    result = run_cli("train", "--dataset", "digits", "--model", "mlp", "--loss", "ce",
                     "--epochs", "2", "--set", "lr=0.05", "--device", "cpu", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("epoch   1/2") and lines[1].startswith("epoch   2/2")
    record = json.loads(Path(lines[-1]).read_text())
    assert record["config"]["epochs"] == 2 and record["status"] == "completed"


@pytest.mark.slow
def test_list_shows_every_registry():
    result = run_cli("list")
    assert result.returncode == 0
    for name in ("digits", "cifar10", "seed-convnet", "resnet32", "fastnet", "ldam", "balanced-softmax"):
        assert name in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--model", "resnet1000"], 2, "model must be one of"),
        (["--loss", "hinge"], 2, "loss must be one of"),
        (["--set", "lr=fast"], 2, "lr must be a number"),
        (["--set", "width=3"], 2, "unknown config key"),
        (["--set", "model.depth=3"], 2, "unknown option(s) for model 'mlp'"),
    ],
)
def test_bad_input_gets_one_message_and_an_exit_code(args, code, fragment, tmp_path):
    result = run_cli("train", "--dataset", "digits", "--model", "mlp", "--epochs", "1",
                     "--out", str(tmp_path), *args)
    assert result.returncode == code
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_missing_data_root_says_where_and_how(tmp_path):
    missing = tmp_path / "nowhere"
    result = run_cli("train", "--dataset", "cifar10", "--model", "mlp", "--epochs", "1",
                     "--data-root", str(missing), "--out", str(tmp_path / "out"))
    assert result.returncode == 3
    assert str(missing) in result.stderr and "HARNESS_DATA" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_corrupt_archive_says_which_file_and_leaves_no_cache(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "cifar10-jpeg.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"not really gzip" * 10)
    cache = tmp_path / "cache"
    env = {**os.environ, "HARNESS_CACHE": str(cache), "HARNESS_OFFLINE": "1"}
    result = run_cli("train", "--dataset", "cifar10", "--model", "mlp", "--epochs", "1",
                     "--data-root", str(root), "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 3
    assert "cifar10-jpeg.tar.gz" in result.stderr and "corrupt" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    assert not cache.exists() or not any(cache.rglob("*"))


def test_harness_warnings_print_one_clean_line() -> None:
    # A fresh interpreter: pytest's own warning capture would hide what a user sees.
    import subprocess
    import sys

    code = "from harness.errors import warn; warn('this archive is not the documented copy')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.stderr == "harness: warning: this archive is not the documented copy\n"


@pytest.mark.slow
def test_resume_with_a_changed_stage_is_refused_before_ray_starts(tmp_path):
    """`--resume --set epochs=10` after a run with epochs 1: one message naming the stage,
    what changed and the way out, exit 2, Ray never imported, runs/ untouched."""
    pytest.importorskip("ray")
    tests = Path(__file__).resolve().parent
    state = tmp_path / "runs" / "ray" / "tiny-quick"
    code = f"""
import json, sys
sys.path[:0] = [{str(tests)!r}]
import tiny_study
from harness.files import write_json_atomic
from harness.plan import RunOptions, plan_run, stage_definition, stage_fingerprint, start_marker
plan = plan_run(RunOptions("tiny", "quick", runs_dir={str(tmp_path / 'runs')!r},
                           results_dir={str(tmp_path / 'results')!r}, tracking=False))
stage = plan.profile.stages[0]
write_json_atomic(start_marker(plan, stage), {{"stage": "only",
    "fingerprint": stage_fingerprint(stage, stage.space),
    "definition": stage_definition(stage, stage.space)}})
from harness.cli import main
code = main(["run", "tiny", "--profile", "quick", "--resume", "--set", "epochs=10",
             "--runs-dir", {str(tmp_path / 'runs')!r}, "--results-dir", {str(tmp_path / 'results')!r}])
print("ray imported" if "ray" in sys.modules else "ray not imported")
sys.exit(code)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "HARNESS_STUDIES": ""})
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr == (
        "harness: error: stage 'only' of tiny/quick changed since it ran (epochs 1 -> 10): "
        "rerun it with --rerun only (the stages before it are kept), or drop --resume to "
        "start over\n")
    assert result.stdout.splitlines()[-1] == "ray not imported"
    assert sorted(p.name for p in state.iterdir()) == ["only.start.json"]
    assert not (tmp_path / "results" / "tiny").exists()


def test_every_exit_code_is_documented_in_the_readme_and_in_help():
    import re

    from harness.errors import EXIT_CODES, INTERRUPTED_EXIT

    repo = Path(__file__).resolve().parents[1]
    used = {0, INTERRUPTED_EXIT} | {
        int(code) for path in (repo / "harness").rglob("*.py")
        for code in re.findall(r"exit_code\s*=\s*(\d+)", path.read_text())
    }
    assert used == set(EXIT_CODES), f"exit codes used {sorted(used)}, documented {EXIT_CODES}"

    readme = (repo / "README.md").read_text()
    table = readme.split("Exit codes (also in `harness --help`):", 1)[1].split("\n\n")[1]
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", table, flags=re.M))
    assert {int(code): text.replace("`", "") for code, text in rows.items()} == EXIT_CODES

    result = run_cli("--help")
    assert result.returncode == 0
    epilog = result.stdout.split("exit codes:\n", 1)[1]
    entries = re.split(r"^  (?=\d)", epilog, flags=re.M)[1:]
    shown = {int(e.split()[0]): " ".join(e.split()[1:]) for e in entries}
    assert shown == EXIT_CODES


def test_ui_says_first_where_to_browse_not_the_command_it_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    from harness.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # undone after the test
    monkeypatch.setattr(os, "execv", lambda path, argv: None)
    main(["ui", "--port", "5123", "--runs-dir", str(tmp_path / "runs")])
    lines = capsys.readouterr().out.splitlines()
    # An empty store has no study to link: the first line is the experiments list, opened
    # in the model-training view (harness.ui.home_url).
    assert lines[0] == ("MLflow UI: http://127.0.0.1:5123/#/experiments?"
                        "workflowType=machine_learning  (the studies)")
    store = f"sqlite:///{(tmp_path / 'runs' / 'mlflow.db').resolve()}"
    assert lines[-1] == f"store: {store}  (MLflow's server starts now; Ctrl-C stops it)"
    assert not any("-m mlflow" in line for line in lines)
