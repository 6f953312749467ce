"""Synthetic corruptions of Noise2Noise (Lehtinen et al., ICML 2018), on [0, 1] pixels.

Images are float tensors (N, C, H, W) in [0, 1] on any device. Every draw comes from the
``torch.Generator`` passed in, never from the global RNG, so a seeded generator reproduces
a run. The draws are made on the generator's device and moved to the images': the harness
passes CPU generators, so a CPU and a GPU trial draw the same noise; two calls with one generator are independent draws,
which is how a Noise2Noise target is made (a second, independent corruption of the same
clean image, never the input's own noise).

What follows NVlabs/noise2noise (train.py ``AugmentGaussian`` / ``AugmentPoisson``; their
pixels are in [-0.5, 0.5], ours in [0, 1], so their ``x + 0.5`` is our ``x``):

- ``gaussian``: x + sigma * N(0, 1); blind sigma ~ U[0, 50/255] per image (one sigma for
  all channels and pixels of an image), validation sigma 25/255. Not clipped: N2N clips
  neither inputs nor targets, and clipping would bias a noisy target's mean near 0 and 1
  (the L2 minimizer would no longer be the clean image).
- ``poisson``: Poisson(lambda * x) / lambda, so mean x and variance x / lambda; blind
  lambda ~ U[0.001, 50] per image, validation lambda 30. Not clipped above; >= 0 by
  construction.

The other two are in the paper only (no public code):

- ``bernoulli``: multiplicative Bernoulli noise; each pixel is zeroed with probability p,
  all its channels together (the paper's "random mask m that is 1 for valid pixels and 0
  for zeroed/missing pixels", after the Deep Image Prior inpainting masks, which are per
  pixel). Blind p ~ U[0, 0.95], validation p = 0.5. N2N excludes a target's missing
  pixels from the loss, since an unmasked L2 would learn E[target] = (1 - p) x;
  ``add_noise_masked`` returns that mask.
- ``impulse``: random-valued impulse noise; each pixel, with probability p, is replaced by a
  colour drawn uniformly from [0, 1]^C (channels drawn independently), else kept. Blind
  p ~ U[0, 0.95], validation p = 0.7 (as Noise2Noise's reimplementations validate). The
  clean value is the mode of the per-pixel distribution, hence N2N's annealed L0 loss. Its
  mean (1 - p) x + p/2 is biased for every clean value but 1/2; its median is unbiased only
  for clean values in [(p - 1/2)/p, 1/(2p)] (``impulse_median_unbiased``), all of [0, 1]
  when p <= 1/2: at p = 0.5 L1 would recover the clean image exactly, at 0.7 it cannot for
  dark and bright pixels. The learner does not know which pixels were replaced, so the mask
  of ``add_noise_masked`` is all ones here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from harness.data.draws import draw_on, to_device
from harness.errors import require

NOISE_MODELS = ("gaussian", "poisson", "bernoulli", "impulse")

# Fixed levels for validation (and for fixed-level training when no level is given).
VALIDATION_LEVEL: dict[str, float] = {
    "gaussian": 25.0 / 255.0,  # sigma
    "poisson": 30.0,  # lambda
    "bernoulli": 0.5,  # drop probability p
    "impulse": 0.7,  # replacement probability p: where the median, too, is biased
}

# Blind training draws one level per image, uniformly from [low, high].
BLIND_RANGE: dict[str, tuple[float, float]] = {
    "gaussian": (0.0, 50.0 / 255.0),
    "poisson": (0.001, 50.0),
    "bernoulli": (0.0, 0.95),
    "impulse": (0.0, 0.95),
}

_LEVEL_NAME = {"gaussian": "sigma", "poisson": "lambda", "bernoulli": "p", "impulse": "p"}


def check_noise(model: str, blind: bool, level: float | None) -> None:
    """Raise ConfigError unless (model, blind, level) describes a noise model.

    Valid levels: gaussian sigma in (0, 1]; poisson lambda > 0 (finite); bernoulli and
    impulse p in [0, 1). A blind model draws its own level, so ``level`` must be None.
    """
    require(
        model in NOISE_MODELS,
        f"noise model must be one of {', '.join(NOISE_MODELS)}; got {model!r}",
    )
    require(isinstance(blind, bool), f"blind must be true or false, got {blind!r}")
    if level is None:
        return
    name = _LEVEL_NAME[model]
    require(
        not blind,
        f"blind {model} noise draws {name} per image from U{list(BLIND_RANGE[model])}; "
        f"give no level, or set blind=false to use {name}={level}",
    )
    require(
        not isinstance(level, bool) and isinstance(level, int | float) and math.isfinite(level),
        f"{model} noise level ({name}) must be a finite number, got {level!r}",
    )
    if model == "gaussian":
        require(
            0 < level <= 1, f"gaussian sigma must be in (0, 1] (pixels are in [0, 1]), got {level}"
        )
    elif model == "poisson":
        require(level > 0, f"poisson lambda must be > 0, got {level}")
    else:
        require(0 <= level < 1, f"{model} p must be in [0, 1), got {level}")


def impulse_median_unbiased(p: float) -> tuple[float, float]:
    """The clean values x in [0, 1] whose noisy target under random-valued impulse noise at
    replacement probability p keeps x as its median. The target's CDF is p y + (1 - p) [y >= x],
    so x is a median when p x <= 1/2 <= p x + 1 - p."""
    if p <= 0.5:
        return 0.0, 1.0
    return (p - 0.5) / p, 0.5 / p


@dataclass(frozen=True)
class NoiseSpec:
    """A noise model; ``blind`` draws a level per image, else ``level`` (None: the
    validation level) is used for every image."""

    model: str
    blind: bool = False
    level: float | None = None

    def __post_init__(self) -> None:
        check_noise(self.model, self.blind, self.level)

    @property
    def fixed_level(self) -> float:
        """The level of a fixed (non-blind) spec."""
        if self.blind:
            raise ValueError(f"blind {self.model} noise has no fixed level")
        return VALIDATION_LEVEL[self.model] if self.level is None else float(self.level)


def validation_spec(model: str) -> NoiseSpec:
    """The fixed-level spec N2N validates ``model`` with (VALIDATION_LEVEL)."""
    return NoiseSpec(model, blind=False, level=VALIDATION_LEVEL[model])


def add_noise(clean: torch.Tensor, spec: NoiseSpec, generator: torch.Generator) -> torch.Tensor:
    """A corrupted copy of ``clean`` (N, C, H, W) in [0, 1]; see the module docstring."""
    return add_noise_masked(clean, spec, generator)[0]


def add_noise_masked(
    clean: torch.Tensor, spec: NoiseSpec, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy, valid): ``valid`` is a (N, 1, H, W) mask of the clean image's dtype, 0 where a
    pixel is known to be missing (dropped by ``bernoulli``), 1 elsewhere; Noise2Noise
    leaves the 0 pixels of a noisy target out of the loss."""
    _check_images(clean, generator)
    n = clean.shape[0]
    valid = torch.ones((n, 1, *clean.shape[2:]), dtype=clean.dtype, device=clean.device)
    level = _levels(spec, n, clean, generator)
    if spec.model == "gaussian":
        noise = to_device(draw_on(generator, torch.randn, clean.shape, dtype=clean.dtype),
                          clean.device)
        return clean + level * noise, valid
    if spec.model == "poisson":
        # torch.poisson wants float32 or wider; the rate is computed there too so a
        # half-precision image does not round lambda * x.
        rate = level.float() * clean.float()
        noisy = to_device(torch.poisson(rate.to(generator.device), generator=generator),
                          clean.device)
        noisy = noisy / level.float()
        return noisy.to(clean.dtype), valid
    # One uniform per pixel (not per channel) decides both masks: a pixel is dropped or
    # replaced whole.
    u = to_device(draw_on(generator, torch.rand, valid.shape, dtype=clean.dtype), clean.device)
    hit = u < level
    if spec.model == "bernoulli":
        valid = (~hit).to(clean.dtype)
        return clean * valid, valid
    colours = to_device(draw_on(generator, torch.rand, clean.shape, dtype=clean.dtype),
                        clean.device)
    return torch.where(hit, colours, clean), valid


def _check_images(clean: torch.Tensor, generator: torch.Generator) -> None:
    if clean.ndim != 4 or not clean.is_floating_point():
        raise ValueError(
            f"images must be a float (N, C, H, W) tensor, got {clean.dtype} {tuple(clean.shape)}"
        )
    if generator.device.type not in ("cpu", clean.device.type):
        raise ValueError(
            f"the generator is on {generator.device}, the images on {clean.device}; "
            "create the generator on the CPU (the harness's choice) or on the images' device"
        )


def _levels(
    spec: NoiseSpec, n: int, clean: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Per-image levels shaped (N, 1, 1, 1) for broadcasting."""
    shape = (n, 1, 1, 1)
    if not spec.blind:
        return torch.full(shape, spec.fixed_level, dtype=clean.dtype, device=clean.device)
    low, high = BLIND_RANGE[spec.model]
    # Drawn in float32 so the 0.001 floor of lambda survives a half-precision image.
    u = to_device(draw_on(generator, torch.rand, shape, dtype=torch.float32), clean.device)
    return (low + (high - low) * u).to(clean.dtype)
