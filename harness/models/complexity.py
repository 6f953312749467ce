"""Model size: parameter counts and multiply-accumulates (MACs) per image."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (all of them, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, in_shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of Conv2d and Linear layers for one (C, H, W) image.

    Runs one forward pass on a zero image with forward hooks, in eval mode so BatchNorm
    statistics and dropout are untouched; every module's train/eval flag is restored.
    Biases, norms, activations and pooling are not counted (they are O(outputs)).
    """
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    modes = {m: m.training for m in model.modules()}
    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear) or getattr(m, "counts_as_linear", False):
            handles.append(m.register_forward_hook(linear_hook))
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *in_shape, device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.train(training)
    return total
