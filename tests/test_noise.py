"""Noise models: statistics, per-image blind levels, masks, determinism, validation."""

from __future__ import annotations

import pytest
import torch

from harness.data.noise import (
    BLIND_RANGE,
    NOISE_MODELS,
    VALIDATION_LEVEL,
    NoiseSpec,
    add_noise,
    add_noise_masked,
    check_noise,
    validation_spec,
)
from harness.errors import ConfigError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _clean(n: int = 8, c: int = 3, size: int = 64, seed: int = 1) -> torch.Tensor:
    # Values kept off 0 and 1 so "unchanged" and "replaced" pixels are distinguishable.
    return 0.1 + 0.8 * torch.rand(n, c, size, size, generator=_gen(seed))


def test_validation_levels_and_specs() -> None:
    assert NOISE_MODELS == ("gaussian", "poisson", "bernoulli", "impulse")
    assert VALIDATION_LEVEL == {
        "gaussian": 25 / 255,
        "poisson": 30.0,
        "bernoulli": 0.5,
        "impulse": 0.7,
    }
    for model in NOISE_MODELS:
        spec = validation_spec(model)
        assert spec == NoiseSpec(model, False, VALIDATION_LEVEL[model])
        assert NoiseSpec(model).fixed_level == VALIDATION_LEVEL[model]


def test_gaussian_noise_statistics_and_no_clipping() -> None:
    clean = torch.full((4, 3, 128, 128), 0.02)
    noisy = add_noise(clean, NoiseSpec("gaussian", level=0.1), _gen())
    noise = noisy - clean
    assert abs(noise.mean().item()) < 2e-3
    assert noise.std().item() == pytest.approx(0.1, rel=0.01)
    assert noisy.min() < 0  # not clipped, as in N2N


def test_poisson_statistics() -> None:
    lam = 30.0
    clean = torch.full((4, 3, 128, 128), 0.4)
    noisy = add_noise(clean, NoiseSpec("poisson", level=lam), _gen())
    assert noisy.mean().item() == pytest.approx(0.4, rel=0.01)
    assert noisy.var().item() == pytest.approx(0.4 / lam, rel=0.03)
    assert noisy.min() >= 0
    # Values are counts / lambda.
    counts = noisy * lam
    assert torch.allclose(counts, counts.round(), atol=1e-4)


def test_bernoulli_drops_whole_pixels_at_rate_p() -> None:
    clean = _clean()
    noisy, valid = add_noise_masked(clean, NoiseSpec("bernoulli", level=0.3), _gen())
    assert valid.shape == (8, 1, 64, 64)
    dropped = (noisy == 0).all(dim=1, keepdim=True)
    kept = (noisy == clean).all(dim=1, keepdim=True)
    assert torch.equal(dropped | kept, torch.ones_like(dropped))  # all channels or none
    assert torch.equal(dropped, valid == 0)
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.01)


def test_impulse_replaces_whole_pixels_with_uniform_colours() -> None:
    clean = torch.full((8, 3, 64, 64), 0.5)
    noisy, valid = add_noise_masked(clean, NoiseSpec("impulse", level=0.3), _gen())
    changed = (noisy != clean).any(dim=1)
    assert changed.float().mean().item() == pytest.approx(0.3, abs=0.01)
    replaced = noisy.permute(1, 0, 2, 3)[:, changed]  # (3, count)
    assert (replaced != 0.5).all()  # a replaced pixel gets a new value in every channel
    assert replaced.min() >= 0 and replaced.max() <= 1
    assert replaced.mean().item() == pytest.approx(0.5, abs=0.01)
    assert replaced.var().item() == pytest.approx(1 / 12, rel=0.03)
    assert torch.equal(valid, torch.ones_like(valid))  # the learner can't know which


@pytest.mark.parametrize("p", [0.5, 0.7])
def test_impulse_noisy_targets_mean_is_biased_and_median_only_where_the_level_says(p) -> None:
    """Many noisy draws of one clean pixel value: the sample median and mean against the
    clean value. The narrative's claim about the median must be true of the level used."""
    from harness.data.noise import impulse_median_unbiased

    low, high = impulse_median_unbiased(p)
    generator = torch.Generator().manual_seed(0)
    for value in (0.1, 0.5, 0.9):
        clean = torch.full((1, 1, 400, 400), value)
        noisy = add_noise(clean, NoiseSpec("impulse", level=p), generator).flatten()
        mean, median = noisy.mean().item(), noisy.median().item()
        assert mean == pytest.approx((1 - p) * value + p / 2, abs=0.005)
        assert (abs(mean - value) > 0.05) == (value != 0.5)  # biased but at 1/2
        median_biased = abs(median - value) > 0.01
        assert median_biased == (not low <= value <= high), (p, value, median)
    # At p 0.5 the median is never biased (L1 recovers the image); at 0.7 it is for dark
    # and bright pixels.
    assert (low, high) == ((0.0, 1.0) if p == 0.5 else (pytest.approx(2 / 7), pytest.approx(5 / 7)))


def test_p_zero_leaves_the_image_unchanged() -> None:
    clean = _clean(n=2)
    for model in ("bernoulli", "impulse"):
        assert torch.equal(add_noise(clean, NoiseSpec(model, level=0.0), _gen()), clean)


@pytest.mark.parametrize("model", NOISE_MODELS)
def test_blind_levels_vary_per_image_within_range(model: str) -> None:
    n = 64
    clean = torch.full((n, 3, 48, 48), 0.5)
    noisy = add_noise(clean, NoiseSpec(model, blind=True), _gen())
    low, high = BLIND_RANGE[model]
    if model == "gaussian":
        level = (noisy - clean).std(dim=(1, 2, 3))
        assert level.max() <= high * 1.05
    elif model == "poisson":
        # var(noisy) = x / lambda, so lambda = x / var.
        level = 0.5 / noisy.var(dim=(1, 2, 3)).clamp_min(1e-12)
        assert level.min() >= low * 0.5
        assert level.max() <= high * 1.2
    elif model == "bernoulli":
        level = (noisy == 0).all(dim=1).float().mean(dim=(1, 2))
        assert level.max() <= high + 0.03
    else:
        level = (noisy != clean).any(dim=1).float().mean(dim=(1, 2))
        assert level.max() <= high + 0.03
    # Uniform per-image levels: they spread over the range, not one level for the batch.
    assert level.std() > 0.15 * (high - low)
    assert level.min() < low + 0.25 * (high - low) and level.max() > low + 0.6 * (high - low)


def test_blind_gaussian_sigma_is_shared_within_an_image() -> None:
    clean = torch.zeros(16, 3, 64, 64)
    noise = add_noise(clean, NoiseSpec("gaussian", blind=True), _gen())
    per_channel = noise.std(dim=(2, 3))  # (16, 3)
    assert torch.allclose(per_channel, per_channel.mean(dim=1, keepdim=True), rtol=0.1, atol=1e-3)


@pytest.mark.parametrize("model", NOISE_MODELS)
@pytest.mark.parametrize("blind", [False, True])
def test_seeded_generator_is_deterministic_and_draws_are_independent(
    model: str, blind: bool
) -> None:
    clean = _clean(n=4, size=32)
    spec = NoiseSpec(model, blind=blind)
    a = add_noise(clean, spec, _gen(5))
    b = add_noise(clean, spec, _gen(5))
    assert torch.equal(a, b)
    g = _gen(5)
    first, second = add_noise(clean, spec, g), add_noise(clean, spec, g)
    assert torch.equal(first, a)
    assert not torch.equal(first, second)
    assert not torch.equal(a, add_noise(clean, spec, _gen(6)))


def test_noisy_input_and_target_noise_are_uncorrelated() -> None:
    clean = _clean(n=4, size=64)
    g = _gen()
    spec = NoiseSpec("gaussian", level=0.1)
    n1 = add_noise(clean, spec, g) - clean
    n2 = add_noise(clean, spec, g) - clean
    corr = torch.corrcoef(torch.stack([n1.flatten(), n2.flatten()]))[0, 1]
    assert abs(corr.item()) < 0.02


def test_global_rng_is_untouched() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for model in NOISE_MODELS:
        add_noise(_clean(n=2, size=8), NoiseSpec(model, blind=True), _gen())
    assert torch.equal(torch.rand(3), expected)


def test_dtype_and_shape_are_kept() -> None:
    clean = _clean(n=2, size=8).double()
    for model in NOISE_MODELS:
        noisy = add_noise(clean, NoiseSpec(model), _gen())
        assert noisy.dtype == torch.float64 and noisy.shape == clean.shape


@pytest.mark.parametrize(
    ("model", "blind", "level"),
    [
        ("salt-and-pepper", False, None),
        ("gaussian", False, 0.0),
        ("gaussian", False, 1.5),
        ("gaussian", False, float("nan")),
        ("poisson", False, 0.0),
        ("poisson", False, -3.0),
        ("bernoulli", False, 1.0),
        ("bernoulli", False, -0.1),
        ("impulse", False, 1.0),
        ("gaussian", True, 0.1),  # a blind model draws its own level
        ("gaussian", "yes", None),
    ],
)
def test_bad_specs_raise_config_error(model: str, blind: bool, level: float | None) -> None:
    with pytest.raises(ConfigError):
        check_noise(model, blind, level)
    with pytest.raises(ConfigError):
        NoiseSpec(model, blind, level)


@pytest.mark.parametrize(
    ("model", "level"),
    [("gaussian", 1.0), ("poisson", 0.001), ("bernoulli", 0.0), ("impulse", 0.95)],
)
def test_the_edges_of_each_valid_range_are_accepted_and_applied(model: str, level: float) -> None:
    check_noise(model, True, None)  # blind: no level of its own
    spec = NoiseSpec(model, False, level)  # checks like check_noise, and is then used
    assert spec.fixed_level == level
    clean = torch.full((16, 3, 128, 128), 0.5)
    noisy = add_noise(clean, spec, _gen())
    if model == "gaussian":
        assert (noisy - clean).std().item() == pytest.approx(level, rel=0.01)
    elif model == "poisson":
        assert noisy.var().item() == pytest.approx(0.5 / level, rel=0.2)  # var = x / lambda
    elif model == "bernoulli":
        assert torch.equal(noisy, clean)  # p = 0 drops nothing
    else:
        changed = (noisy != clean).any(dim=1).float().mean().item()
        assert changed == pytest.approx(level, abs=0.01)


def test_bad_images_are_rejected() -> None:
    spec = validation_spec("gaussian")
    with pytest.raises(ValueError, match="float"):
        add_noise(torch.zeros(3, 8, 8), spec, _gen())
    with pytest.raises(ValueError, match="float"):
        add_noise(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), spec, _gen())
    if torch.cuda.is_available():  # a CPU generator serves any device; a CUDA one only CUDA
        with pytest.raises(ValueError, match="device"):
            add_noise(torch.zeros(1, 3, 8, 8), spec, torch.Generator(device="cuda"))
