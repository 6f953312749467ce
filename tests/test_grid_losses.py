"""No study compares a loss with itself: within a stage, trials that differ only in their
loss settings must train (or score) differently. Logit adjustment at Menon et al.'s tau = 1
is balanced softmax; run side by side they would report seed noise as a difference."""

from __future__ import annotations

import pytest
import torch

from harness.config import TrialConfig
from harness.errors import ConfigError
from harness.expansion import build_trial
from harness.losses import create_loss
from harness.pricing.placeholders import Reads, placeholder_records
from harness.pricing.stages import StageConfigs, enumerate_points
from harness.study import get_study, list_studies

LONG_TAIL = [500, 300, 180, 110, 65, 40, 24, 14, 9, 5]
# What decides a trial's training or scoring beside its loss: left out of the comparison.
_LOSS_SETTINGS = ("loss", "task.logit_adjust_tau", "repeat")


def _stage_configs(profile):
    """Each stage's trial configs, later stages built from placeholder records of the
    earlier ones (as the dry run resolves them)."""
    earlier, reads = [], Reads()
    for stage in profile.stages:
        reads.stages = set()
        space = stage.space(earlier) if callable(stage.space) else stage.space
        configs = StageConfigs([])
        for point in enumerate_points(space, seed=0):
            try:
                spec = build_trial(point, stage.trial)
            except ConfigError:
                continue
            configs.items.append((spec.config, spec.label))
        yield stage, [c for c, _ in configs.items if isinstance(c, TrialConfig)]
        earlier += placeholder_records(stage, space, configs, reads)


def _signature(config: TrialConfig) -> tuple:
    """The loss's values on fixed random outputs at the first and the last epoch (DRW and
    annealed losses change over training), and the scoring adjustment."""
    gen = torch.Generator().manual_seed(0)
    if config.task == "classify":
        outputs = torch.randn(64, 10, generator=gen)
        targets = torch.randint(0, 10, (64,), generator=gen)
        loss = create_loss(config.loss, LONG_TAIL, **config.loss_options)
    else:
        outputs = torch.rand(4, 3, 8, 8, generator=gen)
        targets = torch.rand(4, 3, 8, 8, generator=gen)
        loss = create_loss(config.loss, **config.loss_options)
    values = []
    for epoch in (0, config.epochs - 1):
        loss.set_epoch(epoch)
        loss.set_progress(epoch / config.epochs)
        values.append(round(float(loss(outputs, targets)), 6))
    tau = config.resolved_options("task").get("logit_adjust_tau", 0.0)
    return (*values, tau)


def _cases():
    for name in list_studies():
        study = get_study(name)
        for profile in study.profiles:
            # cnn_search expands hundreds of configs per profile: 10-25 s each.
            slow = (pytest.mark.slow,) if name == "cnn_search" else ()
            yield pytest.param(name, profile, id=f"{name}-{profile}", marks=slow)


@pytest.mark.parametrize(("study", "profile"), list(_cases()))
def test_no_two_losses_in_a_stage_are_the_same(study, profile):
    for stage, configs in _stage_configs(get_study(study).profile(profile)):
        seen: dict[tuple, dict[tuple, str]] = {}
        for config in configs:
            flat = config.to_dict()
            rest = tuple(sorted((k, str(v)) for k, v in flat.items()
                                if k not in _LOSS_SETTINGS and not k.startswith("loss.")))
            loss = (flat["loss"], tuple(sorted((k, str(v)) for k, v in flat.items()
                                              if k.startswith("loss."))))
            by_signature = seen.setdefault(rest, {})
            signature = _signature(config)
            other = by_signature.setdefault(signature, str(loss))
            assert other == str(loss), (
                f"{study}/{profile} stage {stage.name!r}: {other} and {loss} give the same "
                f"values on random outputs: one loss twice in the grid")


def test_the_check_catches_logit_adjustment_at_tau_1_beside_balanced_softmax():
    la = TrialConfig.from_dict({"loss": "logit-adjusted", "loss.tau": 1.0})
    bs = TrialConfig.from_dict({"loss": "balanced-softmax"})
    assert _signature(la) == _signature(bs)
    posthoc = TrialConfig.from_dict({"loss": "ce", "task.logit_adjust_tau": 1.0})
    assert _signature(posthoc) != _signature(TrialConfig.from_dict({"loss": "ce"}))
