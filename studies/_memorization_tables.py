"""The memorization study's tables and figures: Zhang et al.'s models and published Table 1,
the frame the records are read into, Table 1 and the time-to-fit table re-measured, and
Figure 1a-c.

A helper of studies/memorization.py (the leading underscore keeps study discovery from
treating it as a study); it never imports the study file, which imports it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.report import (
    Plot,
    Table,
    completed,
    history_frame,
    line_with_bands,
    mean_sd,
    mean_sd_columns,
    records_frame,
)

# Table 1 of the paper: train / test accuracy (%) on canonical CIFAR-10.
PUBLISHED_TABLE1 = {
    ("inception-small", "crop + wd"): (100.0, 89.05),
    ("inception-small", "crop"): (100.0, 89.31),
    ("inception-small", "wd"): (100.0, 86.03),
    ("inception-small", "none"): (100.0, 85.75),
    ("inception-small", "random labels"): (100.0, 9.78),
    ("inception-small (no BN)", "wd"): (100.0, 83.00),
    ("inception-small (no BN)", "none"): (100.0, 82.00),
    ("inception-small (no BN)", "random labels"): (100.0, 10.12),
    ("alexnet-small", "crop + wd"): (99.90, 81.22),
    ("alexnet-small", "crop"): (99.82, 79.66),
    ("alexnet-small", "wd"): (100.0, 77.36),
    ("alexnet-small", "none"): (100.0, 76.07),
    ("alexnet-small", "random labels"): (99.82, 9.86),
    ("mlp 3x512", "wd"): (100.0, 53.35),
    ("mlp 3x512", "none"): (100.0, 52.39),
    ("mlp 3x512", "random labels"): (100.0, 10.48),
    ("mlp 1x512", "wd"): (99.80, 50.39),
    ("mlp 1x512", "none"): (100.0, 50.51),
    ("mlp 1x512", "random labels"): (99.34, 10.61),
}
# The paper's models, as our registry builds them, and its per-model learning rates.
MODELS = {
    "inception-small": ({"model": "inception-small"}, 0.1),
    "inception-small (no BN)": ({"model": "inception-small", "model.batchnorm": False}, 0.1),
    "alexnet-small": ({"model": "alexnet-small"}, 0.01),
    "mlp 3x512": ({"model": "mlp", "model.hidden": "512,512,512"}, 0.01),
    "mlp 1x512": ({"model": "mlp", "model.hidden": "512"}, 0.01),
}
CORRUPTIONS = ("true labels", "random labels", "shuffled pixels", "random pixels", "gaussian")


# ---------------------------------------------------------------------------- frames


def split_label(frame: pd.DataFrame) -> pd.DataFrame:
    parts = frame["label"].str.split(" | ", n=1, regex=False)
    frame = frame.copy()
    frame["model"] = parts.str[0]
    frame["setting"] = parts.str[1]
    return frame


def finished_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = completed(records_frame(records))
    return split_label(frame) if len(frame) else frame


def table1(frame: pd.DataFrame, caption_data: str) -> Table:
    rows = frame[frame["stage"] == "table1"].copy()
    rows["train (%)"] = rows["final.true_train_acc"] * 100
    rows["test (%)"] = rows["final.test_acc"] * 100
    stats = mean_sd(rows, ["model", "setting"], ["train (%)", "test (%)"])
    # ceiling: a training accuracy below 100% never reads "100.00" (fitted, it would say).
    shown = mean_sd_columns(stats, {"train (%)": "train (%)", "test (%)": "test (%)"},
                            ceiling=100.0)
    order = {name: i for i, name in enumerate(MODELS)}
    # Published figures are CIFAR-10 numbers: set them beside CIFAR-10 runs only.
    if (rows["config.dataset"] == "cifar10").any():
        shown["published train / test (%)"] = [
            "{:.2f} / {:.2f}".format(*PUBLISHED_TABLE1[(m, s)])
            if (m, s) in PUBLISHED_TABLE1 else "—"
            for m, s in zip(shown["model"], shown["setting"], strict=True)
        ]
    shown = shown.sort_values(["model", "setting"], key=lambda s: s.map(order) if s.name == "model" else s)
    shown.index = [f"{m} | {s}" for m, s in zip(shown["model"], shown["setting"], strict=True)]
    return Table(
        "table1", shown,
        f"Train (an evaluation pass over the training split) and test accuracy (%) on "
        f"{caption_data}, mean ± sd over n seeds, beside Zhang et al.'s Table 1 (published, "
        "canonical CIFAR-10). wd: weight decay 5e-4 (the paper does not state its value); "
        "crop: random 28x28 crops in training (centre crops otherwise).",
    )


# The true-label setting each stage's corruptions are compared with.
SLOWDOWN_BASES = {"corruptions": "label noise 0", "table1": "none"}


def slowdown_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials that measure convergence: every corruption trial, and Table 1's unregularized
    true- and random-label trials (all the training images)."""
    corrupt = frame[frame["stage"] == "corruptions"]
    table = frame[(frame["stage"] == "table1") & frame["setting"].isin(["none", "random labels"])]
    return pd.concat([table, corrupt])


def with_ratios(rows: pd.DataFrame, level: int) -> pd.Series:
    """Epochs to reach ``level``% true training accuracy over the same stage, model and
    seed's true-label epochs."""
    column = f"time_to_fit.epoch_{level}"
    fit = rows.set_index(["stage", "model", "setting", "config.repeat"])[column]
    return pd.Series([
        epochs / fit.get((stage, model, SLOWDOWN_BASES[stage], repeat), math.nan)
        for (stage, model, _, repeat), epochs in fit.items()
    ], index=rows.index, dtype=float)


def slowdown_table(frame: pd.DataFrame, caption_data: str) -> Table | None:
    """Time to fit (epochs to 99% and to 100% true training accuracy) per corruption, and
    as a multiple of the true-label time of the same model (same stage, same seed)."""
    rows = slowdown_rows(frame).copy()
    if rows.empty or "time_to_fit.epoch_100" not in rows.columns:
        return None
    rows["training images"] = rows["data.train_size"].map(lambda n: f"{int(n):,}")
    for level in (99, 100):
        rows[f"epochs to {level}%"] = rows[f"time_to_fit.epoch_{level}"]
        rows[f"x true ({level}%)"] = with_ratios(rows, level)
    keys = ["model", "training images", "setting"]
    fitted = rows.groupby(keys)["status"].apply(
        lambda s: f"{int((s == 'fitted').sum())}/{len(s)}")
    values = ["epochs to 99%", "x true (99%)", "epochs to 100%", "x true (100%)"]
    stats = mean_sd(rows, keys, values)
    shown = mean_sd_columns(stats, {name: name for name in values})
    shown["fitted"] = [fitted[tuple(row[k] for k in keys)] for _, row in shown.iterrows()]
    shown.index = [" | ".join(str(row[k]) for k in keys) for _, row in shown.iterrows()]
    return Table(
        "slowdown", shown,
        f"Time to fit on {caption_data}: epochs until the true training accuracy first "
        "reached 99% and 100%, mean ± sd over the seeds that reached it, and that time as a "
        "multiple of the same seed's true-label time in the same stage (all the training "
        "images: Table 1's unregularized rows; the label-corruption subset: Figure 1's); "
        "'fitted' counts the seeds that reached 100% within the epoch budget.",
        best={},
    )


def figure_loss_curves(records: list[dict[str, Any]]) -> Plot | None:
    """Figure 1a: training loss against steps for each corruption."""
    history = history_frame([r for r in records if r.get("stage") == "corruptions"])
    if history.empty:
        return None
    history = split_label(history)
    keep = history["setting"].isin(["label noise 0", "label noise 1", *CORRUPTIONS])
    history = history[keep].copy()
    history["corruption"] = history["setting"].replace(
        {"label noise 0": "true labels", "label noise 1": "random labels"})
    steps = {r["trial_id"]: _steps_per_epoch(r) for r in records if r.get("stage") == "corruptions"}
    history["step"] = history["epoch"] * history["trial_id"].map(steps)
    model = history["model"].iloc[0]
    return Plot("fig1a_loss_vs_steps", line_with_bands(
        history[history["model"] == model], "step", "train_loss", hue="corruption",
        xlabel="training step", ylabel="average training loss", title=model, bounds=(0.0, None)),
        "Figure 1a re-measured: training loss against steps for true labels, random labels, "
        "shuffled pixels, random pixels and Gaussian inputs (mean ± sd over seeds; where no "
        "band shows, the seeds agree to within the line's width).")


def _steps_per_epoch(record: dict[str, Any]) -> float:
    fit = record.get("time_to_fit") or {}
    if fit.get("epoch_100"):
        return fit["step_100"] / fit["epoch_100"]
    size = record["data"]["train_size"]
    batch = record["config"]["batch_size"]
    return -(-size // batch)


def figures_vs_noise(frame: pd.DataFrame) -> list[Plot]:
    """Figure 1b (time to fit) and 1c (test error) against the label-corruption level."""
    rows = frame[(frame["stage"] == "corruptions") & frame["setting"].str.startswith("label noise")].copy()
    if rows.empty:
        return []
    rows["label corruption"] = rows["config.label_noise"]
    rows["test error (%)"] = (1 - rows["final.test_acc"]) * 100
    plots = [Plot("fig1c_test_error_vs_label_noise", line_with_bands(
        rows, "label corruption", "test error (%)", hue="model",
        xlabel="label corruption", ylabel="test error (%)", bounds=(0.0, 100.0)),
        "Figure 1c re-measured: test error against the fraction of corrupted labels.")]
    if "time_to_fit.epoch_100" in rows.columns and rows["time_to_fit.epoch_100"].notna().any():
        rows["epochs to fit"] = rows["time_to_fit.epoch_100"]
        plots.insert(0, Plot("fig1b_time_to_fit_vs_label_noise", line_with_bands(
            rows.dropna(subset=["epochs to fit"]), "label corruption", "epochs to fit",
            hue="model", xlabel="label corruption", ylabel="epochs to 100% train accuracy",
            bounds=(0.0, None)),
            "Figure 1b re-measured: time to fit the training labels against the fraction of "
            "corrupted labels."))
    return plots


def seed_ratios(rows: pd.DataFrame, stage: str, setting: str, level: int = 100) -> pd.Series:
    """Epochs to reach ``level``% under ``setting`` over the same model and seed's
    true-label epochs, within ``stage``."""
    part = slowdown_rows(rows)
    part = part[part["stage"] == stage]
    if part.empty or f"time_to_fit.epoch_{level}" not in part.columns:
        return pd.Series(dtype=float)
    return with_ratios(part, level)[part["setting"] == setting].dropna()


