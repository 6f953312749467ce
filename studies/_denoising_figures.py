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

from matplotlib.figure import Figure

from harness.records import finished, is_finished, resolved_config
from harness.report import Plot, history_frame, line_with_bands
from harness.report.figures import new_figure, report_style
from harness.report.table_layout import LINE_PT


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


SAMPLE_IMAGES = 2  # test images per cell: two 32-px tiles print ~0.65 in wide each
PAGE_WIDTH_IN = LINE_PT / 72.0  # the report's \linewidth (472 pt), so fonts print at their own size
LABEL_WIDTH_IN = 0.85  # the left margin that holds each row's noise model, horizontal


def sample_grid(records: list[dict[str, Any]], names: Mapping[str, str]) -> Plot | None:
    """Rows: noise models; columns: clean, noisy input, the clean-target output and the
    noisy-target output (seed 0, L2), the first SAMPLE_IMAGES test images of the strips each
    record keeps, drawn pixel for pixel (no interpolation) at the width the paper prints;
    ``names``: each noise model's label, in row order."""
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        config = resolved_config(record)
        if (is_finished(record) and record.get("samples_png")
                and config["loss"] == "l2" and config["repeat"] == 0):
            chosen[(config["task.noise"], config["task.target"])] = record
    noises = [n for n in names if (n, "clean") in chosen and (n, "noisy") in chosen]
    if not noises:
        return None
    columns = ("clean", "noisy input", "clean-target\noutput", "noisy-target\noutput")
    first = decode_strip(chosen[(noises[0], "clean")]["samples_png"])
    tile = first.shape[0] // 3  # the strip: three rows (clean, noisy, output) of square tiles
    shown = min(SAMPLE_IMAGES, first.shape[1] // tile)
    gap_in = 0.06
    cell_w = (PAGE_WIDTH_IN - LABEL_WIDTH_IN - gap_in * 3) / 4
    cell_h = cell_w * tile / (tile * shown)
    header_in = 0.42
    height = header_in + len(noises) * cell_h + (len(noises) - 1) * gap_in + 0.05
    fig = Figure(figsize=(PAGE_WIDTH_IN, height))  # placed by hand: exact, tight spacing
    with report_style():
        for row, noise in enumerate(noises):
            clean_run = decode_strip(chosen[(noise, "clean")]["samples_png"])
            noisy_run = decode_strip(chosen[(noise, "noisy")]["samples_png"])
            width = tile * shown
            panels = (clean_run[:tile, :width], clean_run[tile:2 * tile, :width],
                      clean_run[2 * tile:3 * tile, :width], noisy_run[2 * tile:3 * tile, :width])
            bottom = height - header_in - (row + 1) * cell_h - row * gap_in
            for col, panel in enumerate(panels):
                left = LABEL_WIDTH_IN + col * (cell_w + gap_in)
                ax = fig.add_axes((left / PAGE_WIDTH_IN, bottom / height,
                                   cell_w / PAGE_WIDTH_IN, cell_h / height))
                ax.imshow(panel, interpolation="nearest", aspect="auto")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if row == 0:
                    ax.set_title(columns[col], fontsize=9, pad=3)
            fig.text(0.04 / PAGE_WIDTH_IN, (bottom + cell_h / 2) / height,
                     _two_lines(names[noise]), fontsize=9, ha="left", va="center")
    return Plot("samples", fig, f"The first {shown} test images, one row per noise model: "
                "clean, noisy input, and the outputs of the U-Nets trained with L2 on clean and "
                "on noisy targets (seed 0), drawn pixel for pixel.")


def _two_lines(label: str) -> str:
    """``Gaussian (sigma 25)`` as two lines, the name over its level, to fit the margin."""
    name, _, level = label.partition(" (")
    return f"{name}\n({level}" if level else name
