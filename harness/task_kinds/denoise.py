"""The denoise kind: a noisy image in, the clean image out; scored by PSNR. Its options
(what they do is described with the training side, ``harness.tasks.denoise``): ``noise``,
``blind``, ``level``, ``target``, ``eval_photos`` and ``samples``."""

from __future__ import annotations

from typing import Any

from harness.data.noise import check_noise
from harness.errors import require
from harness.task_kinds.kind import TaskKind, register_task_kind

TARGETS = ("clean", "noisy")


@register_task_kind("denoise")
class DenoiseKind(TaskKind):
    output = "image"
    metric = "test_psnr"
    mode = "max"
    selection_metric = "val_psnr"
    metrics = ("train_loss", "val_loss", "val_psnr", "test_loss", "test_psnr", "input_psnr",
               "psnr_gain", "photos_psnr", "photos_input_psnr")
    default_model = "unet"
    default_loss = "l2"

    # The options (task.<name>): see harness.tasks.denoise.
    noise: str = "gaussian"
    blind: bool = False
    level: float | None = None
    target: str = "noisy"
    eval_photos: bool = True
    samples: int = 4

    @classmethod
    def check(cls, config: Any) -> None:
        options = config.resolved_options("task")
        check_noise(options["noise"], bool(options["blind"]), options["level"])
        target = options["target"]
        require(target in TARGETS, f"task.target must be one of {', '.join(TARGETS)}; got {target!r}")
        require(int(options["samples"]) >= 0, "task.samples must be >= 0")

    @classmethod
    def model_io(
        cls, config: Any, image_shape: tuple[int, int, int], num_classes: int
    ) -> tuple[int, tuple[int, int, int]]:
        return image_shape[0], image_shape

    @classmethod
    def finalize(cls, final: dict[str, Any]) -> dict[str, Any]:
        if "test_psnr" in final and "input_psnr" in final:
            final["psnr_gain"] = final["test_psnr"] - final["input_psnr"]
        return final
