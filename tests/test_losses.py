"""Losses against hand computations and their reference definitions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.errors import ConfigError, RegistryError
from harness.losses import (
    class_balanced_weights,
    create_loss,
    list_losses,
    loss_options,
    loss_output,
)

COUNTS = [500, 200, 50, 10]


def _batch(n: int = 16, c: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g) * 3, torch.randint(0, c, (n,), generator=g)


def test_expected_losses_are_registered() -> None:
    expected = {"ce", "focal", "cb", "ldam", "logit-adjusted", "balanced-softmax"}
    assert expected <= set(list_losses())


CLASS_LOSSES = [name for name in list_losses() if loss_output(name) == "classes"]
IMAGE_LOSSES = [name for name in list_losses() if loss_output(name) == "image"]


def test_every_loss_scores_classes_or_images() -> None:
    assert set(CLASS_LOSSES) | set(IMAGE_LOSSES) == set(list_losses())
    assert {"ce", "cb", "ldam"} <= set(CLASS_LOSSES) and {"l0", "l1", "l2"} <= set(IMAGE_LOSSES)


@pytest.mark.parametrize("name", IMAGE_LOSSES)
def test_every_image_loss_is_a_finite_scalar_with_gradient(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    outputs = torch.rand(2, 3, 8, 8, generator=gen).requires_grad_(True)
    targets = torch.rand(2, 3, 8, 8, generator=gen)
    loss_fn = create_loss(name)
    loss_fn.set_progress(0.5)
    loss = loss_fn(outputs, targets)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(outputs.grad).all() and outputs.grad.abs().sum() > 0


def test_a_class_loss_needs_class_counts() -> None:
    with pytest.raises(ConfigError, match="needs the training split's class counts"):
        create_loss("ce")


@pytest.mark.parametrize("name", CLASS_LOSSES)
def test_every_loss_is_a_finite_scalar_with_gradient(name: str) -> None:
    logits, targets = _batch()
    logits.requires_grad_(True)
    loss_fn = create_loss(name, COUNTS)
    loss_fn.set_epoch(0)
    loss = loss_fn(logits, targets)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", CLASS_LOSSES)
def test_losses_stay_finite_with_an_empty_class(name: str) -> None:
    logits, targets = _batch(c=3)
    targets = targets.clamp_max(1)  # class 2 has no examples
    loss = create_loss(name, [30, 10, 0])(logits.requires_grad_(True), targets)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_class_balanced_weights_by_hand() -> None:
    beta = 0.99
    w0 = (1 - beta) / (1 - beta**100)
    w1 = (1 - beta) / (1 - beta**10)
    expected = torch.tensor([w0, w1]) / (w0 + w1) * 2
    got = class_balanced_weights([100, 10], beta)
    assert torch.allclose(got, expected, rtol=1e-6)
    assert got.sum().item() == pytest.approx(2.0)
    assert got[1] > got[0]


def test_class_balanced_weights_limits() -> None:
    assert torch.allclose(class_balanced_weights([100, 10], 0.0), torch.ones(2))
    zero = class_balanced_weights([100, 0, 10], 0.9)
    assert zero[1] == 0 and zero.sum().item() == pytest.approx(3.0)
    with pytest.raises(ConfigError, match="beta"):
        class_balanced_weights([100, 10], 1.0)


def test_ce_label_smoothing() -> None:
    logits, targets = _batch()
    got = create_loss("ce", COUNTS, label_smoothing=0.1)(logits, targets)
    assert torch.allclose(got, F.cross_entropy(logits, targets, label_smoothing=0.1))


def test_focal_gamma_zero_is_ce() -> None:
    logits, targets = _batch()
    got = create_loss("focal", COUNTS, gamma=0.0)(logits, targets)
    assert torch.allclose(got, F.cross_entropy(logits, targets), rtol=1e-6, atol=0)


def test_focal_by_hand() -> None:
    logits = torch.tensor([[2.0, 0.0]])
    p = math.exp(2) / (math.exp(2) + 1)
    got = create_loss("focal", [1, 1], gamma=2.0)(logits, torch.tensor([0]))
    assert got.item() == pytest.approx(-((1 - p) ** 2) * math.log(p), rel=1e-5)


def test_balanced_softmax_is_ce_on_prior_shifted_logits() -> None:
    logits, targets = _batch()
    prior = torch.tensor(COUNTS, dtype=torch.float32) / sum(COUNTS)
    got = create_loss("balanced-softmax", COUNTS)(logits, targets)
    assert torch.allclose(got, F.cross_entropy(logits + prior.log(), targets), rtol=1e-6)


def test_logit_adjusted_tau() -> None:
    logits, targets = _batch()
    plain = create_loss("logit-adjusted", COUNTS, tau=0.0)(logits, targets)
    assert torch.allclose(plain, F.cross_entropy(logits, targets))
    prior = torch.tensor(COUNTS, dtype=torch.float32) / sum(COUNTS)
    half = create_loss("logit-adjusted", COUNTS, tau=0.5)(logits, targets)
    assert torch.allclose(half, F.cross_entropy(logits + 0.5 * prior.log(), targets), rtol=1e-6)


def test_ldam_margins() -> None:
    loss_fn = create_loss("ldam", [5000, 50])
    expected = torch.tensor([0.5 * (50 / 5000) ** 0.25, 0.5])
    assert torch.allclose(loss_fn.margins, expected, rtol=1e-6)


def test_ldam_by_hand() -> None:
    loss_fn = create_loss("ldam", [5000, 50], scale=2.0)
    logits = torch.tensor([[0.3, -0.2], [0.1, 0.4]])
    targets = torch.tensor([1, 0])
    m = loss_fn.margins
    shifted = torch.tensor([[0.3, -0.2 - m[1]], [0.1 - m[0], 0.4]])
    expected = F.cross_entropy(2.0 * shifted, targets)
    assert torch.allclose(loss_fn(logits, targets), expected)


def test_ldam_drw_switches_weights_at_drw_epoch() -> None:
    counts = [5000, 50]
    loss_fn = create_loss("ldam", counts, drw_epoch=3, drw_beta=0.9999)
    cb = class_balanced_weights(counts, 0.9999)
    logits, targets = _batch(c=2)
    loss_fn.set_epoch(2)
    assert torch.equal(loss_fn.weight, torch.ones(2))
    before = loss_fn(logits, targets)
    loss_fn.set_epoch(3)
    assert torch.allclose(loss_fn.weight, cb)
    after = loss_fn(logits, targets)
    assert not torch.allclose(before, after)
    never = create_loss("ldam", counts)
    never.set_epoch(1000)
    assert torch.equal(never.weight, torch.ones(2))


def test_cb_softmax_is_weighted_ce() -> None:
    logits, targets = _batch()
    w = class_balanced_weights(COUNTS, 0.999)
    got = create_loss("cb", COUNTS, beta=0.999, head="softmax")(logits, targets)
    expected = (w[targets] * F.cross_entropy(logits, targets, reduction="none")).mean()
    assert torch.allclose(got, expected, rtol=1e-6)


def _bce(z: float, y: float) -> float:
    p = 1 / (1 + math.exp(-z))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_cb_sigmoid_by_hand() -> None:
    counts, beta = [100, 10], 0.99
    w = class_balanced_weights(counts, beta).tolist()
    logits = torch.tensor([[1.0, -2.0], [0.5, 0.25]])
    targets = torch.tensor([0, 1])
    # Each example's true-class weight times its BCE summed over classes, batch mean.
    expected = (w[0] * (_bce(1.0, 1) + _bce(-2.0, 0)) + w[1] * (_bce(0.5, 0) + _bce(0.25, 1))) / 2
    got = create_loss("cb", counts, beta=beta, head="sigmoid")(logits, targets)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_cb_focal_by_hand_and_gamma_zero_is_sigmoid() -> None:
    counts, beta, gamma = [100, 10], 0.99, 2.0
    w = class_balanced_weights(counts, beta).tolist()
    logits = torch.tensor([[1.0, -2.0]])
    targets = torch.tensor([0])
    p = [1 / (1 + math.exp(-z)) for z in (1.0, -2.0)]
    # (1 - p_t)^gamma: p_t = p for the positive, 1 - p for the negative.
    expected = w[0] * ((1 - p[0]) ** gamma * _bce(1.0, 1) + p[1] ** gamma * _bce(-2.0, 0))
    got = create_loss("cb", counts, beta=beta, head="focal", gamma=gamma)(logits, targets)
    assert got.item() == pytest.approx(expected, rel=1e-5)

    logits, targets = _batch(c=2)
    sigmoid = create_loss("cb", counts, head="sigmoid")(logits, targets)
    focal0 = create_loss("cb", counts, head="focal", gamma=0.0)(logits, targets)
    assert torch.allclose(sigmoid, focal0)


def test_buffers_follow_the_module() -> None:
    loss_fn = create_loss("ldam", COUNTS, drw_epoch=1)
    names = {name for name, _ in loss_fn.named_buffers()}
    assert {"margins", "weight", "drw_weights"} <= names
    assert {name for name, _ in create_loss("cb", COUNTS).named_buffers()} == {"weights"}


def test_unknown_option_is_config_error() -> None:
    with pytest.raises(ConfigError, match="beta"):
        create_loss("cb", COUNTS, betta=0.9)


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("cb", {"head": "hinge"}, "head"),
        ("cb", {"beta": 1.0}, "beta"),
        ("cb", {"gamma": -1.0}, "gamma"),
        ("focal", {"gamma": -0.5}, "gamma"),
        ("ldam", {"drw_epoch": -1}, "drw_epoch"),
        ("ldam", {"max_margin": 0.0}, "max_margin"),
        ("ce", {"label_smoothing": 1.0}, "label_smoothing"),
    ],
)
def test_bad_option_values_are_config_errors(name: str, options: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_loss(name, COUNTS, **options)


def test_bad_counts_and_names() -> None:
    with pytest.raises(ConfigError):
        create_loss("ce", [0, 0])
    with pytest.raises(ConfigError):
        create_loss("ce", [3, -1])
    with pytest.raises(RegistryError, match="focal"):
        loss_options("focall")


def test_loss_options_read_defaults() -> None:
    assert loss_options("cb") == {"beta": 0.9999, "head": "softmax", "gamma": 1.0}
    assert loss_options("ldam")["drw_epoch"] is None
    assert loss_options("balanced-softmax") == {}
