"""airbench94's recipe piece by piece: whitening stem, stem-bias freezing, alternating flip,
reflect-padded translate, test-time augmentation, lookahead, the linear schedule, the
fractional epoch count, the norm-parameter lr scale, and the preset end to end."""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.config import HASH_NEUTRAL_DEFAULTS, TrialConfig
from harness.data import DeviceBatches, eval_batches, load_dataset
from harness.data.batching import random_crop
from harness.errors import ConfigError
from harness.models import create_model
from harness.models.fastnet import patch_covariance
from harness.optim import Lookahead, build_optimizer, lr_factor, total_steps
from harness.recipes import FASTNET_RECIPE, airbench_lr, fastnet_recipe
from harness.tasks import create_task
from harness.tasks.classify import TTAClassifier, tta_logits
from harness.train import train

CIFAR = (3, 32, 32)
TIMING_KEYS = {"epoch_seconds", "images_per_second"}
# The preset on a digits subset, narrowed so a trial takes a second or two on a CPU.
DIGITS = {"dataset": "digits", "model.widths": "8,8,8", "train_limit": 512, "test_limit": 200,
          "device": "cpu"}


def digits_recipe(train_epochs: float, **changes) -> TrialConfig:
    return TrialConfig.from_dict({**fastnet_recipe(64, train_epochs), **DIGITS, **changes})


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def learning_curve(record):
    return [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in record["history"]]


def correlated_images(n: int = 64, size: int = 12) -> torch.Tensor:
    """Smooth, channel-correlated images: their 2x2 patches have a far-from-white covariance."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(n, 1, size + 3, size + 3, generator=gen)
    smooth = F.avg_pool2d(base, 4, stride=1)  # neighbouring pixels correlate
    mix = torch.tensor([1.0, 0.8, 0.5]).view(1, 3, 1, 1)
    return 3 * smooth * mix + 0.3 * torch.randn(n, 3, size, size, generator=gen)


# ------------------------------------------------------------------ whitening stem


def test_whitening_stem_whitens_patches():
    images = correlated_images()
    model = create_model("fastnet", 10, CIFAR, widths=(8, 8, 8), whiten=True)
    stem = model[0]
    assert stem.out_channels == 24 and not stem.weight.requires_grad
    assert torch.count_nonzero(stem.bias) == 0  # airbench: the bias starts at zero
    model.init_from_data(images)
    out = F.conv2d(images, stem.weight)  # the stem without its bias
    first, second = out[:, :12], out[:, 12:]
    assert torch.allclose(second, -first)  # the +/- pair
    flat = first.permute(0, 2, 3, 1).reshape(-1, 12).double()
    covariance = flat.T @ flat / flat.shape[0]
    eigenvalues = torch.linalg.eigvalsh(patch_covariance(images, (2, 2))).flip(0)
    # Whitened: E[o o^T] = diag(l / (l + eps)), ~ identity where l >> eps (the top directions).
    expected = torch.diag(eigenvalues / (eigenvalues + model.whiten_eps))
    assert torch.allclose(covariance, expected, atol=1e-4)
    top = eigenvalues > 100 * model.whiten_eps
    assert top.sum() >= 6
    assert torch.allclose(covariance[top][:, top], torch.eye(int(top.sum()), dtype=torch.float64),
                          atol=0.02)
    # Largest eigen-direction first, as airbench orders its filters.
    assert eigenvalues[0] == eigenvalues.max()


def test_whitening_stem_width_follows_channels_and_is_off_by_default():
    gray = create_model("fastnet", 10, (1, 8, 8), widths=(8, 8, 8), whiten=True)
    assert gray[0].out_channels == 2 * 1 * 4
    plain = create_model("fastnet", 10, CIFAR, widths=(8, 8, 8))
    before = plain[0].weight.clone()
    plain.init_from_data(correlated_images())  # a no-op without whiten
    assert torch.equal(plain[0].weight, before) and plain[0].weight.requires_grad


def test_stem_bias_trains_only_in_its_first_epochs(digits):
    config = digits_recipe(4, **{"model.whiten_bias_epochs": 2, "lookahead_every": 0,
                                 "task.tta": 0})
    stems = []
    train(config, lambda m, state: stems.append(
        (state["model"]["0.bias"].clone(), state["model"]["0.weight"].clone())), dataset=digits)
    biases, weights = zip(*stems, strict=True)
    assert not torch.equal(biases[0], biases[1])  # epoch 2 still trains it
    assert torch.equal(biases[1], biases[2]) and torch.equal(biases[2], biases[3])  # frozen
    assert all(torch.equal(w, weights[0]) for w in weights)  # the whitening weights never move
    model = create_model("fastnet", 10, CIFAR, widths=(8, 8, 8), whiten=True, whiten_bias_epochs=3)
    flags = []
    for epoch in range(5):
        model.set_epoch(epoch)
        flags.append(model.stem_bias_frozen)
    assert flags == [False, False, False, True, True]


# ------------------------------------------------------------------ augmentation


def asymmetric_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i holds i in its left column and 255 - i elsewhere: a mirror is visible."""
    labels = torch.arange(n)
    images = (255 - labels).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    images[:, :, :, 0] = labels.to(torch.uint8).view(n, 1, 1)
    return images, labels


def mirrored_by_image(batches: DeviceBatches, epoch: int, n: int) -> torch.Tensor:
    mirrored = torch.zeros(n, dtype=torch.bool)
    for x, y in batches.epoch(epoch):
        mirrored[y] = x[:, 0, 0, 3].round().long() == y  # the label column moved right
    return mirrored


def test_alternating_flip_mirrors_exactly_the_images_not_mirrored_before():
    n = 200
    images, labels = asymmetric_images(n)
    batches = DeviceBatches(images, labels, 32, seed=3, mean=[0.0] * 3, std=[1 / 255] * 3,
                            flip=True, flip_mode="alternate")
    states = [mirrored_by_image(batches, epoch, n) for epoch in range(4)]
    assert 70 < int(states[0].sum()) < 130  # a random half to start with
    for before, after in zip(states, states[1:], strict=False):
        assert torch.equal(after, ~before)
    # Replayable: epoch 2 again, from a fresh object, is the same pattern.
    again = DeviceBatches(images, labels, 32, seed=3, mean=[0.0] * 3, std=[1 / 255] * 3,
                          flip=True, flip_mode="alternate")
    assert torch.equal(mirrored_by_image(again, 2, n), states[2])
    random_mode = DeviceBatches(images, labels, 32, seed=3, mean=[0.0] * 3, std=[1 / 255] * 3,
                                flip=True)
    a, b = mirrored_by_image(random_mode, 0, n), mirrored_by_image(random_mode, 1, n)
    assert not torch.equal(b, ~a)  # random flips are independent per epoch


def test_reflect_padded_translate_matches_torch_reflect_padding():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 6, 5), generator=gen, dtype=torch.uint8)
    out = random_crop(images, 2, torch.Generator().manual_seed(5), "reflect")
    offsets = torch.Generator().manual_seed(5)
    dy = torch.randint(0, 5, (16,), generator=offsets)
    dx = torch.randint(0, 5, (16,), generator=offsets)
    padded = F.pad(images.float(), (2, 2, 2, 2), mode="reflect")
    expected = torch.stack([padded[i, :, dy[i]:dy[i] + 6, dx[i]:dx[i] + 5] for i in range(16)])
    assert out.dtype == torch.uint8 and torch.equal(out.float(), expected)
    zeros = random_crop(images, 2, torch.Generator().manual_seed(5))
    padded = F.pad(images.float(), (2, 2, 2, 2))
    expected = torch.stack([padded[i, :, dy[i]:dy[i] + 6, dx[i]:dx[i] + 5] for i in range(16)])
    assert torch.equal(zeros.float(), expected)  # same offsets, zero padding


def test_drop_last_keeps_full_batches_only():
    images, labels = asymmetric_images(100)
    kwargs = dict(mean=[0.0] * 3, std=[1 / 255] * 3)
    assert len(DeviceBatches(images, labels, 32, 0, **kwargs)) == 4
    kept = DeviceBatches(images, labels, 32, 0, drop_last=True, **kwargs)
    assert len(kept) == 3 and [y.numel() for _, y in kept.epoch(0)] == [32, 32, 32]
    with pytest.raises(ValueError, match="drop_last"):
        DeviceBatches(images, labels, 128, 0, drop_last=True, **kwargs)


# ------------------------------------------------------------------ test-time augmentation


def test_tta_averages_the_airbench_views_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 3, 5))
    x = torch.randn(3, 2, 4, 3)

    def f(v):
        return model(v)

    def reflect(v):  # reflect-pad by one pixel, written out by hand
        rows = [1, 0, 1, 2, 3, 2]
        cols = [1, 0, 1, 2, 1]
        return v[:, :, rows][:, :, :, cols]

    padded = reflect(x)
    up_left, down_right = padded[:, :, 0:4, 0:3], padded[:, :, 2:6, 2:5]
    mirror = lambda v: v.flip(-1)  # noqa: E731
    by_hand = (0.25 * f(x) + 0.25 * f(mirror(x))
               + 0.125 * (f(up_left) + f(mirror(up_left)) + f(down_right) + f(mirror(down_right))))
    assert torch.allclose(tta_logits(model, x, 2), by_hand, atol=1e-6)
    assert torch.allclose(tta_logits(model, x, 1), 0.5 * f(x) + 0.5 * f(mirror(x)), atol=1e-6)
    assert torch.equal(tta_logits(model, x, 0), f(x))
    assert torch.allclose(TTAClassifier(model, 2)(x), by_hand, atol=1e-6)


def test_tta_scores_the_last_epoch_and_keeps_the_plain_score(digits):
    config = digits_recipe(2)
    task = create_task(config, digits, torch.device("cpu"))
    torch.manual_seed(0)
    model = create_model("fastnet", 10, task.in_shape, widths=(8, 8, 8)).eval()
    task.batches(0)
    first = task.evaluate(model, contextlib.nullcontext).metrics
    assert "test_acc_plain" not in first
    task.batches(1)  # the last epoch
    last = task.evaluate(model, contextlib.nullcontext).metrics
    assert not model.training  # scoring through the TTA wrapper left the mode as it was
    assert last["test_acc_plain"] == first["test_acc"]
    assert last["test_loss_plain"] == first["test_loss"]
    x, y = next(eval_batches(task.test_images, task.test_labels, 10_000, task.mean, task.std))
    with torch.no_grad():
        logits = tta_logits(model, x, 2)
    assert last["test_acc"] == pytest.approx((logits.argmax(1) == y).double().mean().item())
    assert last["test_loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)


# ------------------------------------------------------------------ lookahead


def test_lookahead_matches_a_hand_computation():
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    look = Lookahead(model, every=2, decay=0.5, total=6)
    ema = 1.0
    for step, w in enumerate([3.0, 5.0, 2.0, 7.0, 4.0, 9.0], start=1):
        with torch.no_grad():
            model[0].weight.fill_(w)  # what the optimizer step left
        look.after_step(model, step)
        if step % 2 == 0:
            d = 0.5 * (step / 6) ** 3
            ema = d * ema + (1 - d) * w
            expected = ema  # the weights are replaced by the EMA
        else:
            expected = w
        if step == 6:
            expected = ema  # the final copy
        assert model[0].weight.item() == pytest.approx(expected, rel=1e-6), step
    assert look.ema["0.weight"].item() == pytest.approx(ema, rel=1e-6)
    assert "1.running_mean" in look.ema and "1.num_batches_tracked" not in look.ema


def test_lookahead_final_copy_uses_the_last_ema_when_total_is_not_a_multiple():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    look = Lookahead(model, every=5, decay=0.95**5, total=7)
    for step in range(1, 8):
        with torch.no_grad():
            model.weight.fill_(float(step))
        look.after_step(model, step)
    d = 0.95**5 * (5 / 7) ** 3
    # Steps 6 and 7 are discarded: airbench's final update (decay 1) copies the EMA of
    # step 5 back in.
    assert model.weight.item() == pytest.approx((1 - d) * 5.0, rel=1e-6)
    assert look.ema["weight"].item() == model.weight.item()


@pytest.mark.slow
def test_full_recipe_resumes_bit_identical(digits):
    config = digits_recipe(2.5, lookahead_every=3)
    saved = {}

    def keep_epoch_two(metrics, state):
        if state["epoch"] == 2:
            buffer = io.BytesIO()
            torch.save(state, buffer)
            saved["checkpoint"] = buffer.getvalue()

    uninterrupted = train(config, keep_epoch_two, dataset=digits)
    checkpoint = torch.load(io.BytesIO(saved["checkpoint"]), weights_only=False)
    assert checkpoint["lookahead"] is not None
    resumed = train(config, checkpoint=checkpoint, dataset=digits)
    assert learning_curve(resumed) == learning_curve(uninterrupted)
    assert resumed["confusion_matrix"] == uninterrupted["confusion_matrix"]
    assert "test_acc_plain" in uninterrupted["final"]  # the last epoch was scored with TTA


# ------------------------------------------------------------------ schedule and steps


def airbench_get_lr(step: int, total: int) -> float:
    """airbench94's get_lr, transcribed."""
    warmup_steps = int(total * 0.23)
    warmdown_steps = total - warmup_steps
    if step < warmup_steps:
        frac = step / warmup_steps
        return 0.2 * (1 - frac) + 1.0 * frac
    frac = (step - warmup_steps) / warmdown_steps
    return 1.0 * (1 - frac) + 0.07 * frac


def test_recipe_schedule_is_airbench_at_its_key_points():
    config = TrialConfig.from_dict(FASTNET_RECIPE)
    steps_per_epoch = 50_000 // 1024  # 48, drop_last
    total = total_steps(steps_per_epoch, config)
    assert total == math.ceil(48 * 9.9) == 476
    assert lr_factor(0, steps_per_epoch, config) == pytest.approx(0.2)
    assert lr_factor(109, steps_per_epoch, config) == pytest.approx(1.0)  # int(0.23 x 476)
    assert lr_factor(476, steps_per_epoch, config) == pytest.approx(0.07)
    for step in range(total + 1):
        assert lr_factor(step, steps_per_epoch, config) == pytest.approx(
            airbench_get_lr(step, total)), step


def test_train_fraction_ends_the_last_epoch_early(digits):
    config = digits_recipe(1.5, **{"task.tta": 0, "lookahead_every": 0})
    steps = 512 // 64  # full batches only
    assert config.train_fraction == 0.75 and total_steps(steps, config) == 12
    record = train(config, dataset=digits)
    # The last lr is the schedule's end point, reached only at step `total`.
    assert record["history"][-1]["lr"] == pytest.approx(config.lr * config.lr_end_factor)
    last = record["history"][-1]
    assert last["images_per_second"] * last["epoch_seconds"] == pytest.approx((12 - steps) * 64)


def test_norm_parameters_get_the_scaled_lr_and_divided_weight_decay():
    config = TrialConfig.from_dict({"model": "fastnet", "lr": 0.1, "weight_decay": 1e-3,
                                    "norm_lr_scale": 64})
    model = create_model("fastnet", 10, CIFAR, widths=(8, 8, 8), whiten=True)
    base, norm = build_optimizer(model, config).param_groups
    norm_biases = {id(m.bias) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert {id(p) for p in norm["params"]} == norm_biases  # BN weights are frozen
    assert norm["lr"] == pytest.approx(6.4) and norm["weight_decay"] == pytest.approx(1e-3 / 64)
    assert base["lr"] == 0.1 and base["weight_decay"] == 1e-3
    assert id(model[0].bias) in {id(p) for p in base["params"]}
    assert id(model[0].weight) not in {id(p) for p in base["params"]}  # frozen whitening
    plain = build_optimizer(model, TrialConfig.from_dict({"lr": 0.1}))
    assert len(plain.param_groups) == 1


# ------------------------------------------------------------------ config and preset


def test_preset_is_airbench94_in_config_keys():
    config = TrialConfig.from_dict(FASTNET_RECIPE)
    assert config.lr == pytest.approx(1.5)  # 11.5 / (1024 (1 + 1 / 0.15)) x 1024
    assert config.weight_decay == pytest.approx(0.0153 / 11.5)
    assert config.momentum == 0.85 and config.nesterov and config.norm_lr_scale == 64
    assert (config.epochs, config.train_fraction, config.batch_size) == (10, 0.99, 1024)
    assert config.model_options == {"whiten": True, "whiten_bias_epochs": 3}
    assert config.loss_options == {"label_smoothing": 0.2} and config.task_options == {"tta": 2}
    assert (config.crop_padding, config.pad_mode, config.flip, config.flip_mode) == (
        2, "reflect", True, "alternate")
    assert airbench_lr(256) == pytest.approx(1.5 / 4)


def test_preset_trains_one_epoch_on_digits(digits):
    config = digits_recipe(1)
    record = train(config, dataset=digits)
    assert record["status"] == "completed" and len(record["history"]) == 1
    assert math.isfinite(record["history"][0]["train_loss"])
    assert record["history"][0]["lr"] == pytest.approx(config.lr * 0.07)  # the schedule's end
    assert {"test_acc", "test_acc_plain"} <= set(record["final"])


def test_new_keys_are_hash_neutral_at_their_defaults():
    base = TrialConfig.from_dict({"lr": 0.1})
    explicit = TrialConfig.from_dict({"lr": 0.1, **HASH_NEUTRAL_DEFAULTS})
    assert explicit.config_hash() == base.config_hash()
    assert explicit.derived_seed() == base.derived_seed()
    assert base.replace(flip=True, flip_mode="alternate").config_hash() != \
        base.replace(flip=True).config_hash()


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"train_fraction": 0.75, "epochs": 5}, "train_fraction must be in"),
        ({"train_fraction": 1.5}, "train_fraction must be in"),
        ({"flip_mode": "sometimes"}, "flip_mode must be one of"),
        ({"flip_mode": "alternate"}, "needs flip=true"),
        ({"pad_mode": "edge"}, "pad_mode must be one of"),
        ({"pad_mode": "reflect"}, "needs crop_padding"),
        ({"lr_start_factor": 0.2}, "schedule=linear only"),
        ({"schedule": "linear", "lr_end_factor": -1}, "lr_end_factor must be >= 0"),
        ({"lookahead_every": -1}, "lookahead_every must be >= 0"),
        ({"lookahead_decay": 1.5}, "lookahead_decay must be in"),
        ({"norm_lr_scale": 0}, "norm_lr_scale must be > 0"),
        ({"task.tta": 3}, "task.tta must be 0"),
        ({"model": "fastnet", "model.whiten_eps": 0.0}, "whiten_eps must be > 0"),
    ],
)
def test_new_keys_are_validated(values, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config = TrialConfig.from_dict(values)
        create_model(config.model, 10, CIFAR, **config.model_options)
