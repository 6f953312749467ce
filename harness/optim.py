"""Optimizers and learning-rate schedules, stepped once per batch."""

from __future__ import annotations

import math

import torch
from torch import nn

from harness.config import TrialConfig


def build_optimizer(model: nn.Module, config: TrialConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(step: int, steps_per_epoch: int, config: TrialConfig) -> float:
    """The multiplier on the base lr at a given optimizer step (a pure function, so resume is exact)."""
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_epochs * steps_per_epoch
    if config.schedule == "onecycle":
        # Linear rise to the peak, then linear decay to zero; the rise lasts the warm-up,
        # or a quarter of training when no warm-up is given.
        peak = warmup if warmup > 0 else 0.25 * total
        if step < peak:
            return (step + 1) / peak
        return max(0.0, (total - step) / max(1.0, total - peak))
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "constant":
        return 1.0
    if config.schedule == "multistep":
        epoch = step // steps_per_epoch
        return config.lr_decay ** sum(1 for m in config.milestones if epoch >= m)
    # cosine: from the end of warm-up down to zero at the last step
    progress = (step - warmup) / max(1.0, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, steps_per_epoch: int, config: TrialConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch, config)
    )
