"""Losses on class logits (CE, focal, class-balanced, LDAM-DRW, logit adjustment, balanced
softmax), registered in harness.loss_registry as ``fn(class_counts, **options)``.

``class_counts`` are the per-class sizes of the trial's actual training split, so
imbalance-aware losses see the imbalance the model is trained on. Options are keywords
with defaults, read by ``loss_options`` from the signature (as for models).

Classes with a count of 0 (possible after subsampling) are handled so every loss stays
finite: class-balanced weight 0, LDAM margin ``max_margin`` (the largest, as for the
rarest class), and a log-prior of log(1e-12) instead of -inf. Such a class never appears
as a training target, so these choices only keep the arithmetic finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from harness.errors import require
from harness.loss_registry import (  # noqa: F401  (the registry's API, imported from here)
    LOSSES,
    MIN_PRIOR,
    LossFactory,
    LossFunction,
    check_class_counts,
    create_loss,
    list_losses,
    loss_options,
    loss_output,
    register_loss,
)


def _check_beta(key: str, beta: float) -> None:
    require(0 <= beta < 1, f"{key} must be in [0, 1), got {beta}")


def _check_gamma(gamma: float) -> None:
    require(gamma >= 0, f"gamma must be >= 0, got {gamma}")


def class_balanced_weights(class_counts: Sequence[int], beta: float) -> torch.Tensor:
    """Cui et al. (CVPR 2019): w_c = (1 - beta) / (1 - beta^n_c), normalized to sum to C.

    beta = 0 gives equal weights, beta -> 1 inverse class frequency. A class with n_c = 0
    gets weight 0 before normalizing (its effective number is 0). Computed in float64
    because 1 - beta^n loses digits in float32 for beta near 1; returned as float32.
    """
    counts = torch.tensor(check_class_counts(class_counts), dtype=torch.float64)
    _check_beta("beta", beta)
    effective = 1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts)
    weights = torch.where(counts > 0, (1.0 - beta) / effective.clamp_min(1e-300), 0.0)
    weights = weights / weights.sum() * len(counts)
    return weights.float()


def log_prior(class_counts: Sequence[int]) -> torch.Tensor:
    """log(n_c / N) in float32, with MIN_PRIOR standing in for empty classes."""
    counts = torch.tensor(check_class_counts(class_counts), dtype=torch.float64)
    return torch.log((counts / counts.sum()).clamp_min(MIN_PRIOR)).float()


def sigmoid_focal_loss(
    logits: torch.Tensor, one_hot: torch.Tensor, weights: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Cui et al.'s reference ``focal_loss``: sum of weighted modulated BCE / sum of labels.

    Their modulator exp(-gamma * y * z - gamma * log(1 + exp(-z))) equals (1 - p_t)^gamma;
    softplus(-z) replaces log(1 + exp(-z)) so large negative logits do not overflow.
    """
    bce = F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none")
    if gamma == 0:
        modulator = torch.ones_like(bce)
    else:
        modulator = torch.exp(-gamma * (one_hot * logits + F.softplus(-logits)))
    return (weights * modulator * bce).sum() / one_hot.sum()


# --- losses ---------------------------------------------------------------------------


class CrossEntropy(LossFunction):
    def __init__(self, label_smoothing: float) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)


@register_loss("ce")
def ce(class_counts: Sequence[int], label_smoothing: float = 0.0) -> LossFunction:
    require(0 <= label_smoothing < 1, f"label_smoothing must be in [0, 1), got {label_smoothing}")
    return CrossEntropy(label_smoothing)


class SoftmaxFocal(LossFunction):
    """Lin et al. (2017) focal loss on the softmax: -(1 - p_t)^gamma log p_t, batch mean."""

    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_pt = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        if self.gamma == 0:
            return -log_pt.mean()  # exactly cross-entropy
        # The clamp keeps the gradient of (1 - p_t)^gamma finite when p_t rounds to 1
        # and gamma < 1; the loss there is ~0 either way.
        modulator = (-torch.expm1(log_pt)).clamp_min(1e-12) ** self.gamma
        return -(modulator * log_pt).mean()


@register_loss("focal")
def focal(class_counts: Sequence[int], gamma: float = 1.0) -> LossFunction:
    _check_gamma(gamma)
    return SoftmaxFocal(gamma)


CB_HEADS = ("softmax", "sigmoid", "focal")


class ClassBalanced(LossFunction):
    """Cui et al. (CVPR 2019): each example weighted by its true class's CB weight.

    Reductions follow the paper's per-example loss averaged over the batch:
    softmax = mean_i w_{y_i} CE_i (not PyTorch's sum(w CE) / sum(w));
    sigmoid = mean_i w_{y_i} sum_c BCE_ic (the paper sums over classes);
    focal = the reference focal_loss, sum / sum(labels) = the same normalization, so
    focal with gamma 0 equals sigmoid.
    """

    def __init__(self, weights: torch.Tensor, head: str, gamma: float) -> None:
        super().__init__()
        self.register_buffer("weights", weights)
        self.head = head
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        per_example = self.weights.to(logits.dtype)[targets]
        if self.head == "softmax":
            return (per_example * F.cross_entropy(logits, targets, reduction="none")).mean()
        one_hot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
        gamma = 0.0 if self.head == "sigmoid" else self.gamma
        return sigmoid_focal_loss(logits, one_hot, per_example[:, None], gamma)


@register_loss("cb")
def cb(
    class_counts: Sequence[int], beta: float = 0.9999, head: str = "softmax", gamma: float = 1.0
) -> LossFunction:
    require(head in CB_HEADS, f"head must be one of {', '.join(CB_HEADS)}; got {head!r}")
    _check_beta("beta", beta)
    _check_gamma(gamma)
    return ClassBalanced(class_balanced_weights(class_counts, beta), head, gamma)


class LDAM(LossFunction):
    """Cao et al. (NeurIPS 2019), following their LDAMLoss and DRW schedule.

    The true-class logit is lowered by m_y = C / n_y^(1/4) (largest margin = max_margin),
    logits are multiplied by ``scale`` and fed to CE. Under DRW the CE is weighted by
    class-balanced weights from ``drw_epoch`` on, with PyTorch's weighted mean as in their
    code; before that the weights are all 1 (their beta = 0). ``scale`` = 30 assumes
    cosine logits in [-1, 1] (resnet32 with normed_head=True).
    """

    def __init__(
        self, margins: torch.Tensor, scale: float, drw_weights: torch.Tensor, drw_epoch: int | None
    ) -> None:
        super().__init__()
        self.register_buffer("margins", margins)
        self.register_buffer("drw_weights", drw_weights)
        self.register_buffer("weight", torch.ones_like(drw_weights))
        self.scale = scale
        self.drw_epoch = drw_epoch

    def set_epoch(self, epoch: int) -> None:
        deferred = self.drw_epoch is not None and epoch >= self.drw_epoch
        # In place, so the buffer keeps its device.
        self.weight.copy_(self.drw_weights if deferred else torch.ones_like(self.weight))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
        adjusted = logits - one_hot * self.margins.to(logits.dtype)
        return F.cross_entropy(self.scale * adjusted, targets, weight=self.weight.to(logits.dtype))


def ldam_margins(class_counts: Sequence[int], max_margin: float) -> torch.Tensor:
    """m_c proportional to n_c^(-1/4), scaled so the largest is ``max_margin``."""
    counts = torch.tensor(check_class_counts(class_counts), dtype=torch.float64)
    present = counts > 0
    raw = torch.where(present, counts.clamp_min(1).pow(-0.25), 0.0)
    # Empty classes take the largest margin, as the rarest class would; they never occur
    # as targets, so this only keeps the margins finite.
    raw = torch.where(present, raw, raw.max())
    margins = raw * (max_margin / raw.max())
    return margins.float()


@register_loss("ldam")
def ldam(
    class_counts: Sequence[int],
    max_margin: float = 0.5,
    scale: float = 30.0,
    drw_epoch: int | None = None,
    drw_beta: float = 0.9999,
) -> LossFunction:
    require(max_margin > 0, f"max_margin must be > 0, got {max_margin}")
    require(scale > 0, f"scale must be > 0, got {scale}")
    _check_beta("drw_beta", drw_beta)
    if drw_epoch is not None:
        require(
            not isinstance(drw_epoch, bool)
            and isinstance(drw_epoch, int | float)
            and float(drw_epoch).is_integer()
            and drw_epoch >= 0,
            f"drw_epoch must be an epoch >= 0 or None (never), got {drw_epoch!r}",
        )
        drw_epoch = int(drw_epoch)
    loss = LDAM(
        ldam_margins(class_counts, max_margin),
        scale,
        class_balanced_weights(class_counts, drw_beta),
        drw_epoch,
    )
    loss.set_epoch(0)
    return loss


class LogitAdjusted(LossFunction):
    """CE on logits + tau * log(prior): Menon et al. (ICLR 2021); tau = 1 is Ren et al."""

    def __init__(self, adjustment: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("adjustment", adjustment)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits + self.adjustment.to(logits.dtype), targets)


@register_loss("logit-adjusted")
def logit_adjusted(class_counts: Sequence[int], tau: float = 1.0) -> LossFunction:
    require(math.isfinite(tau), f"tau must be a finite number, got {tau}")
    return LogitAdjusted(tau * log_prior(class_counts))


@register_loss("balanced-softmax")
def balanced_softmax(class_counts: Sequence[int]) -> LossFunction:
    """Ren et al. (NeurIPS 2020): softmax over logits + log(prior)."""
    return LogitAdjusted(log_prior(class_counts))


# Image losses (l2, l1, annealed l0) register themselves on import.
from harness import pixel_losses  # noqa: E402, F401
