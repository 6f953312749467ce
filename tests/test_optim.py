"""Learning-rate schedules as pure functions of the step."""

import pytest

from harness.config import TrialConfig
from harness.optim import lr_factor


def config(**values):
    return TrialConfig.from_dict({"epochs": 10, **values})


def test_multistep_matches_the_ldam_drw_recipe():
    # lr x0.01 at epoch 6 and x0.0001 at 8 (the paper's 160/180 of 200, scaled down)
    c = config(schedule="multistep", milestones="6,8", lr_decay=0.01, warmup_epochs=2)
    steps = 4
    assert lr_factor(0, steps, c) == pytest.approx(1 / 8)  # linear warm-up over 2 epochs
    assert lr_factor(7, steps, c) == pytest.approx(1.0)
    assert lr_factor(5 * steps, steps, c) == 1.0
    assert lr_factor(6 * steps, steps, c) == pytest.approx(0.01)
    assert lr_factor(8 * steps, steps, c) == pytest.approx(0.0001)


def test_cosine_decays_to_zero_and_constant_stays():
    c = config(schedule="cosine")
    assert lr_factor(0, 10, c) == pytest.approx(1.0)
    assert lr_factor(50, 10, c) == pytest.approx(0.5)
    assert lr_factor(100, 10, c) == pytest.approx(0.0)
    assert lr_factor(55, 10, config(schedule="constant")) == 1.0


def test_onecycle_rises_then_falls():
    c = config(schedule="onecycle")
    values = [lr_factor(s, 10, c) for s in range(100)]
    peak = max(range(100), key=values.__getitem__)
    assert 20 <= peak <= 30 and values[0] < 0.1 and values[-1] < 0.05
