"""The denoising study's figures: test PSNR against epoch, one panel per noise model, and
the grid of test images (clean, noisy input, clean- and noisy-target outputs).

A helper of studies/denoising.py (the leading underscore keeps study discovery from
treating it as a study); it never imports the study file: each figure is handed the noise
models' labels, in the order the study shows them.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

from harness.records import finished, is_finished, resolved_config
from harness.report import Plot, history_frame, line_with_bands
from harness.report.figures import new_figure, report_style


def psnr_curves(records: list[dict[str, Any]], caption_data: str,
                names: Mapping[str, str]) -> list[Plot]:
    """One figure, a panel per noise model: test PSNR against epoch, one line per target
    and loss (mean ± sd over seeds); ``names``: each noise model's label, in panel order."""
    history = history_frame(finished(records))
    if history.empty or "test_psnr" not in history.columns:
        return []
    history["noise"] = history["config.task.noise"]
    history["run"] = history["config.task.target"] + " targets, " + history["config.loss"]
    noises = [n for n in names if n in set(history["noise"])]
    columns = min(2, len(noises))
    rows = -(-len(noises) // columns)
    fig, _ = new_figure((4.2 * columns + 1.6, 3.0 * rows))
    fig.clear()
    with report_style():
        axes = fig.subplots(rows, columns, squeeze=False).flatten()
    for index, noise in enumerate(noises):
        line_with_bands(history[history["noise"] == noise], "epoch", "test_psnr", hue="run",
                        xlabel="epoch", ylabel="test PSNR (dB)", title=names[noise],
                        bounds=(0.0, None), ax=axes[index],
                        legend=index == len(noises) - 1 or len(noises) == 1)
    for unused in axes[len(noises):]:
        unused.set_visible(False)
    fig.suptitle(caption_data)
    return [Plot(
        "psnr_vs_epoch", fig,
        "Test PSNR against training epoch, one panel per noise model (its test level), one "
        "line per target and loss: mean ± sd over seeds.",
    )]


def decode_strip(text: str):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


def sample_grid(records: list[dict[str, Any]], names: Mapping[str, str]) -> Plot | None:
    """Rows: noise models; columns: clean, noisy input, the clean-target output and the
    noisy-target output (seed 0, L2), from the strips each record keeps; ``names``: each
    noise model's label, in row order."""
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        config = resolved_config(record)
        if (is_finished(record) and record.get("samples_png")
                and config["loss"] == "l2" and config["repeat"] == 0):
            chosen[(config["task.noise"], config["task.target"])] = record
    noises = [n for n in names if (n, "clean") in chosen and (n, "noisy") in chosen]
    if not noises:
        return None
    columns = ("clean", "noisy input", "clean-target output", "noisy-target output")
    first = decode_strip(chosen[(noises[0], "clean")]["samples_png"])
    aspect = first.shape[1] / (first.shape[0] / 3)  # one row of the strip: width / height
    fig, axes = new_figure((min(12.0, 1.6 * aspect * 4), 0.6 + 1.7 * len(noises)))
    fig.delaxes(axes)
    with report_style():
        grid = fig.subplots(len(noises), 4, squeeze=False)
        for row, noise in enumerate(noises):
            clean_run = decode_strip(chosen[(noise, "clean")]["samples_png"])
            noisy_run = decode_strip(chosen[(noise, "noisy")]["samples_png"])
            third = clean_run.shape[0] // 3
            panels = (clean_run[:third], clean_run[third:2 * third], clean_run[2 * third:],
                      noisy_run[2 * third:])
            for col, panel in enumerate(panels):
                ax = grid[row][col]
                ax.imshow(panel, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if row == 0:
                    ax.set_title(columns[col], fontsize=8)
                if col == 0:
                    ax.set_ylabel(names[noise], fontsize=8)
    return Plot("samples", fig, "Test images, one row per noise model: clean, noisy input, and "
                "the outputs of the U-Nets trained with L2 on clean and on noisy targets (seed 0).")
