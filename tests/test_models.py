"""Models: shapes and gradients on both dataset shapes, parameter and MAC counts, options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.errors import ConfigError, RegistryError
from harness.models import (
    count_macs,
    count_parameters,
    create_model,
    list_models,
    model_options,
    model_output,
)

DIGITS = (1, 8, 8)
CIFAR = (3, 32, 32)

# Narrower variants keep the CPU test fast; the architecture is unchanged.
SMALL_OPTIONS = {
    "seed-convnet": {"base_width": 8, "fc_hidden": (32, 16)},
    "seed-convnet-6conv": {"base_width": 8, "fc_hidden": (32, 16)},
    "seed-convnet-8conv": {"base_width": 8, "fc_hidden": (32, 16)},
    "fastnet": {"widths": (8, 16, 16)},
    "resnet32": {"base_width": 4},
    "unet": {"features": 8, "depth": 2, "head_features": 8},
}


def test_expected_models_are_registered() -> None:
    expected = {
        "seed-convnet",
        "seed-convnet-6conv",
        "seed-convnet-8conv",
        "vanilla-cnn",
        "resnet32",
        "fastnet",
        "mlp",
    }
    assert expected <= set(list_models())


CLASSIFIERS = [name for name in list_models() if model_output(name) == "classes"]
IMAGE_MODELS = [name for name in list_models() if model_output(name) == "image"]


def test_every_model_outputs_classes_or_images() -> None:
    assert set(CLASSIFIERS) | set(IMAGE_MODELS) == set(list_models())
    assert "unet" in IMAGE_MODELS and "mlp" in CLASSIFIERS


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_models_map_an_image_to_an_image_with_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, 3, CIFAR, **SMALL_OPTIONS.get(name, {}))
    x = torch.randn(2, *CIFAR)
    out = model(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("in_shape", [DIGITS, CIFAR], ids=["digits", "cifar"])
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_forward_and_backward(name: str, in_shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = create_model(name, 10, in_shape, **SMALL_OPTIONS.get(name, {}))
    model.train()
    x = torch.randn(4, *in_shape)
    out = model(x)
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    frozen = []
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            frozen.append(pname)
            continue
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
    # Only airbench-style BatchNorm weights (fixed at 1) may be frozen.
    modules = dict(model.named_modules())
    for pname in frozen:
        owner, _, leaf = pname.rpartition(".")
        assert leaf == "weight" and isinstance(modules[owner], nn.BatchNorm2d), pname


def test_resnet32_parameter_count() -> None:
    n = count_parameters(create_model("resnet32", 10, CIFAR))
    assert 450_000 <= n <= 480_000
    assert n == 464_154  # He et al.'s 0.46M, LDAM-DRW's resnet32 for CIFAR-10


def test_resnet_depth_changes_blocks() -> None:
    small = count_parameters(create_model("resnet32", 10, CIFAR, depth=20))
    assert small < count_parameters(create_model("resnet32", 10, CIFAR))
    with pytest.raises(ConfigError, match="6n"):
        create_model("resnet32", 10, CIFAR, depth=30)


def test_vanilla_cnn_exact_parameter_count() -> None:
    # conv: 32 filters of 3x7x7 + 32 biases; 32x32 -> 26x26 -> pool 13x13;
    # linear: 32*13*13 inputs -> 10 outputs + 10 biases.
    conv = 32 * 3 * 7 * 7 + 32
    linear = 32 * 13 * 13 * 10 + 10
    assert count_parameters(create_model("vanilla-cnn", 10, CIFAR)) == conv + linear == 58_826


def test_mlp_matches_writeup_parameter_count() -> None:
    # The write-up's 50 -> 50 -> 50 -> 10 MLP has 5,610 parameters with biases.
    model = create_model("mlp", 10, (1, 5, 10), hidden=(50, 50))
    assert count_parameters(model) == 5_610


def test_seed_convnet_widths_and_presets() -> None:
    model = create_model("seed-convnet-8conv", 10, CIFAR, base_width=8, max_width=16)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16, 16, 16, 16, 16]
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) for c in convs)
    six = create_model("seed-convnet-6conv", 10, CIFAR)
    assert sum(isinstance(m, nn.Conv2d) for m in six.modules()) == 6
    linears = [m for m in six.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [512, 256, 10]
    assert count_parameters(six) == count_parameters(create_model("seed-convnet", 10, CIFAR))
    assert "blocks" not in model_options("seed-convnet-6conv")
    no_bn = create_model("seed-convnet", 10, CIFAR, base_width=8, batchnorm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in no_bn.modules())


def test_fastnet_batchnorm_follows_airbench() -> None:
    model = create_model("fastnet", 10, CIFAR)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 6
    assert all(m.momentum == pytest.approx(0.4) and m.eps == 1e-12 for m in norms)
    head = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(head) == 1 and head[0].bias is None


def test_count_macs_on_hand_checked_model() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    # conv: 2x2x2 outputs, each 1*3*3 MACs = 72; linear: 8*3 = 24.
    model.train()
    assert count_macs(model, (1, 4, 4)) == 72 + 24
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    count_macs(model, (1, 4, 4))
    assert not any(m.training for m in model.modules())


def test_count_macs_vanilla_cnn() -> None:
    macs = count_macs(create_model("vanilla-cnn", 10, CIFAR), CIFAR)
    assert macs == 26 * 26 * 32 * 3 * 7 * 7 + 32 * 13 * 13 * 10


def test_unknown_option_is_config_error() -> None:
    with pytest.raises(ConfigError, match="base_width"):
        create_model("seed-convnet", 10, CIFAR, widht=3)


def test_bad_option_value_is_config_error() -> None:
    with pytest.raises(ConfigError, match="activation"):
        create_model("mlp", 10, DIGITS, activation="tanh")


def test_unknown_model_is_registry_error() -> None:
    with pytest.raises(RegistryError, match="resnet32"):
        model_options("resnet-32")
    with pytest.raises(RegistryError):
        create_model("nope", 10, CIFAR)


def test_option_defaults_have_coercible_types() -> None:
    for name in list_models():
        for option, default in model_options(name).items():
            assert isinstance(default, int | float | bool | str | tuple), (name, option)
            if isinstance(default, tuple):
                assert default and all(isinstance(v, int) for v in default), (name, option)


def test_list_options_are_accepted() -> None:
    # Configs round-trip through JSON, which turns tuples into lists.
    model = create_model("mlp", 3, DIGITS, hidden=[7])
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [7, 3]


def test_resnet_normed_head_is_initialized_as_ldam_drw() -> None:
    # kaidic/LDAM-DRW: uniform(-1, 1), renormalized to unit-norm columns of an (in, out)
    # weight; the Kaiming init of linear layers must not touch it.
    torch.manual_seed(0)
    model = create_model("resnet32", 10, CIFAR, base_width=4, normed_head=True)
    weight = model.linear.weight
    assert weight.shape == (16, 10)
    assert torch.allclose(weight.norm(dim=0), torch.ones(10), atol=1e-6)
    assert count_parameters(model) == count_parameters(
        create_model("resnet32", 10, CIFAR, base_width=4)) - 10  # no bias in the cosine head
    plain_macs = count_macs(create_model("resnet32", 10, CIFAR, base_width=4), CIFAR)
    assert count_macs(model, CIFAR) == plain_macs


def test_resnet_normed_head_gives_cosine_logits() -> None:
    # LDAM-DRW's use_norm head: LDAM's scale 30 assumes logits in [-1, 1].
    model = create_model("resnet32", 10, DIGITS, base_width=4, normed_head=True).eval()
    out = model(torch.randn(3, *DIGITS) * 10)
    assert out.abs().max() <= 1 + 1e-5
