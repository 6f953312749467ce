"""The Noise2Noise U-Net: shapes, gradients, N2N's parameter count, MACs, options."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import harness.models.unet  # noqa: F401
from harness.errors import ConfigError
from harness.models import count_macs, count_parameters, create_model, model_options, model_output

CIFAR = (3, 32, 32)
SMALL = {"features": 8, "depth": 3, "head_features": 8}


def _conv_params(cin: int, cout: int) -> int:
    return cin * cout * 9 + cout


def _n2n_hand_count(c: int = 3, f: int = 48, d: int = 96) -> int:
    """network.py's autoencoder, layer by layer."""
    encoder = _conv_params(c, f) + 6 * _conv_params(f, f)  # enc_conv0, enc_conv1..enc_conv6
    decoder = _conv_params(2 * f, d) + _conv_params(d, d)  # dec_conv5, dec_conv5b
    decoder += 3 * (_conv_params(d + f, d) + _conv_params(d, d))  # dec_conv4..2 (+b)
    head = _conv_params(d + c, 64) + _conv_params(64, 32) + _conv_params(32, c)
    return encoder + decoder + head


def test_registered_as_an_image_model_with_n2n_defaults() -> None:
    assert model_output("unet") == "image"
    options = model_options("unet")
    assert options["features"] == 48 and options["depth"] == 5
    assert options["decoder_features"] == 0 and options["head_features"] == 64
    assert options["negative_slope"] == 0.1


def test_default_parameter_count_matches_n2n() -> None:
    model = create_model("unet", 3, CIFAR)
    assert _n2n_hand_count() == 991_203
    assert count_parameters(model) == 991_203


def test_layer_widths_match_n2n() -> None:
    convs = [m for m in create_model("unet", 3, CIFAR).modules() if isinstance(m, nn.Conv2d)]
    widths = [(c.in_channels, c.out_channels) for c in convs]
    assert widths == [
        (3, 48), (48, 48), (48, 48), (48, 48), (48, 48), (48, 48), (48, 48),
        (96, 96), (96, 96), (144, 96), (96, 96), (144, 96), (96, 96), (144, 96), (96, 96),
        (99, 64), (64, 32), (32, 3),
    ]  # fmt: skip
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm)
        for m in create_model("unet", 3, CIFAR).modules()
    )


@pytest.mark.parametrize(
    ("out_channels", "shape"), [(3, (3, 32, 32)), (1, (1, 32, 64)), (3, (3, 64, 32))]
)
def test_output_shape_matches_input(out_channels: int, shape: tuple[int, int, int]) -> None:
    model = create_model("unet", out_channels, shape, **SMALL)
    x = torch.rand(2, *shape)
    assert model(x).shape == (2, out_channels, *shape[1:])


def test_any_multiple_works_at_forward_time_and_others_fail_clearly() -> None:
    model = create_model("unet", 3, CIFAR, **SMALL)  # depth 3: multiples of 8
    assert model(torch.rand(1, 3, 16, 40)).shape == (1, 3, 16, 40)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 3, 20, 32))


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    model = create_model("unet", 3, CIFAR, features=8, depth=5, head_features=8)
    model(torch.rand(2, *CIFAR)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_init_follows_n2n_he_init() -> None:
    torch.manual_seed(0)
    model = create_model("unet", 3, CIFAR)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        assert torch.all(conv.bias == 0)
    hidden = convs[9]  # dec_conv4: 144 -> 96, 124k weights
    assert hidden.weight.std().item() == pytest.approx(math.sqrt(2 / (144 * 9)), rel=0.02)
    last = convs[-1]  # dec_conv1: gain 1
    assert last.weight.std().item() == pytest.approx(1 / math.sqrt(32 * 9), rel=0.15)


def _encoder_only_macs(model: nn.Module, shape: tuple[int, int, int]) -> int:
    total = 0
    h, w = shape[1], shape[2]
    for i, level in enumerate(model.encoder):
        for conv in level:
            total += (h >> i) * (w >> i) * conv.out_channels * conv.in_channels * 9
    depth = len(model.encoder)
    conv = model.bottleneck
    total += (h >> depth) * (w >> depth) * conv.out_channels * conv.in_channels * 9
    return total


def test_macs_count_the_decoder() -> None:
    model = create_model("unet", 3, CIFAR)
    macs = count_macs(model, CIFAR)
    encoder = _encoder_only_macs(model, CIFAR)
    # dec_conv1a alone at 32x32: 99 -> 64 channels.
    assert macs >= encoder + 32 * 32 * 99 * 64 * 9
    assert macs == 178_119_936


def test_options_change_the_size() -> None:
    base = create_model("unet", 3, CIFAR)
    for options in (
        {"features": 16},
        {"depth": 3},
        {"decoder_features": 48},
        {"head_features": 32},
    ):
        model = create_model("unet", 3, CIFAR, **options)
        assert count_parameters(model) < count_parameters(base), options
        assert count_macs(model, CIFAR) < count_macs(base, CIFAR), options
    # decoder_features = 2 * features is the default spelled out.
    explicit = create_model("unet", 3, CIFAR, features=16, decoder_features=32)
    assert count_parameters(explicit) == count_parameters(
        create_model("unet", 3, CIFAR, features=16)
    )
    # One level fewer removes one encoder conv (F -> F) and one decoder level.
    shallow = create_model("unet", 3, CIFAR, depth=4)
    removed = _conv_params(48, 48) + _conv_params(144, 96) + _conv_params(96, 96)
    assert count_parameters(base) - count_parameters(shallow) == removed


def test_depth_one_is_a_valid_network() -> None:
    model = create_model("unet", 3, (3, 2, 2), features=4, depth=1, head_features=4)
    assert model(torch.rand(1, 3, 2, 2)).shape == (1, 3, 2, 2)


def test_too_small_an_image_fails_clearly() -> None:
    with pytest.raises(ConfigError, match=r"depth 5.*multiples of 2\*\*5 = 32.*8x8"):
        create_model("unet", 1, (1, 8, 8))
    with pytest.raises(ConfigError, match="multiples of 2\\*\\*3 = 8"):
        create_model("unet", 3, (3, 32, 36), depth=3)


@pytest.mark.parametrize(
    "options",
    [
        {"features": 0},
        {"depth": 0},
        {"decoder_features": -1},
        {"head_features": 1},
        {"negative_slope": -0.1},
    ],
)
def test_bad_options_raise_config_error(options: dict) -> None:
    with pytest.raises(ConfigError):
        create_model("unet", 3, CIFAR, **options)
