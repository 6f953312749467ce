"""Image-restoration metrics."""

from __future__ import annotations

import torch


def psnr(
    output: torch.Tensor, clean: torch.Tensor, max_value: float = 1.0, quantize: bool = False
) -> torch.Tensor:
    """Per-image PSNR in dB of ``output`` against ``clean``, both (N, C, H, W):
    10 log10(max_value^2 / MSE), the MSE taken over all channels and pixels of an image.

    ``output`` is clamped to [0, max_value] first, as is customary when reporting (a
    displayed or saved image cannot leave that range); ``clean`` is used as given.
    ``quantize`` rounds both images to 8-bit levels (steps of max_value / 255) first, as
    Noise2Noise's validation does (``util.clip_to_uint8`` on prediction and original);
    for a clean image decoded from uint8 that changes only the output. Computed in
    float64; a perfect match gives +inf.
    """
    if output.shape != clean.shape or output.ndim != 4:
        raise ValueError(
            f"output {tuple(output.shape)} and clean {tuple(clean.shape)} must both be "
            "(N, C, H, W) of one shape"
        )
    if max_value <= 0:
        raise ValueError(f"max_value must be > 0, got {max_value}")
    out = output.detach().double().clamp(0.0, max_value)
    ref = clean.detach().double()
    peak = float(max_value)
    if quantize:
        # Compare integer levels, so equal 8-bit images give exactly +inf.
        out = torch.round(out * (255.0 / max_value))
        ref = torch.round(ref.clamp(0.0, max_value) * (255.0 / max_value))
        peak = 255.0
    mse = (out - ref).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(peak**2 / mse)
