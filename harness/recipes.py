"""Training recipes as config presets: flat dicts of config keys a study or a user merges
into a trial's config (``{**FASTNET_RECIPE, "dataset": "cifar10"}``).

``fastnet_recipe`` is airbench94 (Keller Jordan's CIFAR-10 to 94% in 3.83 s on an A100)
in this harness's keys; docs/fastnet.md maps each of its elements to where it lives here.

airbench states its optimizer in decoupled form for a *summed* loss: lr 11.5 and weight
decay 0.0153 "per 1024 examples", divided by 1024 (1 + 1 / (1 - momentum)) before they
reach torch's SGD, with torch's weight_decay = wd / lr. This harness's losses are batch
means, and a mean loss with lr x batch_size takes exactly the steps of a summed loss with
lr, so the recipe converts instead of adding a loss-reduction switch:

    lr (mean loss)  = 11.5 / (1 + 1 / (1 - 0.85)) x batch_size / 1024   (1.5 at 1024)
    weight_decay    = 0.0153 / 11.5   (torch's coefficient; the same at every batch size)
    norm_lr_scale   = 64              (BatchNorm biases: lr x 64, weight decay / 64)

so a smaller batch (the CPU profiles' subsets) keeps airbench's per-example step sizes.
"""

from __future__ import annotations

import math
from typing import Any

# airbench94's hyp dict (legacy/airbench94.py), in its own units.
AIRBENCH94 = {
    "train_epochs": 9.9,
    "batch_size": 1024,
    "lr": 11.5,  # per 1024 examples, summed loss, momentum-decoupled
    "momentum": 0.85,
    "weight_decay": 0.0153,  # per 1024 examples, decoupled from the lr
    "bias_scaler": 64.0,
    "label_smoothing": 0.2,
    "whiten_bias_epochs": 3,
    "translate": 2,
    "tta_level": 2,
    "warmup_fraction": 0.23,  # of all steps; lr factor 0.2 -> 1.0, then 1.0 -> 0.07
    "lr_start_factor": 0.2,
    "lr_end_factor": 0.07,
    "lookahead_every": 5,
    "lookahead_decay": 0.95**5,
}


def airbench_lr(batch_size: int, lr: float = AIRBENCH94["lr"],
                momentum: float = AIRBENCH94["momentum"]) -> float:
    """torch SGD's lr for a batch-mean loss that takes airbench's steps at ``batch_size``."""
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    return lr / kilostep_scale * batch_size


def airbench_weight_decay(lr: float = AIRBENCH94["lr"],
                          weight_decay: float = AIRBENCH94["weight_decay"]) -> float:
    """torch SGD's weight_decay for a batch-mean loss: airbench's wd / lr (batch-free)."""
    return weight_decay / lr


def fastnet_recipe(batch_size: int = AIRBENCH94["batch_size"],
                   train_epochs: float = AIRBENCH94["train_epochs"]) -> dict[str, Any]:
    """airbench94's recipe for ``fastnet`` at ``batch_size`` (lr scaled with it), trained for
    ``train_epochs`` (fractional: ceil(train_epochs) epochs, the last one cut short), the
    warm-up staying 23% of the steps.

    fastnet's defaults are airbench's net (widths 64/256/256, logit scale 1/9,
    BatchNorm momentum 0.6 and eps 1e-12 with frozen weights); a study may narrow the
    widths (``model.widths``) for its CPU profiles.
    """
    if train_epochs <= 0:
        raise ValueError(f"train_epochs must be > 0, got {train_epochs}")
    epochs = math.ceil(train_epochs)
    return {
        "model": "fastnet",
        "model.whiten": True,
        "model.whiten_bias_epochs": AIRBENCH94["whiten_bias_epochs"],
        "loss": "ce",
        "loss.label_smoothing": AIRBENCH94["label_smoothing"],
        "optimizer": "sgd",
        "lr": airbench_lr(batch_size),
        "momentum": AIRBENCH94["momentum"],
        "nesterov": True,
        "weight_decay": airbench_weight_decay(),
        "norm_lr_scale": AIRBENCH94["bias_scaler"],
        "batch_size": batch_size,
        "drop_last": True,
        "epochs": epochs,
        "train_fraction": train_epochs / epochs,
        "schedule": "linear",
        # 23% of the epochs, so int(warmup_epochs x steps per epoch) is airbench's
        # int(0.23 x total steps) on full CIFAR-10 (2.277 epochs: 109 of 476 steps).
        "warmup_epochs": round(AIRBENCH94["warmup_fraction"] * train_epochs, 6),
        "lr_start_factor": AIRBENCH94["lr_start_factor"],
        "lr_end_factor": AIRBENCH94["lr_end_factor"],
        "lookahead_every": AIRBENCH94["lookahead_every"],
        "lookahead_decay": AIRBENCH94["lookahead_decay"],
        "crop_padding": AIRBENCH94["translate"],
        "pad_mode": "reflect",
        "flip": True,
        "flip_mode": "alternate",
        "task.tta": AIRBENCH94["tta_level"],
    }


FASTNET_RECIPE = fastnet_recipe()
