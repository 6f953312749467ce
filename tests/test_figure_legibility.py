"""Issue 33, figures legible at page size: the denoising sample grid and the imbalance
per-class figure, drawn from the committed mini records, are as wide as the paper's line
(so their fonts print at their own size), label in 9 pt or more, show pixels unblurred,
and put no legend or second coloured band over the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.records import load_records
from harness.report.records_frame import per_class_frame
from harness.report.table_layout import LINE_PT

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _records(study: str) -> list:
    folder = RESULTS / study / "mini" / "records"
    if not folder.is_dir():
        pytest.skip(f"no committed {study} mini records")
    return load_records(folder)


def _texts(fig):
    yield from fig.texts
    for ax in fig.axes:
        yield from (ax.title, ax.xaxis.label, ax.yaxis.label)
        yield from ax.get_xticklabels() + ax.get_yticklabels()


def test_sample_grid_prints_large_unblurred_tiles_with_9pt_labels():
    from studies._denoising_figures import sample_grid
    from studies.denoising import _frame, noise_labels

    records = _records("denoising")
    plot = sample_grid(records, noise_labels(_frame(records)))
    assert plot is not None
    fig = plot.figure
    width_in, height_in = fig.get_size_inches()
    assert width_in == pytest.approx(LINE_PT / 72.0, rel=0.02)
    assert width_in >= 1.5 * height_in  # so the report prints it at the full line width
    sizes = [t.get_fontsize() for t in _texts(fig) if t.get_text()]
    assert sizes and min(sizes) >= 9
    images = [image for ax in fig.axes for image in ax.get_images()]
    assert images and {image.get_interpolation() for image in images} == {"nearest"}
    for ax in fig.axes:  # each 32-px test image prints at least 0.6 inch wide
        pixels = ax.get_images()[0].get_array().shape[1]
        assert ax.get_position().width * width_in / (pixels / 32) >= 0.6


def test_per_class_figure_is_small_multiples_without_a_legend():
    from studies._imbalance_figures import per_class_panels

    long = per_class_frame([r for r in _records("imbalance") if r.get("stage") == "main"])
    long["train images"] = long["train_count"]
    long["loss"] = long["label"]
    top = long[long["config.imbalance_factor"] == long["config.imbalance_factor"].max()]
    plot = per_class_panels(top, "title")
    fig = plot.figure
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == top["loss"].nunique() - 1  # CE is the reference in each panel
    assert all(ax.get_legend() is None for ax in panels)
    assert all(len(ax.collections) <= 2 for ax in panels)  # its band and CE's grey one
    assert fig.get_size_inches()[0] == pytest.approx(LINE_PT / 72.0, rel=0.02)
    assert "mean over" in plot.caption and "sd" in plot.caption
