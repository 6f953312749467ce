"""Zhang et al. (ICLR 2017) networks: parameter and MAC counts, layout, LRN and 'SAME' pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import harness.models.zhang  # noqa: F401  (registers alexnet-small and inception-small)
from harness.errors import ConfigError
from harness.models import count_macs, count_parameters, create_model, model_options
from harness.models.zhang import (
    INCEPTION_SMALL_LAYOUT,
    DownsampleModule,
    InceptionModule,
    MaxPoolSame,
    tf_local_response_norm,
)

CROP = (3, 28, 28)  # the paper's 28x28 crops of CIFAR-10
DIGITS = (1, 8, 8)
CIFAR = (3, 32, 32)


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("alexnet-small", {}, 1_387_786),
        ("alexnet-small", {"lrn": False, "dropout": 0.5}, 1_387_786),
        ("inception-small", {}, 1_649_402),
        ("inception-small", {"batchnorm": False}, 1_649_402),
        ("mlp", {"hidden": (512,)}, 1_209_866),
        ("mlp", {"hidden": (512, 512, 512)}, 1_735_178),
    ],
)
def test_parameter_counts_match_the_paper(name: str, options: dict, expected: int) -> None:
    assert count_parameters(create_model(name, 10, CROP, **options)) == expected


def test_alexnet_small_count_by_hand() -> None:
    conv1 = 3 * 5 * 5 * 64 + 64
    conv2 = 64 * 5 * 5 * 64 + 64
    fc1 = 64 * 7 * 7 * 384 + 384  # 28 -> 14 -> 7 with 'SAME' pooling
    fc2 = 384 * 192 + 192
    out = 192 * 10 + 10
    assert conv1 + conv2 + fc1 + fc2 + out == 1_387_786


# ---------------------------------------------------------------- MACs and spatial path


def test_alexnet_small_macs() -> None:
    expected = (
        28 * 28 * 64 * 3 * 25  # conv1 at 28x28
        + 14 * 14 * 64 * 64 * 25  # conv2 at 14x14
        + 3136 * 384
        + 384 * 192
        + 192 * 10
    )
    assert count_macs(create_model("alexnet-small", 10, CROP), CROP) == expected == 25_113_472


def _inception_macs(in_channels: int, size: int) -> int:
    """Hand count from the layout: 3x3 stem (same), Inception (same), Downsample (valid)."""
    macs = size * size * 96 * in_channels * 9
    channels = 96
    for spec in INCEPTION_SMALL_LAYOUT:
        if len(spec) == 2:
            a, b = spec
            macs += size * size * channels * (a + 9 * b)
            channels = a + b
        else:
            size = (size - 3) // 2 + 1
            macs += size * size * channels * 9 * spec[0]
            channels += spec[0]
    return macs + channels * 10


def test_inception_small_macs_and_spatial_path() -> None:
    model = create_model("inception-small", 10, CROP)
    assert count_macs(model, CROP) == _inception_macs(3, 28) == 176_297_504
    sizes: list[tuple[int, int, int]] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[1:])))
        for m in model.modules()
        if isinstance(m, DownsampleModule)
    ]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, *CROP))
    for hook in hooks:
        hook.remove()
    # 28 -> 13 -> 6, channels 80 + 80 = 160 and 96 + 144 = 240.
    assert sizes == [(160, 13, 13), (240, 6, 6)]
    assert model.classifier.in_features == 176 + 160


def test_inception_small_layout() -> None:
    model = create_model("inception-small", 10, CROP)
    incs = [m for m in model.modules() if isinstance(m, InceptionModule)]
    downs = [m for m in model.modules() if isinstance(m, DownsampleModule)]
    assert [m.out_channels for m in incs] == [64, 80, 160, 160, 160, 144, 336, 336]
    assert [m.conv[0].out_channels for m in downs] == [80, 96]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 2 * 8 + 2 and all(c.bias is not None for c in convs)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == len(convs) and not any(m.affine for m in norms)
    plain = create_model("inception-small", 10, CROP, batchnorm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


def test_alexnet_small_layout_and_options() -> None:
    model = create_model("alexnet-small", 10, CROP)
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.modules()) == 2
    assert sum(isinstance(m, MaxPoolSame) for m in model.modules()) == 2
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (3136, 384),
        (384, 192),
        (192, 10),
    ]
    no_lrn = create_model("alexnet-small", 10, CROP, lrn=False, dropout=0.5)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in no_lrn.modules())
    assert sum(isinstance(m, nn.Dropout) for m in no_lrn.modules()) == 2
    assert model_options("alexnet-small")["lrn"] is True
    assert model_options("alexnet-small")["dropout"] == 0.0
    assert model_options("inception-small") == {"batchnorm": True}


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="dropout"):
        create_model("alexnet-small", 10, CROP, dropout=1.0)
    with pytest.raises(ConfigError, match="fc_hidden"):
        create_model("alexnet-small", 10, CROP, fc_hidden=(384, 0))
    with pytest.raises(ConfigError, match="at least 7x7"):
        create_model("inception-small", 10, (3, 6, 28))


# ---------------------------------------------------------------- forward and backward


@pytest.mark.parametrize("in_shape", [DIGITS, CIFAR, CROP, (3, 7, 9)], ids=str)
@pytest.mark.parametrize("name", ["alexnet-small", "inception-small"])
def test_forward_and_backward(name: str, in_shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = create_model(name, 10, in_shape)
    model.train()
    out = model(torch.randn(3, *in_shape))
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"


# ---------------------------------------------------------------- LRN and 'SAME' pooling


def _tf_lrn(x: np.ndarray, depth_radius: int, bias: float, alpha: float, beta: float):
    """tf.nn.lrn as documented, with channels on axis 1: sum of squares over
    channels [c - r, c + r] clipped to the valid range."""
    channels = x.shape[1]
    out = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - depth_radius), min(channels, c + depth_radius + 1)
        sqr_sum = np.square(x[:, lo:hi]).sum(axis=1)
        out[:, c] = x[:, c] / (bias + alpha * sqr_sum) ** beta
    return out


def test_lrn_matches_tensorflow_formula() -> None:
    lrn = tf_local_response_norm()
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (9, pytest.approx(0.001), 0.75, 1.0)
    # Large activations so the normalization is far from the identity.
    x = torch.randn(2, 64, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x = x * 30
    expected = _tf_lrn(x.numpy(), 4, 1.0, 0.001 / 9, 0.75)
    assert not np.allclose(expected, x.numpy(), rtol=1e-2)
    np.testing.assert_allclose(lrn(x).numpy(), expected, rtol=1e-10, atol=1e-12)


def _tf_same_max_pool(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """TF 'SAME' max pool: out = ceil(n / s); the padding's smaller half goes first."""
    n, c, h, w = x.shape
    oh, ow = -(-h // s), -(-w // s)
    top = max((oh - 1) * s + k - h, 0) // 2
    left = max((ow - 1) * s + k - w, 0) // 2
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s - top, j * s - left
            window = x[:, :, max(r0, 0) : r0 + k, max(c0, 0) : c0 + k]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out


@pytest.mark.parametrize("size", [(28, 28), (14, 14), (8, 7), (1, 2)])
def test_max_pool_same_matches_tensorflow(size: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    out = MaxPoolSame(3, 2)(x)
    np.testing.assert_array_equal(out.numpy(), _tf_same_max_pool(x.numpy(), 3, 2))
    if size == (28, 28):
        # PyTorch's symmetric padding=1 has the same shape but other windows.
        symmetric = nn.functional.max_pool2d(x, 3, 2, padding=1)
        assert symmetric.shape == out.shape == (2, 3, 14, 14)
        assert not torch.equal(symmetric, out)
