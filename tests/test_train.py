"""One trial end to end on real data: it learns, repeats bit for bit, and resumes exactly."""

import io
import math

import pytest
import torch

from harness.config import TrialConfig
from harness.data import load_dataset
from harness.train import train

DIGITS = {"dataset": "digits", "model": "mlp", "epochs": 12, "batch_size": 64, "lr": 0.05,
          "device": "cpu"}
TIMING_KEYS = {"epoch_seconds", "images_per_second"}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def learning_curve(record):
    return [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in record["history"]]


@pytest.mark.slow
def test_digits_trial_learns_and_keeps_a_full_record(digits):
    config = TrialConfig.from_dict(DIGITS)
    reports = []
    record = train(config, lambda metrics, state: reports.append((metrics, state["epoch"])), dataset=digits)
    assert record["status"] == "completed"
    assert record["final"]["test_acc"] >= 0.90
    assert [epoch for _, epoch in reports] == list(range(1, 13))
    assert {"train_loss", "train_acc", "test_loss", "test_acc", "per_class_accuracy",
            "epoch_seconds", "images_per_second"} <= set(reports[0][0])
    assert len(record["per_class_accuracy"]) == 10
    matrix = record["confusion_matrix"]
    assert sum(map(sum, matrix)) == record["data"]["test_size"]
    assert sum(matrix[i][i] for i in range(10)) / record["data"]["test_size"] == pytest.approx(
        record["final"]["test_acc"])
    assert record["seed"] == config.derived_seed()
    assert record["data"]["source"] == "sklearn-digits" and len(record["data"]["sha256"]) == 64
    assert record["num_params"] == sum(p.numel() for p in torch.nn.Linear(64, 256).parameters()) + \
        sum(p.numel() for p in torch.nn.Linear(256, 256).parameters()) + \
        sum(p.numel() for p in torch.nn.Linear(256, 10).parameters())
    assert record["environment"]["torch"] == torch.__version__
    assert sum(record["train_class_counts"]) == record["data"]["train_size"]


@pytest.mark.slow
def test_two_runs_are_bit_identical_and_repeats_differ(digits):
    config = TrialConfig.from_dict(DIGITS | {"epochs": 3, "flip": True, "crop_padding": 1,
                                             "model": "seed-convnet", "model.base_width": 8,
                                             "model.max_width": 16, "model.fc_hidden": "16"})
    first, second = train(config, dataset=digits), train(config, dataset=digits)
    assert learning_curve(first) == learning_curve(second)
    other = train(config.replace(repeat=1), dataset=digits)
    assert learning_curve(other) != learning_curve(first)


@pytest.mark.slow
def test_resumed_trial_ends_identical_to_uninterrupted(digits):
    config = TrialConfig.from_dict(DIGITS | {"epochs": 4, "model": "seed-convnet",
                                             "model.base_width": 8, "model.max_width": 16,
                                             "model.fc_hidden": "16", "flip": True,
                                             "crop_padding": 1, "warmup_epochs": 1})
    saved = {}

    def keep_epoch_two(metrics, state):
        if state["epoch"] == 2:
            buffer = io.BytesIO()
            torch.save(state, buffer)  # serialize now: the state references live tensors
            saved["checkpoint"] = buffer.getvalue()

    uninterrupted = train(config, keep_epoch_two, dataset=digits)
    checkpoint = torch.load(io.BytesIO(saved["checkpoint"]), weights_only=False)
    resumed = train(config, checkpoint=checkpoint, dataset=digits)
    assert learning_curve(resumed) == learning_curve(uninterrupted)
    assert resumed["confusion_matrix"] == uninterrupted["confusion_matrix"]


def test_diverging_trial_is_recorded_not_raised(digits):
    config = TrialConfig.from_dict(DIGITS | {"epochs": 5, "lr": 1e6, "momentum": 0.99})
    record = train(config, dataset=digits)
    assert record["status"] == "diverged"
    assert not math.isfinite(record["history"][-1]["train_loss"])
    assert len(record["history"]) < 5


def test_class_counts_come_from_the_long_tailed_split(digits):
    config = TrialConfig.from_dict(DIGITS | {"epochs": 1, "imbalance": "exp",
                                             "imbalance_factor": 10, "loss": "balanced-softmax"})
    record = train(config, dataset=digits)
    counts = record["train_class_counts"]
    assert counts[0] > counts[-1] and counts == sorted(counts, reverse=True)
    assert counts[-1] == int(counts[0] / 10)


def test_label_noise_is_realized_and_recorded(digits):
    record = train(TrialConfig.from_dict(DIGITS | {"epochs": 1, "label_noise": 1.0}), dataset=digits)
    assert record["data"]["label_noise_realized"] == pytest.approx(0.9, abs=0.05)


@pytest.mark.cifar
@pytest.mark.slow
def test_short_cifar_trial_on_a_subset_learns(cifar10):
    config = TrialConfig.from_dict({
        "dataset": "cifar10", "model": "fastnet", "model.widths": "16,32,32", "epochs": 3,
        "batch_size": 128, "lr": 0.2, "nesterov": True, "schedule": "onecycle",
        "train_limit": 5000, "test_limit": 2000, "crop_padding": 2, "flip": True,
        "device": "cpu",
    })
    record = train(config, dataset=cifar10)
    assert record["data"]["source"] == "cifar10-jpeg-q75"
    assert record["data"]["train_size"] == 5000 and record["data"]["test_size"] == 2000
    # Chance is 10%; three epochs on 5,000 images already reach far above it.
    assert record["final"]["test_acc"] > 0.30


def test_determinism_switches_are_restored_after_a_trial(digits):
    # A Tune worker reused for the next trial must not inherit one trial's settings.
    cudnn = torch.backends.cudnn
    before = (torch.are_deterministic_algorithms_enabled(), cudnn.benchmark, cudnn.deterministic)
    train(TrialConfig.from_dict(DIGITS | {"epochs": 1, "deterministic": True}), dataset=digits)
    assert (torch.are_deterministic_algorithms_enabled(), cudnn.benchmark,
            cudnn.deterministic) == before

    def crash(metrics, state):
        assert torch.are_deterministic_algorithms_enabled()  # on during the trial
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        train(TrialConfig.from_dict(DIGITS | {"epochs": 2, "deterministic": True}), crash,
              dataset=digits)
    assert torch.are_deterministic_algorithms_enabled() == before[0]


def test_a_diverged_record_ends_where_its_history_ends(digits):
    record = train(TrialConfig.from_dict(DIGITS | {"epochs": 3, "lr": 1e6}), dataset=digits)
    assert record["status"] == "diverged"
    assert record["final"]["epoch"] == record["history"][-1]["epoch"] >= 1
    assert not math.isfinite(record["final"]["train_loss"])
    assert "test_acc" not in record["final"]
