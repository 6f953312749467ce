"""Image losses (``output="image"``): a restored image against a clean or noisy target.

``l2`` (mean squared error) learns the target's mean, ``l1`` its median and ``l0``
(Noise2Noise's annealed loss) approaches its mode: Lehtinen et al. (ICML 2018) use L2 for
Gaussian, Poisson and Bernoulli noise, L1 for text overlays and the annealed L0,
(|f(x) - y| + 1e-8)^gamma with gamma falling linearly from 2 to 0 over training, for
random-valued impulse noise. Their public code has only the L2 case; the L0 follows the
paper's formula.

Every loss returns the mean over all elements. ``forward`` also takes an optional
``valid`` mask broadcastable to the images (e.g. (N, 1, H, W) from
``harness.data.noise.add_noise_masked``): then the mean is over the valid elements only,
which is how N2N leaves a Bernoulli target's missing pixels out of the loss.
"""

from __future__ import annotations

import torch

from harness.errors import require
from harness.loss_registry import LossFunction, register_loss


def _reduce(per_element: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if valid is None:
        return per_element.mean()
    weights = valid.to(per_element.dtype).expand_as(per_element)
    # clamp: a batch with no valid element contributes 0 rather than NaN.
    return (per_element * weights).sum() / weights.sum().clamp_min(1.0)


class PixelLoss(LossFunction):
    """Mean over elements of ``per_element(outputs - targets)``."""

    def per_element(self, residual: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, outputs: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        if outputs.shape != targets.shape:
            raise ValueError(
                f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in shape"
            )
        return _reduce(self.per_element(outputs - targets.to(outputs.dtype)), valid)


class SquaredError(PixelLoss):
    def per_element(self, residual: torch.Tensor) -> torch.Tensor:
        return residual.square()


class AbsoluteError(PixelLoss):
    def per_element(self, residual: torch.Tensor) -> torch.Tensor:
        return residual.abs()


class AnnealedL0(PixelLoss):
    """(|residual| + eps)^gamma with gamma = gamma_start * (1 - fraction of training done).

    gamma lives in a buffer, updated in place by ``set_progress``: it moves with the loss
    to the device, and a compiled loss sees a tensor, not a new Python constant per step.
    """

    def __init__(self, gamma_start: float, eps: float) -> None:
        super().__init__()
        self.gamma_start = gamma_start
        self.eps = eps
        self.register_buffer("gamma", torch.tensor(gamma_start, dtype=torch.float32))

    def set_progress(self, fraction: float) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"the fraction of training done must be in [0, 1], got {fraction}")
        self.gamma.fill_(self.gamma_start * (1.0 - fraction))

    def per_element(self, residual: torch.Tensor) -> torch.Tensor:
        return (residual.abs() + self.eps).pow(self.gamma.to(residual.dtype))


@register_loss("l2", output="image")
def l2() -> LossFunction:
    """Mean squared error: the target's mean (Gaussian, Poisson, Bernoulli noise)."""
    return SquaredError()


@register_loss("l1", output="image")
def l1() -> LossFunction:
    """Mean absolute error: the target's median (N2N's text removal)."""
    return AbsoluteError()


@register_loss("l0", output="image")
def l0(gamma_start: float = 2.0, eps: float = 1e-8) -> LossFunction:
    """N2N's annealed L0 for impulse noise: (|y - x| + eps)^gamma, gamma from
    ``gamma_start`` (2: squared error) falling linearly to 0 (counting loss) over training."""
    require(gamma_start > 0, f"gamma_start must be > 0, got {gamma_start}")
    # eps > 0 keeps the gradient finite at a zero residual once gamma < 1.
    require(eps > 0, f"eps must be > 0, got {eps}")
    return AnnealedL0(float(gamma_start), float(eps))
