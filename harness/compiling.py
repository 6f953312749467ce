"""``torch.compile`` for a trial: at most two graphs per model and task, train and eval.

Dynamo guards each graph on what it saw: the input's shape and strides, grad mode,
autocast, the module's training flag. A trial meets more than two such signatures (the
short last batch of an epoch, a split smaller than the eval batch, a photograph scored
whole, a float32 check beside bf16 scoring), and every new one is a recompile: tens of
seconds on a GPU against a trial of a few. So the first signature of each mode (training,
eval) gets the compiled graph and every other call runs the same module eagerly: same
weights, same result up to kernel rounding, no compile.

``COMPILE_BACKEND`` (``$HARNESS_COMPILE_BACKEND``, default inductor) is the backend; the
CPU tests count graphs with a wrapper around ``aot_eager``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

COMPILE_BACKEND: str | Callable[..., Any] = os.environ.get("HARNESS_COMPILE_BACKEND", "inductor")

Signature = tuple[Any, ...]


def call_signature(x: torch.Tensor) -> Signature:
    """What dynamo's guards see of one call, beside the module's own state."""
    return (tuple(x.shape), x.stride(), x.dtype, x.device, torch.is_grad_enabled(),
            torch.is_autocast_enabled(x.device.type))


class OneGraphPerMode(nn.Module):
    """``model`` compiled for the first call signature in each mode (train, eval); calls
    with any other signature run ``model`` itself. Train/eval switches reach ``model``
    (its only submodule), so tasks use this like the model."""

    def __init__(self, model: nn.Module, backend: str | Callable[..., Any] | None = None) -> None:
        super().__init__()
        self.model = model
        # Not a submodule: its parameters are the model's, and state_dict stays the model's.
        self.__dict__["compiled"] = torch.compile(
            model, backend=backend or COMPILE_BACKEND, dynamic=False
        )
        self.signatures: dict[bool, Signature] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        signature = call_signature(x)
        # The model's own flag: the training loop switches the model, not this wrapper.
        if self.signatures.setdefault(self.model.training, signature) == signature:
            return self.compiled(x)
        return self.model(x)


def compile_model(model: nn.Module, backend: str | Callable[..., Any] | None = None) -> nn.Module:
    """The trial's forward when ``compile`` is on."""
    return OneGraphPerMode(model, backend)
