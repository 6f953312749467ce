"""Denoising (Noise2Noise, Lehtinen et al. 2018): a noisy image in, the clean image out.

The dataset's images are the clean images. Each training batch draws, from a CPU
generator seeded by (trial seed, epoch), so every device draws the same, a noisy input
and a target: the clean
image (``target=clean``) or an independent second draw of the same noise on the same
clean image (``target=noisy``, never the input's own noise; a paired config draws it from
a stream of its own, so both targets' arms see the same inputs). Images enter the network
shifted to [-0.5, 0.5], as in Noise2Noise; the network's output is the prediction
shifted the same way.

Evaluation uses the fixed validation level of the noise model (sigma 25/255, lambda 30,
p 0.5), drawn from a generator seeded by the trial's data seed alone
(``TrialConfig.trial_data_seed``), so every trial of a study and repeat sees the same noisy
test images and clean- and noisy-target trials compare like for like.
Metrics: ``test_psnr`` (mean PSNR over the test images, outputs and references rounded to
8 bits as Noise2Noise reports), ``input_psnr`` (the noisy inputs themselves: the baseline)
and, unless the dataset is the photographs themselves, ``photos_psnr`` on scikit-learn's
two bundled photographs evaluated whole (reflect-padded to the network's multiple, then
cropped back).

With a validation split (``val_size`` clean images held out of the training split), every
epoch also scores its own fixed noisy copy (drawn from ``data_seed`` on another stream
than the test copy): ``val_psnr`` and ``val_loss``.

Options: ``noise`` (gaussian, poisson, bernoulli, impulse), ``blind`` (training levels
drawn per image from the noise model's range), ``level`` (a fixed training level; none:
the validation level), ``target`` (clean, noisy), ``eval_photos``, ``samples`` (test
images kept in the record as PNG strips: clean, noisy input, output).
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.batching import epoch_seed, random_flip
from harness.data.draws import to_device
from harness.data.noise import NoiseSpec, add_noise_masked, validation_spec
from harness.image_metrics import psnr
from harness.losses import LossFunction, create_loss
from harness.task_kinds.denoise import DenoiseKind
from harness.tasks.base import Autocast, Evaluation, Meter, Task, register_task
from harness.trial_data import prepare_trial_data

SHIFT = 0.5  # Noise2Noise feeds and predicts images in [-0.5, 0.5]


class MaskedTargetLoss(LossFunction):
    """Feeds a pixel loss the (target, valid) pair a task's batches carry: Noise2Noise
    leaves the pixels a Bernoulli-noisy target lacks out of the loss."""

    def __init__(self, loss: LossFunction) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, outputs: torch.Tensor, targets: Any) -> torch.Tensor:
        target, valid = targets
        return self.loss(outputs, target, valid)

    def set_epoch(self, epoch: int) -> None:
        self.loss.set_epoch(epoch)

    def set_progress(self, fraction: float) -> None:
        self.loss.set_progress(fraction)


class LossMeter(Meter):
    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device)
        self.seen = 0

    def update(self, outputs: torch.Tensor, targets: Any, loss: torch.Tensor) -> None:
        self.loss_sum += loss * outputs.shape[0]
        self.seen += outputs.shape[0]

    def result(self) -> dict[str, float]:
        return {"train_loss": self.loss_sum.item() / max(1, self.seen)}

    @property
    def count(self) -> int:
        return self.seen


def _stream(*parts: Any) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def png_strip(rows: list[torch.Tensor]) -> str:
    """Images (each (N, C, H, W) in [0, 1]) as one base64 PNG: one row per tensor."""
    from PIL import Image

    grid = torch.cat([torch.cat(list(r.clamp(0, 1)), dim=2) for r in rows], dim=1)
    array = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    if array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@register_task(DenoiseKind)
class Denoise(Task):
    def __init__(self, config: Any, dataset: Any, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        noise = self.options["noise"]
        self.train_spec = NoiseSpec(noise, self.options["blind"], self.options["level"])
        self.test_spec = validation_spec(noise)
        self.target = self.options["target"]
        self.samples = self.options["samples"]
        self.seed = config.derived_seed()
        data = prepare_trial_data(dataset, config)
        self.data = data
        self.num_outputs, self.in_shape = self.kind.model_io(config, dataset.image_shape, 0)
        self.channels_last = config.channels_last and device.type == "cuda"
        self.train_images = data.train.images.to(device)
        self.clean_test = data.test.images.to(device).float() / 255.0
        # One fixed noisy test set per (data seed, noise model): every trial sees it.
        generator = torch.Generator().manual_seed(
            _stream("denoise-test", config.trial_data_seed(), noise)
        )
        self.noisy_test = add_noise_masked(self.clean_test, self.test_spec, generator)[0]
        self.clean_val = self.noisy_val = None
        if data.val is not None:
            self.clean_val = data.val.images.to(device).float() / 255.0
            generator = torch.Generator().manual_seed(
                _stream("denoise-validation", config.trial_data_seed(), noise)
            )
            self.noisy_val = add_noise_masked(self.clean_val, self.test_spec, generator)[0]
        self.photos = None
        if self.options["eval_photos"] and dataset.name != "photos":
            self.photos = self._noisy_photos(noise, config.trial_data_seed())

    # ------------------------------------------------------------------ training

    def __len__(self) -> int:
        full, rest = divmod(len(self.train_images), self.config.batch_size)
        return full + (1 if rest else 0)

    def create_loss(self) -> LossFunction:
        loss = create_loss(self.config.loss, **self.config.loss_options)
        return MaskedTargetLoss(loss)

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, Any]]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        # A paired config (common random numbers) draws the noisy target from a stream of
        # its own, so a clean- and a noisy-target arm of one seed see the same order, flips
        # and noisy inputs in every batch, not only the first. An unpaired config keeps
        # drawing the target after the input from one stream, as its records were made.
        target_generator = generator
        if self.config.paired_keys:
            target_generator = torch.Generator().manual_seed(
                _stream("denoise-target", self.seed, epoch))
        order = to_device(torch.randperm(len(self.train_images), generator=generator),
                          self.device)
        size = self.config.batch_size
        for start in range(0, len(order), size):
            clean = self.train_images[order[start : start + size]]
            if self.config.flip:
                clean = random_flip(clean, generator)
            clean = clean.float() / 255.0
            noisy, _ = add_noise_masked(clean, self.train_spec, generator)
            if self.target == "clean":
                target, valid = clean, None
            else:
                target, valid = add_noise_masked(clean, self.train_spec, target_generator)
                if self.train_spec.model != "bernoulli":
                    valid = None  # every pixel of the target is an observation
            yield self._input(noisy), (target - SHIFT, valid)

    def _input(self, noisy: torch.Tensor) -> torch.Tensor:
        x = noisy - SHIFT
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def meter(self) -> Meter:
        return LossMeter(self.device)

    # ------------------------------------------------------------------ evaluation

    def _noisy_photos(self, noise: str, data_seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        from harness.data.photos import PHOTO_NAMES, sample_photos

        photos = sample_photos()
        pairs = []
        for name in PHOTO_NAMES:
            clean = photos[name].to(self.device).float()[None] / 255.0
            generator = torch.Generator().manual_seed(
                _stream("denoise-photo", data_seed, noise, name)
            )
            pairs.append((clean, add_noise_masked(clean, self.test_spec, generator)[0]))
        return pairs

    @torch.no_grad()
    def _predict(self, model: nn.Module, noisy: torch.Tensor, autocast: Autocast) -> torch.Tensor:
        """The model's clean estimate of whole images: reflect-padded to the network's
        multiple (the training patch size's largest power of two) and cropped back."""
        multiple = _multiple(self.in_shape)
        height, width = noisy.shape[-2:]
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        x = noisy - SHIFT
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            out = model(x)
        return out.float()[..., :height, :width] + SHIFT

    @torch.no_grad()
    def _denoise_all(self, noisy: torch.Tensor, model: nn.Module, autocast: Autocast) -> torch.Tensor:
        outputs = []
        for start in range(0, len(noisy), self.config.eval_batch_size):
            outputs.append(self._predict(model, noisy[start : start + self.config.eval_batch_size],
                                         autocast))
        return torch.cat(outputs)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, autocast: Autocast) -> Evaluation:
        was_training = model.training
        model.eval()
        output = self._denoise_all(self.noisy_test, model, autocast)
        metrics = {
            "test_loss": float(F.mse_loss(output, self.clean_test)),
            "test_psnr": float(psnr(output, self.clean_test, quantize=True).mean()),
            "input_psnr": float(psnr(self.noisy_test, self.clean_test, quantize=True).mean()),
        }
        if self.noisy_val is not None:
            val_output = self._denoise_all(self.noisy_val, model, autocast)
            metrics["val_loss"] = float(F.mse_loss(val_output, self.clean_val))
            metrics["val_psnr"] = float(psnr(val_output, self.clean_val, quantize=True).mean())
        if self.photos:
            scores = [psnr(self._predict(model, noisy, autocast), clean, quantize=True)
                      for clean, noisy in self.photos]
            inputs = [psnr(noisy, clean, quantize=True) for clean, noisy in self.photos]
            metrics["photos_psnr"] = float(torch.cat(scores).mean())
            metrics["photos_input_psnr"] = float(torch.cat(inputs).mean())
        model.train(was_training)
        extras: dict[str, Any] = {}
        if self.samples:
            keep = slice(0, self.samples)
            extras["samples_png"] = png_strip(
                [_centre(x[keep]) for x in (self.clean_test, self.noisy_test, output)]
            )
        return Evaluation(metrics, extras)

    def record_fields(self) -> dict[str, Any]:
        return {
            "noise": {
                "model": self.train_spec.model,
                "blind": self.train_spec.blind,
                "train_level": None if self.train_spec.blind else self.train_spec.fixed_level,
                "test_level": self.test_spec.fixed_level,
                "target": self.target,
            },
            "data": {"train_size": len(self.data.train),
                     "val_size": len(self.data.val) if self.data.val is not None else 0,
                     "test_size": len(self.data.test)},
        }


SAMPLE_SIDE = 96  # records keep crops, not whole photographs (a few KB, not megabytes)


def _centre(images: torch.Tensor) -> torch.Tensor:
    height, width = images.shape[-2:]
    top, left = max(0, (height - SAMPLE_SIDE) // 2), max(0, (width - SAMPLE_SIDE) // 2)
    return images[..., top : top + SAMPLE_SIDE, left : left + SAMPLE_SIDE]


def _multiple(in_shape: tuple[int, int, int]) -> int:
    """The largest power of two dividing both sides of the training images: a U-Net
    trained on them pools at most that many times."""
    height, width = in_shape[1:]
    side = height & -height
    return min(side, width & -width)

