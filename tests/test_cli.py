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


def test_train_prints_progress_and_the_record_path(tmp_path):
    result = run_cli("train", "--dataset", "digits", "--model", "mlp", "--loss", "ce",
                     "--epochs", "2", "--set", "lr=0.05", "--device", "cpu", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("epoch   1/2") and lines[1].startswith("epoch   2/2")
    record = json.loads(Path(lines[-1]).read_text())
    assert record["config"]["epochs"] == 2 and record["status"] == "completed"


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
