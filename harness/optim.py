"""Optimizers, learning-rate schedules (stepped once per batch) and the lookahead / EMA of
the weights."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from harness.config import TrialConfig

# Layers whose parameters ``norm_lr_scale`` applies to (airbench: "norm" in the name).
NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def total_steps(steps_per_epoch: int, config: TrialConfig) -> int:
    """Optimizer steps the trial trains: ceil(train_fraction x epochs x steps per epoch).

    Rounded before the ceiling so 0.95 x 10 x 48 = 456.00000000000006 is 456, not 457.
    """
    return math.ceil(round(config.train_fraction * config.epochs * steps_per_epoch, 6))


def parameter_groups(model: nn.Module, config: TrialConfig) -> list[dict[str, Any]]:
    """The trainable parameters; with ``norm_lr_scale`` != 1, normalization layers' parameters
    in a second group with lr x scale and weight decay / scale (airbench: bias_scaler), so
    their decay per step (lr x weight decay) equals everyone else's. The first group keeps
    the base lr (the one the history reports)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.norm_lr_scale == 1.0:
        return [{"params": params}]
    norm_ids = {
        id(p) for module in model.modules() if isinstance(module, NORM_LAYERS)
        for p in module.parameters(recurse=False)
    }
    norm = [p for p in params if id(p) in norm_ids]
    other = [p for p in params if id(p) not in norm_ids]
    scale = config.norm_lr_scale
    return [
        {"params": other},
        {"params": norm, "lr": config.lr * scale, "weight_decay": config.weight_decay / scale},
    ]


def build_optimizer(model: nn.Module, config: TrialConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=(0.9, config.adam_beta2), weight_decay=config.weight_decay
    )


RAMPDOWN_FRACTION = 0.3  # Noise2Noise ramps the lr down over the last 30% of steps


def lr_factor(step: int, steps_per_epoch: int, config: TrialConfig) -> float:
    """The multiplier on the base lr at a given optimizer step (a pure function, so resume is exact)."""
    total = total_steps(steps_per_epoch, config)
    warmup = config.warmup_epochs * steps_per_epoch
    if config.schedule == "linear":
        # airbench94's get_lr: start -> 1 over int(warmup) steps, then 1 -> end at step total.
        rise = int(round(warmup, 6))
        if step < rise:
            start = config.lr_start_factor
            return start + (1.0 - start) * step / rise
        end = config.lr_end_factor
        return 1.0 + (end - 1.0) * (step - rise) / max(1, total - rise)
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
    if config.schedule == "exponential":
        # Zhang et al.: the lr multiplied by lr_decay at the start of every epoch.
        return config.lr_decay ** (step // steps_per_epoch)
    if config.schedule == "rampdown":
        # Noise2Noise: constant, then (0.5 + cos(pi t) / 2)^2 over the last 30% of steps.
        start = (1.0 - RAMPDOWN_FRACTION) * total
        if step < start:
            return 1.0
        t = (step - start) / max(1.0, total - start)
        return (0.5 + 0.5 * math.cos(math.pi * min(1.0, t))) ** 2
    # cosine: from the end of warm-up down to zero at the last step
    progress = (step - warmup) / max(1.0, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, steps_per_epoch: int, config: TrialConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch, config)
    )


class Lookahead:
    """airbench94's LookaheadState: an EMA of every floating-point entry of the model's
    state dict (weights and BatchNorm running statistics), which is also copied back into
    the model each time it is updated.

    After optimizer step ``t`` (counted from 1): when ``t % every == 0``,
    ``ema <- ema + (1 - d_t)(w - ema)`` and ``w <- ema`` with
    ``d_t = decay x (t / total)^3`` (little averaging early, more towards the end);
    at ``t == total`` the EMA is copied into the model once more (``d = 1``), so the
    final weights are the EMA's. Its state goes into checkpoints, so resume is exact.
    """

    def __init__(self, model: nn.Module, every: int, decay: float, total: int) -> None:
        if every < 1:
            raise ValueError(f"lookahead every must be >= 1, got {every}")
        self.every = int(every)
        self.decay = float(decay)
        self.total = int(total)
        self.ema = {
            k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()
        }

    def decay_at(self, step: int) -> float:
        return self.decay * (step / self.total) ** 3

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        current = model.state_dict()
        for key, ema in self.ema.items():
            ema.lerp_(current[key], 1.0 - decay)
            current[key].copy_(ema)

    def after_step(self, model: nn.Module, step: int) -> None:
        """Call after optimizer step ``step`` (1-based)."""
        if step % self.every == 0:
            self.update(model, self.decay_at(step))
        if step >= self.total:
            self.update(model, 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state["ema"].items():
            self.ema[key].copy_(value)


def build_lookahead(model: nn.Module, steps_per_epoch: int, config: TrialConfig) -> Lookahead | None:
    if config.lookahead_every == 0:
        return None
    return Lookahead(model, config.lookahead_every, config.lookahead_decay,
                     total_steps(steps_per_epoch, config))
