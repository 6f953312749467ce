"""The schedules and optimizer settings the memorization and denoising recipes use."""

from __future__ import annotations

import math

import pytest
import torch

from harness.config import TrialConfig
from harness.errors import ConfigError
from harness.optim import build_optimizer, lr_factor


def test_exponential_multiplies_the_lr_once_per_epoch() -> None:
    # Zhang et al.: lr x 0.95 every epoch.
    config = TrialConfig.from_dict({"schedule": "exponential", "lr_decay": 0.95, "epochs": 5})
    assert [lr_factor(s, 10, config) for s in (0, 9, 10, 19, 20, 49)] == pytest.approx(
        [1, 1, 0.95, 0.95, 0.95**2, 0.95**4])


def test_rampdown_holds_then_falls_as_a_squared_cosine_over_the_last_30_percent() -> None:
    # Noise2Noise: (0.5 + cos(pi t) / 2)^2 over the last 30% of the steps.
    config = TrialConfig.from_dict({"schedule": "rampdown", "epochs": 10})
    total = 10 * 100
    assert lr_factor(0, 100, config) == lr_factor(699, 100, config) == 1.0
    assert lr_factor(700, 100, config) == pytest.approx(1.0)
    assert lr_factor(850, 100, config) == pytest.approx((0.5 + 0.5 * math.cos(math.pi / 2)) ** 2)
    assert lr_factor(total, 100, config) == pytest.approx(0.0)


def test_adam_beta2_reaches_the_optimizer_and_is_validated() -> None:
    config = TrialConfig.from_dict({"optimizer": "adamw", "adam_beta2": 0.99})
    optimizer = build_optimizer(torch.nn.Linear(2, 2), config)
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.99)
    with pytest.raises(ConfigError, match=r"adam_beta2 must be in \(0, 1\)"):
        TrialConfig.from_dict({"adam_beta2": 1.0})
    # At its default the key stays out of the hash: earlier configs keep their seeds.
    assert TrialConfig.from_dict({}).config_hash() == TrialConfig.from_dict(
        {"adam_beta2": 0.999}).config_hash()
