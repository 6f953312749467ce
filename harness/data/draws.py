"""Random draws on a CPU generator, moved to the data's device.

Every shuffle, crop, flip and noise sample of a trial comes from a CPU ``torch.Generator``
(so a CPU and a GPU trial of one config draw the same numbers) and is then moved to where
the images are. On CUDA the move is asynchronous from pinned memory: a plain copy from
pageable memory would wait for every kernel queued before it, once per batch, and the
host could no longer run ahead of the GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def to_device(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``values`` (drawn on the CPU) on ``device``, without a host sync on CUDA."""
    if values.device == device:
        return values
    if device.type == "cuda" and values.device.type == "cpu":
        return values.pin_memory().to(device, non_blocking=True)
    return values.to(device)


def draw_on(generator: torch.Generator, sample: Callable[..., torch.Tensor], *args: Any,
            **kwargs: Any) -> torch.Tensor:
    """``sample(*args, generator=generator, **kwargs)`` on the generator's own device: a CPU
    generator draws the same numbers whatever device the data lives on."""
    return sample(*args, generator=generator, device=generator.device, **kwargs)
