"""What a first CUDA run would hit, caught on the CPU (issue 29).

No GPU runs these tests: each checks, on the CPU, the property that makes the CUDA path
right by construction: every op in a model's backward graph has a deterministic CUDA
backward; random draws come from CPU generators; ``torch.compile`` makes at most two
graphs per model and task; bf16 never reaches a loss, a normed head, TTA's average or
the stop-at-accuracy check; the record says what its numbers depend on.
"""

from __future__ import annotations

import re

import pytest
import torch

import harness.losses  # noqa: F401  (registers the class losses)
import harness.pixel_losses  # noqa: F401  (registers the pixel losses)
from harness.loss_registry import create_loss, list_losses, loss_output
from harness.models import create_model, list_models, model_output

# ------------------------------------------------------------------ 1. deterministic ops

# Every op that PyTorch's documentation of torch.use_deterministic_algorithms lists under
# "will throw a RuntimeError when mode=True", with the autograd nodes it leaves in a
# backward graph (the "0"/"1" overload suffix stripped). Ops with no backward, or whose
# only error is in the forward of a non-differentiable op, have none: they never show in a
# graph. test_the_list_covers_pytorchs_documentation keeps the table in step with PyTorch.
NONDETERMINISTIC_BACKWARD: dict[str, tuple[str, ...]] = {
    "torch.nn.AvgPool3d": ("AvgPool3DBackward",),
    "torch.nn.AdaptiveAvgPool2d": ("AdaptiveAvgPool2DBackward",),
    "torch.nn.AdaptiveAvgPool3d": ("AdaptiveAvgPool3DBackward",),
    "torch.nn.AdaptiveMaxPool2d": ("AdaptiveMaxPool2DBackward",),
    "torch.nn.FractionalMaxPool2d": ("FractionalMaxPool2DBackward",),
    "torch.nn.FractionalMaxPool3d": ("FractionalMaxPool3DBackward",),
    "torch.nn.MaxUnpool1d": ("MaxUnpool1DBackward",),
    "torch.nn.MaxUnpool2d": ("MaxUnpool2DBackward",),
    "torch.nn.MaxUnpool3d": ("MaxUnpool3DBackward",),
    "torch.nn.functional.interpolate": (
        "UpsampleLinear1DBackward", "UpsampleBilinear2DBackward", "UpsampleBicubic2DBackward",
        "UpsampleTrilinear3DBackward", "UpsampleBilinear2DAaBackward",
        "UpsampleBicubic2DAaBackward",
    ),
    "torch.nn.ReflectionPad1d": ("ReflectionPad1DBackward",),
    "torch.nn.ReflectionPad2d": ("ReflectionPad2DBackward",),
    "torch.nn.ReflectionPad3d": ("ReflectionPad3DBackward",),
    "torch.nn.NLLLoss": ("NllLoss2DBackward",),  # the 2-d (per-pixel) kernel alerts on CUDA
    "torch.nn.CTCLoss": ("CtcLossBackward",),
    "torch.nn.EmbeddingBag": ("EmbeddingBagBackward",),
    "torch.Tensor.put_": ("PutBackward",),
    "torch.histc": (),  # not differentiable
    "torch.bincount": (),  # not differentiable
    "torch.median": ("MedianBackward",),
    "torch.nn.functional.grid_sample": ("GridSampler2DBackward", "GridSampler3DBackward"),
    "torch.Tensor.scatter_reduce": ("ScatterReduceBackward",),
    "torch.Tensor.resize_": (),  # quantized tensors only
}
FORBIDDEN_NODES = {node for nodes in NONDETERMINISTIC_BACKWARD.values() for node in nodes}

# Registered models, with the options that change their layers (whitening stem, cosine
# head, LRN) switched on as well as off.
MODEL_VARIANTS: dict[str, list[dict]] = {
    "fastnet": [{}, {"whiten": True, "whiten_bias_epochs": 1}],
    "resnet32": [{}, {"normed_head": True}],
    "alexnet-small": [{}, {"lrn": False}],
}


def throwing_ops_in_docs() -> list[str]:
    """The names PyTorch documents as throwing in deterministic mode."""
    doc = torch.use_deterministic_algorithms.__doc__ or ""
    section = doc.split("operations will throw a", 1)[1].split("In addition", 1)[0]
    return [name for name in re.findall(r":(?:class|func):`([\w.]+)`", section)
            if name != "RuntimeError"]


def backward_nodes(output: torch.Tensor) -> set[str]:
    """The autograd node class names of ``output``'s backward graph, without the overload
    suffix (AvgPool3DBackward0 -> AvgPool3DBackward)."""
    names, seen, stack = set(), set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(re.sub(r"\d+$", "", type(node).__name__))
        stack += [child for child, _ in node.next_functions]
    return names


def test_the_list_covers_pytorchs_documentation() -> None:
    documented = throwing_ops_in_docs()
    assert len(documented) > 10  # the section was found
    missing = sorted(set(documented) - set(NONDETERMINISTIC_BACKWARD))
    assert not missing, f"map these newly documented ops to their autograd nodes: {missing}"


def test_the_walk_sees_a_nondeterministic_backward() -> None:
    """The check itself can fail: PyTorch's own LRN and adaptive max pool are caught."""
    x = torch.randn(2, 9, 4, 4, requires_grad=True)
    assert "AvgPool3DBackward" in backward_nodes(torch.nn.LocalResponseNorm(3)(x).sum())
    assert "AdaptiveMaxPool2DBackward" in backward_nodes(torch.nn.AdaptiveMaxPool2d(1)(x).sum())


def _model_cases() -> list[tuple[str, dict]]:
    return [(name, options) for name in list_models()
            for options in MODEL_VARIANTS.get(name, [{}])]


@pytest.mark.parametrize(("name", "options"), _model_cases(),
                         ids=[f"{n}-{o}" for n, o in _model_cases()])
def test_every_model_backward_has_a_deterministic_cuda_kernel(name: str, options: dict) -> None:
    image = model_output(name) == "image"
    torch.manual_seed(0)
    model = create_model(name, 3 if image else 10, (3, 32, 32), **options).train()
    logits = model(torch.randn(4, 3, 32, 32))
    found = backward_nodes(logits.square().sum()) & FORBIDDEN_NODES
    assert not found, f"{name} {options}: no deterministic CUDA backward for {sorted(found)}"


@pytest.mark.parametrize("name", list_losses())
def test_every_loss_backward_has_a_deterministic_cuda_kernel(name: str) -> None:
    torch.manual_seed(0)
    if loss_output(name) == "image":
        outputs = torch.randn(2, 3, 8, 8, requires_grad=True)
        loss = create_loss(name)(outputs, torch.rand(2, 3, 8, 8))
    else:
        outputs = torch.randn(8, 10, requires_grad=True)
        loss = create_loss(name, [50, 40, 30, 20, 10, 8, 6, 4, 2, 1])(outputs, torch.arange(8))
    found = backward_nodes(loss) & FORBIDDEN_NODES
    assert not found, f"loss {name}: no deterministic CUDA backward for {sorted(found)}"


def test_the_deterministic_layers_compute_what_they_replace() -> None:
    """Same values and gradients as PyTorch's LRN and adaptive max pool, bit for bit on the
    CPU, so records made before the change reproduce."""
    from harness.models.fastnet import GlobalMaxPool
    from harness.models.zhang import tf_local_response_norm

    torch.manual_seed(0)
    lrn = tf_local_response_norm()
    reference_lrn = torch.nn.LocalResponseNorm(lrn.size, lrn.alpha, lrn.beta, lrn.k)
    for ours, theirs in ((lrn, reference_lrn), (GlobalMaxPool(), torch.nn.AdaptiveMaxPool2d(1))):
        x = (torch.randn(8, 64, 5, 5) * 7).requires_grad_()
        grad = torch.randn_like(theirs(x))
        mine, = torch.autograd.grad(ours(x), x, grad)
        expected, = torch.autograd.grad(theirs(x), x, grad)
        assert torch.equal(ours(x), theirs(x))
        assert torch.equal(mine, expected)
