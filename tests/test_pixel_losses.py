"""Image losses: formulas, L0's annealing, masks, and what each one's minimizer is."""

from __future__ import annotations

import pytest
import torch

import harness.pixel_losses  # noqa: F401
from harness.errors import ConfigError
from harness.losses import create_loss, loss_options, loss_output


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(4, 3, 8, 8, generator=g), torch.rand(4, 3, 8, 8, generator=g)


def test_registered_as_image_losses_without_class_counts() -> None:
    for name in ("l2", "l1", "l0"):
        assert loss_output(name) == "image"
    assert loss_options("l2") == {} and loss_options("l1") == {}
    assert loss_options("l0") == {"gamma_start": 2.0, "eps": 1e-8}


def test_l2_and_l1_against_formulas() -> None:
    out, target = _pair()
    assert torch.allclose(create_loss("l2")(out, target), ((out - target) ** 2).mean())
    assert torch.allclose(create_loss("l1")(out, target), (out - target).abs().mean())


def test_l0_against_formula_through_training() -> None:
    out, target = _pair()
    loss = create_loss("l0")
    for fraction in (0.0, 0.25, 0.5, 0.9):
        loss.set_progress(fraction)
        gamma = 2.0 * (1 - fraction)
        expected = ((out - target).abs() + 1e-8).pow(gamma).mean()
        assert torch.allclose(loss(out, target), expected, rtol=1e-5)


def test_l0_starts_as_squared_error() -> None:
    out, target = _pair()
    loss = create_loss("l0")  # before any set_progress: gamma_start
    l2 = create_loss("l2")(out, target)
    assert torch.allclose(loss(out, target), l2, atol=1e-7)
    loss.set_progress(0.0)
    assert torch.allclose(loss(out, target), l2, atol=1e-7)
    loss.set_progress(0.5)  # gamma 1: absolute error
    assert torch.allclose(loss(out, target), create_loss("l1")(out, target), atol=1e-7)


def test_l0_approaches_a_counting_loss() -> None:
    loss = create_loss("l0")
    loss.set_progress(0.995)  # gamma 0.01
    small, large = torch.full((1, 1, 4, 4), 0.05), torch.full((1, 1, 4, 4), 0.9)
    zero = torch.zeros(1, 1, 4, 4)
    # Any non-zero error costs ~1 whatever its size; an exact match costs clearly less.
    assert loss(small, zero).item() == pytest.approx(1.0, abs=0.04)
    assert loss(large, zero).item() == pytest.approx(1.0, abs=0.04)
    assert loss(zero, zero).item() < 0.9
    # At gamma 2 the same pair differs by a factor of (0.9 / 0.05)^2.
    loss.set_progress(0.0)
    assert loss(large, zero) / loss(small, zero) == pytest.approx(324, rel=1e-4)


def test_l0_gradient_is_finite_at_a_zero_residual() -> None:
    loss = create_loss("l0")
    loss.set_progress(0.9)
    out = torch.zeros(1, 1, 2, 2, requires_grad=True)
    loss(out, torch.zeros(1, 1, 2, 2)).backward()
    assert torch.isfinite(out.grad).all()


def test_l0_gamma_is_a_buffer_that_follows_the_device() -> None:
    loss = create_loss("l0", gamma_start=3.0)
    assert "gamma" in dict(loss.named_buffers())
    loss.set_progress(0.5)
    assert loss.gamma.item() == pytest.approx(1.5)
    with pytest.raises(ValueError):
        loss.set_progress(1.5)


def test_valid_mask_averages_over_valid_pixels_only() -> None:
    out, target = _pair()
    valid = torch.zeros(4, 1, 8, 8)
    valid[:, :, :4] = 1  # top half of every image
    for name in ("l2", "l1", "l0"):
        loss = create_loss(name)
        expected = loss(out[:, :, :4], target[:, :, :4])
        assert torch.allclose(loss(out, target, valid), expected, rtol=1e-6)
    # Missing target pixels (zeros) must not pull the output: their gradient is 0.
    out = out.clone().requires_grad_(True)
    create_loss("l2")(out, target, valid).backward()
    assert torch.all(out.grad[:, :, 4:] == 0) and torch.all(out.grad[:, :, :4] != 0)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        create_loss("l2")(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))


@pytest.mark.parametrize("options", [{"gamma_start": 0.0}, {"gamma_start": -1.0}, {"eps": 0.0}])
def test_bad_l0_options(options: dict) -> None:
    with pytest.raises(ConfigError):
        create_loss("l0", **options)


def _fit_constant(loss_name: str, samples: torch.Tensor, steps: int = 600) -> float:
    loss = create_loss(loss_name)
    c = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([c], lr=0.02)
    targets = samples.view(1, 1, 1, -1)
    for _ in range(steps):
        opt.zero_grad()
        loss(c.expand_as(targets), targets).backward()
        opt.step()
    return c.item()


# Skewed samples: mean 1.6, median 1.0, so the two minimizers are far apart.
SKEWED = torch.tensor([0.0, 0.5, 1.0, 1.0, 1.0, 1.5, 6.0])


def test_l2_minimizer_is_the_mean() -> None:
    assert _fit_constant("l2", SKEWED) == pytest.approx(SKEWED.mean().item(), abs=1e-2)


def test_l1_minimizer_is_the_median() -> None:
    assert _fit_constant("l1", SKEWED) == pytest.approx(SKEWED.median().item(), abs=2e-2)


def _grid_argmin(loss, targets: torch.Tensor) -> float:
    grid = torch.linspace(0, 1, 201)
    values = torch.stack([loss(torch.full_like(targets, float(c)), targets) for c in grid])
    return grid[values.argmin()].item()


def test_annealed_l0_finds_the_mode_of_impulse_noise() -> None:
    # 30% of samples keep the clean value 0.9, the rest are uniform in [0, 1]: the mean
    # (0.62) and the median (0.71) miss it, the mode does not.
    g = torch.Generator().manual_seed(0)
    u = torch.rand(4000, generator=g)
    samples = torch.where(torch.rand(4000, generator=g) < 0.3, torch.tensor(0.9), u)
    targets = samples.view(1, 1, 1, -1)
    l0 = create_loss("l0")
    l0.set_progress(0.95)  # gamma 0.1
    assert _grid_argmin(l0, targets) == pytest.approx(0.9, abs=0.005)
    mean, median = samples.mean().item(), samples.median().item()
    assert mean < 0.7 and median < 0.8
    assert _grid_argmin(create_loss("l2"), targets) == pytest.approx(mean, abs=0.005)
    assert _grid_argmin(create_loss("l1"), targets) == pytest.approx(median, abs=0.005)
    l0.set_progress(0.0)  # gamma 2 is L2 again
    assert _grid_argmin(l0, targets) == pytest.approx(mean, abs=0.005)


# --- PSNR (harness.image_metrics) ------------------------------------------------------


def test_psnr_by_hand() -> None:
    from harness.image_metrics import psnr

    clean = torch.zeros(2, 1, 2, 2)
    out = torch.zeros(2, 1, 2, 2)
    out[0, 0, 0, 0] = 0.1  # MSE 0.01 / 4 = 0.0025 -> 10 log10(400) = 26.0206 dB
    out[1] = 0.5  # MSE 0.25 -> 6.0206 dB
    assert torch.allclose(
        psnr(out, clean), torch.tensor([26.0206, 6.0206], dtype=torch.float64), atol=1e-4
    )
    # max_value scales the peak: 255-scaled images give the same dB.
    assert torch.allclose(psnr(out * 255, clean, max_value=255.0), psnr(out, clean))


def test_psnr_clamps_the_output_and_can_quantize() -> None:
    from harness.image_metrics import psnr

    clean = torch.full((1, 3, 4, 4), 0.5)
    over = clean.clone()
    over[..., 0, 0] = 3.0  # clamped to 1: error 0.5 on 3 of 48 elements
    expected = 10 * torch.log10(torch.tensor(1 / (0.25 * 3 / 48), dtype=torch.float64))
    assert torch.allclose(psnr(over, clean), expected.reshape(1))
    # N2N rounds to uint8 first: an error below half a level vanishes.
    near = clean + 0.4 / 255
    target = torch.round(clean * 255) / 255
    assert torch.isinf(psnr(near, target, quantize=True)).all()
    assert torch.isfinite(psnr(near, target)).all()
    assert torch.isinf(psnr(clean, clean)).all()
    # One 8-bit level off everywhere: MSE 1 level^2 -> 20 log10(255) = 48.1308 dB.
    one_off = target + 1 / 255
    assert psnr(one_off, target, quantize=True).item() == pytest.approx(48.1308, abs=1e-4)
