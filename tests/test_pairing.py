"""Common random numbers (harness.pairing): the arms of one paired repeat start from the
same weights and batches, each repeat draws its own data, and configs that opt into
neither keep the hash and seed they had before."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

import harness.train
from harness.config import TrialConfig
from harness.data import load_dataset
from harness.data.types import ImageDataset, ImageSplit
from harness.errors import ConfigError, RegistryError
from harness.plan import stage_definition, stage_fingerprint
from harness.pricing.stages import resolved_stage_configs
from harness.space import grid
from harness.study import Stage, get_study
from harness.tasks import create_task
from harness.train import train
from harness.trial_data import prepare_trial_data

# Hashes and seeds computed by the code of commit 486fa1d, before paired seeds existed.
BEFORE_PAIRING = [
    ({}, "62430003ee33e762", 871850147),
    ({"dataset": "cifar10", "model": "resnet32", "loss": "cb", "loss.beta": 0.999,
      "loss.head": "focal", "imbalance": "exp", "imbalance_factor": 100, "repeat": 2,
      "train_limit": 15000}, "a52cfb4ebbe5ec30", 2008449374),
    ({"task": "denoise", "dataset": "photos", "task.target": "clean", "loss": "l2",
      "repeat": 1, "val_size": 256}, "68f622c7a7f80f71", 541570949),
    ({"dataset": "cifar10", "label_noise": 1.0, "data_seed": 3, "repeat": 1},
     "487b4040a83891c6", 1494041960),
]


@pytest.mark.parametrize(("values", "config_hash", "seed"), BEFORE_PAIRING)
def test_a_config_that_does_not_opt_in_keeps_its_hash_seed_and_data_seed(
        values: dict[str, Any], config_hash: str, seed: int) -> None:
    config = TrialConfig.from_dict(values)
    assert config.config_hash() == config_hash
    assert config.derived_seed() == seed
    assert config.trial_data_seed() == values.get("data_seed", 0)
    # Spelled out at their defaults, the new keys change nothing either.
    spelled = TrialConfig.from_dict({**values, "paired_keys": [], "data_seed_per_repeat": False})
    assert (spelled.config_hash(), spelled.derived_seed()) == (config_hash, seed)


CE = {"dataset": "digits", "model": "mlp", "loss": "ce", "epochs": 1, "device": "cpu"}
CB_FOCAL = {**CE, "loss": "cb", "loss.head": "focal", "loss.beta": 0.99, "loss.gamma": 1.0}


def test_arms_differing_only_in_paired_keys_share_the_seed_and_nothing_else_does() -> None:
    paired = {"paired_keys": "loss"}
    ce, cb = TrialConfig.from_dict({**CE, **paired}), TrialConfig.from_dict({**CB_FOCAL, **paired})
    assert ce.derived_seed() == cb.derived_seed()
    assert ce.config_hash() != cb.config_hash()  # still two trials, two records
    assert ce.derived_seed() != ce.replace(repeat=1).derived_seed()
    assert ce.derived_seed() != ce.replace(lr=0.1).derived_seed()  # lr is no paired key
    # Unpaired, the arms draw different seeds: what the paired difference used to carry.
    assert TrialConfig.from_dict(CE).derived_seed() != TrialConfig.from_dict(CB_FOCAL).derived_seed()
    # An option key pairs that option only; a group name pairs the choice and its options.
    beta = TrialConfig.from_dict({**CB_FOCAL, "paired_keys": "loss.beta"})
    assert beta.derived_seed() == beta.replace(**{"loss.beta": 0.9}).derived_seed()
    assert beta.derived_seed() != beta.replace(**{"loss.gamma": 2.0}).derived_seed()


@pytest.mark.parametrize(("keys", "fragment"), [
    ("repeat", "paired_keys cannot hold 'repeat'"),
    ("data_seed", "paired_keys cannot hold 'data_seed'"),
    ("loss,lossy", "paired_keys holds 'lossy', which is no config key"),
    ("extra.thing", "paired_keys holds 'extra.thing', which is no config key"),
])
def test_paired_keys_that_cannot_pair_are_one_clear_message(keys: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        TrialConfig.from_dict({**CE, "paired_keys": keys})


def test_paired_keys_are_kept_sorted_so_every_arm_hashes_alike() -> None:
    one = TrialConfig.from_dict({**CE, "paired_keys": "task.target,loss"})
    other = TrialConfig.from_dict({**CE, "paired_keys": ["loss", "task.target", "loss"]})
    assert one.paired_keys == other.paired_keys == ("loss", "task.target")
    assert one.config_hash() == other.config_hash()
    assert TrialConfig.from_dict(one.to_dict()) == one


class _FirstStep(Exception):
    pass


def _start_of_training(values: dict[str, Any], dataset: ImageDataset, monkeypatch
                       ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The real trial loop up to its first optimizer step: the model's weights as it takes
    that step (initialized, data-dependent init applied) and the first batch."""
    seen: dict[str, Any] = {}

    def first_step(forward, loss_fn, optimizer, autocast, inputs, targets):
        seen["weights"] = {k: v.detach().clone() for k, v in forward.state_dict().items()}
        seen["batch"] = (inputs.clone(), targets.clone())
        raise _FirstStep

    monkeypatch.setattr(harness.train, "train_step", first_step)
    with pytest.raises(_FirstStep):
        train(TrialConfig.from_dict(values), dataset=dataset)
    return seen["weights"], *seen["batch"]


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_dataset("digits")


# A convnet with batch norm, crops and flips: initialization and augmentation both draw.
AUGMENTED = {"model": "resnet32", "model.depth": 8, "model.base_width": 4, "crop_padding": 1,
             "flip": True, "batch_size": 32, "imbalance": "exp", "imbalance_factor": 10}


def test_two_arms_of_one_paired_repeat_start_from_the_same_weights_and_batch(
        digits: ImageDataset, monkeypatch) -> None:
    paired = {**AUGMENTED, "paired_keys": "loss,model.normed_head", "repeat": 1}
    ce = _start_of_training({**CE, **paired}, digits, monkeypatch)
    cb = _start_of_training({**CB_FOCAL, **paired}, digits, monkeypatch)
    assert _same_weights(ce[0], cb[0])
    assert torch.equal(ce[1], cb[1]) and torch.equal(ce[2], cb[2])
    # Unpaired (as every record was made before), the same two arms start apart.
    unpaired = [_start_of_training({**arm, **AUGMENTED, "repeat": 1}, digits, monkeypatch)
                for arm in (CE, CB_FOCAL)]
    assert not _same_weights(unpaired[0][0], unpaired[1][0])
    assert not torch.equal(unpaired[0][1], unpaired[1][1])
    # LDAM's cosine head is another model: its arm shares the batches, not the weights
    # (the head draws before the backbone's Kaiming init).
    ldam = _start_of_training({**CE, **paired, "loss": "ldam", "model.normed_head": True},
                              digits, monkeypatch)
    assert torch.equal(ldam[1], ce[1]) and torch.equal(ldam[2], ce[2])
    assert not _same_weights(ldam[0], ce[0])


def _synthetic(n: int = 40) -> ImageDataset:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 16, 16), generator=gen, dtype=torch.uint8)
    split = ImageSplit(images, torch.zeros(n, dtype=torch.int64))
    return ImageDataset("synthetic", "synthetic", "0" * 64, ("image",), split, split)


def _denoise_inputs(target: str, paired: bool) -> list[torch.Tensor]:
    values = {"task": "denoise", "dataset": "photos", "device": "cpu", "batch_size": 8,
              "epochs": 1, "flip": True, "model.features": 4, "model.depth": 2,
              "model.head_features": 8, "task.target": target}
    if paired:
        values["paired_keys"] = "loss,task.target"
    task = create_task(TrialConfig.from_dict(values), _synthetic(), torch.device("cpu"))
    return [inputs for inputs, _ in task.batches(0)]


def test_clean_and_noisy_target_arms_see_the_same_inputs_in_every_batch() -> None:
    clean, noisy = _denoise_inputs("clean", True), _denoise_inputs("noisy", True)
    # Every batch, not only the first: the noisy target draws from a stream of its own, so
    # its extra draws leave the next batch's flips and input noise where the clean arm's are.
    assert len(clean) == 5 and all(torch.equal(a, b) for a, b in zip(clean, noisy, strict=True))
    # Unpaired, the arms have seeds of their own and no batch agrees.
    clean, noisy = _denoise_inputs("clean", False), _denoise_inputs("noisy", False)
    assert not any(torch.equal(a, b) for a, b in zip(clean, noisy, strict=True))


PER_REPEAT = {**CE, "train_limit": 600, "imbalance": "exp", "imbalance_factor": 5,
              "val_size": 40, "label_noise": 0.2, "test_limit": 200,
              "data_seed_per_repeat": True, "paired_keys": "loss"}


def _data_key(config: TrialConfig, dataset: ImageDataset) -> tuple[Any, ...]:
    data = prepare_trial_data(dataset, config)
    return (data.train.images.sum().item(), tuple(data.train.labels.tolist()),
            tuple(data.val.labels.tolist()), data.test.images.sum().item())


def test_each_repeat_draws_its_own_data_and_the_arms_of_a_repeat_share_it(
        digits: ImageDataset) -> None:
    repeats = [TrialConfig.from_dict({**PER_REPEAT, "repeat": r}) for r in range(4)]
    assert len({c.trial_data_seed() for c in repeats}) == 4
    assert len({c.config_hash() for c in repeats}) == 1  # one cell, four repeats
    drawn = [_data_key(c, digits) for c in repeats]
    assert len(set(drawn)) == 4  # subset, long tail, validation, noise and test all redrawn
    arm = TrialConfig.from_dict({**PER_REPEAT, **CB_FOCAL, "repeat": 2})
    assert _data_key(arm, digits) == drawn[2]
    # Without the setting every repeat draws from data_seed alone, as before.
    fixed = [c.replace(data_seed_per_repeat=False) for c in repeats]
    assert {c.trial_data_seed() for c in fixed} == {0}
    assert len({_data_key(c, digits) for c in fixed}) == 1


def test_the_record_says_which_data_seed_its_repeat_drew(digits: ImageDataset) -> None:
    config = TrialConfig.from_dict({**PER_REPEAT, "repeat": 3, "data_seed": 10})
    record = train(config, dataset=digits)
    assert record["data"]["data_seed"] == 13
    assert record["config"]["data_seed_per_repeat"] is True
    assert record["config"]["paired_keys"] == ["loss"]
    # The record alone rebuilds the trial: its seed and data seed come back.
    rebuilt = TrialConfig.from_dict(record["config"])
    assert (rebuilt.derived_seed(), rebuilt.trial_data_seed()) == (record["seed"], 13)


# ---------------------------------------------------------------------------- stages

def test_a_stage_puts_its_seed_settings_into_every_trial_config() -> None:
    stage = Stage("s", {"loss": grid("ce", "focal")}, repeats=3, paired_keys=("loss",),
                  data_seed_per_repeat=True)
    assert stage.space == {"loss": grid("ce", "focal"), "paired_keys": ("loss",),
                           "data_seed_per_repeat": True}
    built = Stage("b", lambda records: {"loss": "ce"}, paired_keys=("loss",))
    assert built.space([]) == {"loss": "ce", "paired_keys": ("loss",)}
    # Copied (dataclasses.replace runs __post_init__ again), the space is the same.
    assert dataclasses.replace(stage, repeats=2).space == stage.space
    assert dataclasses.replace(built).space([]) == built.space([])


def test_a_stage_without_seed_settings_keeps_its_space_and_fingerprint() -> None:
    space = {"epochs": 2, "lr": grid(0.1, 0.2)}
    stage = Stage("only", space, repeats=2)
    assert stage.space is space
    settings = stage_definition(stage, stage.space)["settings"]
    assert "paired_keys" not in settings and "data_seed_per_repeat" not in settings
    paired = Stage("only", space, repeats=2, paired_keys=("lr",))
    assert stage_fingerprint(paired, paired.space) != stage_fingerprint(stage, stage.space)


def test_seed_settings_said_twice_or_on_check_trials_are_refused() -> None:
    with pytest.raises(RegistryError, match="sets paired_keys in its space and as a Stage"):
        Stage("s", {"paired_keys": ("lr",)}, paired_keys=("loss",))
    with pytest.raises(RegistryError, match="apply to training trials"):
        Stage("claims", {"claim": grid("a")}, trial="check", data_seed_per_repeat=True)


# Every stage whose claims compare arms, and the keys its arms differ in.
OPTED_IN = {
    ("imbalance", "main"), ("imbalance", "step"), ("denoising", "denoise"),
    ("memorization", "table1"), ("memorization", "corruptions"), ("cnn_search", "depth-width"),
}
# Per study, two arms a claim compares: (stage, label of one, label of the other).
CLAIM_ARMS = {
    "imbalance": ("main", "CE", "CB-focal"),
    "denoising": ("denoise", "gaussian/clean/l2", "gaussian/noisy/l2"),
    "memorization": ("table1", "mlp 1x512 | none", "mlp 1x512 | random labels"),
}


@pytest.mark.parametrize("study_name", ["imbalance", "denoising", "memorization", "cnn_search"])
def test_every_profile_pairs_the_arms_its_claims_compare_and_redraws_data_per_repeat(
        study_name: str) -> None:
    study = get_study(study_name)
    for profile in study.profiles.values():
        for stage, items in resolved_stage_configs(profile, labels=True):
            opted = (study_name, stage.name) in OPTED_IN
            assert bool(stage.paired_keys) == opted == stage.data_seed_per_repeat, (
                f"{study_name}/{profile.name}/{stage.name}")
            if not opted or not items:
                continue
            by_repeat = [[(c.replace(repeat=r), label) for c, label in items]
                         for r in range(stage.repeats)]
            data_seeds = [{c.trial_data_seed() for c, _ in trials} for trials in by_repeat]
            assert all(len(seeds) == 1 for seeds in data_seeds)  # one draw per repeat
            assert len(set().union(*data_seeds)) == stage.repeats  # and its own
            if study_name not in CLAIM_ARMS or CLAIM_ARMS[study_name][0] != stage.name:
                continue
            _, one, other = CLAIM_ARMS[study_name]
            for trials in by_repeat:
                seeds = {label: c.derived_seed() for c, label in trials
                         if c.imbalance_factor == max(t.imbalance_factor for t, _ in trials)}
                first = next(s for label, s in seeds.items() if label.startswith(one))
                second = next(s for label, s in seeds.items() if label.startswith(other))
                assert first == second, f"{study_name}/{profile.name}: {one} vs {other}"
