"""Zhang et al., "Understanding deep learning requires rethinking generalization" (ICLR 2017):
do networks fit random labels and random pixels, and how much slower?

The write-up reviews the paper's randomization tests: networks fit random labels and
random pixels to 100% training accuracy; explicit regularizers (weight decay, data
augmentation) do not explain generalization; training time grows only by a constant
factor with label noise. This study re-runs them: true labels, partially and fully random
labels, shuffled pixels, random pixels and Gaussian inputs, with the paper's small models,
preprocessing (28x28 crops, per-image standardization) and recipe (SGD momentum 0.9, lr
x0.95 per epoch, batch 128); the true training accuracy is measured by an evaluation
pass over the (corrupted) training split, and a trial stops once it has fitted.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.evidence import Claim, Evidence, Gate, judge_seeds, not_measured, verdict_counts
from harness.numbers import fixed_apart
from harness.report import (
    Plot,
    Table,
    completed,
    data_caption,
    format_mean_sd,
    history_frame,
    line_with_bands,
    mean_sd,
    mean_sd_columns,
    records_frame,
)
from harness.space import LABEL_KEY, variants
from harness.study import Narrative, Pilot, Profile, Stage, Study, register_study

# The write-up's claim (Zhang et al.'s), split into what each part measures, with the
# threshold each is judged against, the stage it reads and the regime it means something
# in; `harness run` registers them before any trial. "Fits" means a true training accuracy
# above 99%: the paper calls its own MLP 1x512 at 99.34% fitted. Post hoc for the committed
# mini records (see PILOT): FIT_BAR and SLOWDOWN_BAR were set after those records showed
# 99.77% and 2.09x.
FIT_BAR = 99.0
FITS_RANDOM_LABELS = Claim(
    "fits random labels",
    "the networks run fit fully random labels (Zhang et al.: every network, to 100% "
    "training accuracy)",
    "true training accuracy (%) on random labels, lowest across the models, per seed "
    "(Table 1, all the training images)",
    "greater", FIT_BAR, limits=(0.0, 100.0), stage="table1",
)
FITS_RANDOM_PIXELS = Claim(
    "fits random pixels",
    "networks fit shuffled pixels, random pixels and Gaussian inputs as well",
    "true training accuracy (%) on shuffled pixels, random pixels and Gaussian inputs, "
    "lowest across them and the models, per seed (the corruption subset)",
    "greater", FIT_BAR, limits=(0.0, 100.0), stage="corruptions",
)
# "Only a small constant factor" slower, read two-sided: slower (above 1) and by a small
# factor (under 5); a factor of 1 is no slowdown and does not support it.
SLOWDOWN_BAR = 5.0
CONSTANT_SLOWDOWN = Claim(
    "slower by a small constant factor",
    "fitting random labels takes longer than true labels, but only a small constant factor "
    "longer",
    "epochs to 99% true training accuracy, random over true labels (same seed), largest "
    "across the models, per seed (Table 1, unregularized, all the training images)",
    "between", 1.0, upper=SLOWDOWN_BAR, stage="table1",
    gate="true labels reach 99% training accuracy in every model and seed (fitting speeds "
         "are compared only once both fit)",
)
# Zhang et al.'s Table 1 keeps 93% to 100% of the regularized test accuracy above chance
# without any regularizer (Inception 85.75 vs 89.05, AlexNet 76.07 vs 81.22): "most" is
# above 90%.
CHANCE = 0.1  # both datasets the profiles run (CIFAR-10, digits) have ten classes
REGULARIZERS_NOT_THE_EXPLANATION = Claim(
    "regularizers do not explain generalization",
    "without the explicit regularizers run a network keeps most of its generalization",
    "test accuracy above chance (10%) without explicit regularizers, as a share of the "
    "best regularized setting's (same model and seed), smallest across the models, per seed",
    "greater", 0.9, stage="table1",
    gate="the regularized settings generalize (test accuracy above chance, 10%, in every "
         "model and seed), so the share has a denominator",
)
CLAIMS = (FITS_RANDOM_LABELS, FITS_RANDOM_PIXELS, CONSTANT_SLOWDOWN,
          REGULARIZERS_NOT_THE_EXPLANATION)
# The committed mini records size later runs and are no evidence: they were made before
# any claim was written (git history, verified with `git log -S`).
PILOT = Pilot("mini", "the mini records committed in 47c4937 (2026-11-28, 2 seeds) and "
                      "re-run with 3 seeds in 6b454ce (2026-12-06); the claims first appear "
                      "in a133a7a (2026-12-06), after the first records; FIT_BAR = 99 and "
                      "SLOWDOWN_BAR = 5 were set after those records showed 99.77% and "
                      "2.09x, and 8f55ff7 raised the seeds from 2 to 3 after the 2-seed "
                      "records left the regularizer verdict inconclusive (0.98 [0.83, 1.12]): "
                      "optional stopping",
              first_record="2026-11-28 (47c4937)")
PIXEL_CORRUPTIONS = ("shuffled pixels", "random pixels", "gaussian")
# Table 1's settings read as what was run, for the verdict on the regularizers.
REGULARIZER_NAMES = {"crop + wd": "random crops with weight decay", "crop": "random crops",
                     "wd": "weight decay"}

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
CONV_MODELS = ("inception-small", "inception-small (no BN)", "alexnet-small")
WEIGHT_DECAY = 5e-4  # the regularized rows; the paper does not state its coefficient
CORRUPTIONS = ("true labels", "random labels", "shuffled pixels", "random pixels", "gaussian")
LABEL_LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def model_variant(name: str, **extra: Any) -> dict[str, Any]:
    config, lr = MODELS[name]
    return {"model_name": name, **config, "lr": lr, **extra}


def corruption_keys(corruption: str) -> dict[str, Any]:
    return {
        "true labels": {},
        "random labels": {"label_noise": 1.0},
        "shuffled pixels": {"input_corruption": "shuffled-pixels"},
        "random pixels": {"input_corruption": "random-pixels"},
        "gaussian": {"input_corruption": "gaussian"},
    }[corruption]


def table1_variants(models: tuple[str, ...]) -> list[dict[str, Any]]:
    """Table 1's rows for each model: regularizer settings and random labels."""
    out = []
    for name in models:
        settings = ["crop + wd", "crop", "wd", "none"] if name in CONV_MODELS else ["wd", "none"]
        if name == "inception-small (no BN)":
            settings = ["wd", "none"]
        for setting in [*settings, "random labels"]:
            keys: dict[str, Any] = {"weight_decay": WEIGHT_DECAY if "wd" in setting else 0.0}
            if "crop" in setting:
                keys["random_crop"] = True
            if setting == "random labels":
                keys["label_noise"] = 1.0
            out.append({LABEL_KEY: f"{name} | {setting}", **model_variant(name), **keys})
    return out


def corruption_variants(models: tuple[str, ...], corruptions: tuple[str, ...],
                        levels: tuple[float, ...]) -> list[dict[str, Any]]:
    """Figure 1: the input/label corruptions (a), and the label-corruption sweep (b, c)."""
    out = []
    for name in models:
        for corruption in corruptions:
            if corruption in ("true labels", "random labels"):
                continue  # the sweep's p = 0 and p = 1
            out.append({LABEL_KEY: f"{name} | {corruption}", **model_variant(name),
                        **corruption_keys(corruption)})
        for level in levels:
            out.append({LABEL_KEY: f"{name} | label noise {level:g}", **model_variant(name),
                        "label_noise": level})
    return out


def _without_model_name(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The display name travels in the label; the config keys are what the trial runs.
    return [{k: v for k, v in item.items() if k != "model_name"} for item in items]


# The paper's appendix: SGD momentum 0.9, lr x0.95 per epoch, batch 128, no weight decay,
# dropout or augmentation in the randomization tests; 28x28 centre crops and per-image
# standardization; trials stop once they fit their training labels.
RECIPE = {"optimizer": "sgd", "momentum": 0.9, "batch_size": 128, "schedule": "exponential",
          "lr_decay": 0.95, "weight_decay": 0.0, "crop_size": 28, "normalization": "per-image",
          "task.stop_at_train_acc": 1.0}
SMOKE_COMMON = {**RECIPE, "dataset": "digits", "crop_size": 0, "epochs": 120, "lr": 0.05,
                "batch_size": 64, "lr_decay": 0.99}
# On a 2-core CPU the mini profile decays the lr by x0.97 per epoch, not the paper's x0.95:
# measured here (MLP 1x512, random labels, all 50k images), x0.95 stalls at 97.6% true
# training accuracy by epoch 74 (the lr is down to 2%), while x0.97 passes 99.5% by epoch
# 68. The paper profile keeps x0.95.
MINI_COMMON = {**RECIPE, "dataset": "cifar10", "test_limit": 2000, "lr_decay": 0.97}
PAPER_COMMON = {**RECIPE, "dataset": "cifar10", "epochs": 200}


# Common random numbers (harness.pairing): for one model and seed, the settings the claims
# compare (true or random labels, a corruption, a regularizer) share the initial weights,
# batch order and crops, so "random over true labels (same seed)" and "regularized against
# not (same model and seed)" are paired; each seed draws its own labels, corruption and
# subsets. Different models have different seeds, as before: no claim pairs two models.
PAIRED_KEYS = {"table1": ("label_noise", "random_crop", "weight_decay"),
               "corruptions": ("input_corruption", "label_noise")}


def _stage(name: str, common: dict[str, Any], items: list[dict[str, Any]], repeats: int,
           gpus: float = 0.0, **keys: Any) -> Stage:
    return Stage(name, {**common, **keys, "variant": variants(*_without_model_name(items))},
                 repeats=repeats, gpus_per_trial=gpus, paired_keys=PAIRED_KEYS[name],
                 data_seed_per_repeat=True)


def _smoke() -> tuple[Stage, ...]:
    mlp = ("mlp 1x512",)
    overrides = {"lr": 0.05}
    table = [{**v, **overrides} for v in table1_variants(mlp)]
    sweep = [{**v, **overrides} for v in corruption_variants(mlp, CORRUPTIONS, (0.0, 0.5, 1.0))]
    return (_stage("table1", SMOKE_COMMON, table, repeats=1),
            _stage("corruptions", SMOKE_COMMON, sweep, repeats=1))


def _mini() -> tuple[Stage, ...]:
    mlp = ("mlp 1x512",)
    # All 50,000 training images: Table 1's MLP 1x512 rows (true and random labels, and
    # weight decay), 3 seeds: three of the four verdicts read these rows, and at 2 seeds
    # t(0.975, 1) = 12.7 leaves them inconclusive. Then Figure 1 on a 10,000-image subset.
    return (
        _stage("table1", MINI_COMMON, table1_variants(mlp), repeats=3, epochs=80),
        _stage("corruptions", MINI_COMMON, corruption_variants(mlp, CORRUPTIONS, LABEL_LEVELS),
               repeats=3, epochs=80, train_limit=10000),
    )


def _paper() -> tuple[Stage, ...]:
    everything = tuple(MODELS)
    figure_models = ("inception-small", "alexnet-small", "mlp 1x512")
    return (
        _stage("table1", PAPER_COMMON, table1_variants(everything), repeats=2, gpus=0.25),
        _stage("corruptions", PAPER_COMMON,
               corruption_variants(figure_models, CORRUPTIONS, LABEL_LEVELS), repeats=2,
               gpus=0.25),
    )


PROFILES = {
    "smoke": Profile("smoke", "digits (embedded), MLP 1x512, true/random labels and pixels, "
                     "label-noise sweep, minutes on a CPU", _smoke()),
    "mini": Profile("mini", "CIFAR-10 (JPEG copy), 3 seeds: MLP 1x512 on all 50k images "
                    "(Table 1 rows) and Figure 1 on a 10k subset, CPU, under 75 minutes", _mini(),
                    needs_cifar=True),
    "paper": Profile("paper", "CIFAR-10, all four models of the paper: Table 1 and Figure 1 "
                     "in full, 2 seeds, trials sharing one GPU", _paper(), needs_cifar=True),
}


# ---------------------------------------------------------------------------- frames


def _split_label(frame: pd.DataFrame) -> pd.DataFrame:
    parts = frame["label"].str.split(" | ", n=1, regex=False)
    frame = frame.copy()
    frame["model"] = parts.str[0]
    frame["setting"] = parts.str[1]
    return frame


def finished_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = completed(records_frame(records))
    return _split_label(frame) if len(frame) else frame


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


def _slowdown_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials that measure convergence: every corruption trial, and Table 1's unregularized
    true- and random-label trials (all the training images)."""
    corrupt = frame[frame["stage"] == "corruptions"]
    table = frame[(frame["stage"] == "table1") & frame["setting"].isin(["none", "random labels"])]
    return pd.concat([table, corrupt])


def _with_ratios(rows: pd.DataFrame, level: int) -> pd.Series:
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
    rows = _slowdown_rows(frame).copy()
    if rows.empty or "time_to_fit.epoch_100" not in rows.columns:
        return None
    rows["training images"] = rows["data.train_size"].map(lambda n: f"{int(n):,}")
    for level in (99, 100):
        rows[f"epochs to {level}%"] = rows[f"time_to_fit.epoch_{level}"]
        rows[f"x true ({level}%)"] = _with_ratios(rows, level)
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
    history = _split_label(history)
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


def summary(records: list[dict[str, Any]], profile: str) -> list[Any]:
    frame = finished_frame(records)
    caption_data = data_caption(records)
    outputs: list[Any] = []
    if (frame["stage"] == "table1").any():
        outputs.append(table1(frame, caption_data))
    slowdown = slowdown_table(frame, caption_data)
    if slowdown is not None:
        outputs.append(slowdown)
    curve = figure_loss_curves(records)
    if curve is not None:
        outputs.append(curve)
    outputs += figures_vs_noise(frame)
    return outputs


def _seed_ratios(rows: pd.DataFrame, stage: str, setting: str, level: int = 100) -> pd.Series:
    """Epochs to reach ``level``% under ``setting`` over the same model and seed's
    true-label epochs, within ``stage``."""
    part = _slowdown_rows(rows)
    part = part[part["stage"] == stage]
    if part.empty or f"time_to_fit.epoch_{level}" not in part.columns:
        return pd.Series(dtype=float)
    return _with_ratios(part, level)[part["setting"] == setting].dropna()


# ---------------------------------------------------------------------------- verdicts


def _per_seed_lowest(rows: pd.DataFrame, column: str, scale: float = 1.0) -> pd.Series:
    """Per seed (repeat index), the lowest value of ``column`` across the rows (models,
    settings): "every network fits" holds in a seed only if its worst case does."""
    return (rows[column] * scale).groupby(rows["config.repeat"]).min()


def models_ran(rows: pd.DataFrame) -> str:
    """What the verdict covers, read off the records: "for the mlp 1x512, the only model
    run"."""
    models = sorted(set(rows["model"])) if "model" in rows.columns else []
    if len(models) == 1:
        return f"for the {models[0]}, the only model run"
    return f"for the models run ({', '.join(models)})" if models else ""


def _fit_evidence(claim: Claim, rows: pd.DataFrame, what: str) -> Evidence:
    if rows.empty:
        return not_measured(claim, f"no {what} trial finished")
    if "final.true_train_acc" not in rows.columns or rows["final.true_train_acc"].isna().all():
        return not_measured(claim, "the records carry no final.true_train_acc (an evaluation "
                                   "pass over the training split)")
    return judge_seeds(claim, _per_seed_lowest(rows, "final.true_train_acc", 100.0),
                       covers=models_ran(rows))


def random_label_evidence(frame: pd.DataFrame) -> Evidence:
    rows = frame[(frame["stage"] == "table1") & (frame["setting"] == "random labels")]
    return _fit_evidence(FITS_RANDOM_LABELS, rows, "Table 1 random-label")


def random_pixel_evidence(frame: pd.DataFrame) -> Evidence:
    rows = frame[(frame["stage"] == "corruptions") & frame["setting"].isin(PIXEL_CORRUPTIONS)]
    return _fit_evidence(FITS_RANDOM_PIXELS, rows, "input-corruption")


def true_labels_fitted(part: pd.DataFrame, level: int) -> Gate:
    """CONSTANT_SLOWDOWN's gate: every model and seed reached ``level``% on true labels."""
    true = part[part["setting"] == SLOWDOWN_BASES["table1"]]
    reached = true[f"time_to_fit.epoch_{level}"].notna()
    return Gate(bool(len(true)) and bool(reached.all()),
                f"true labels reached {level}% in {int(reached.sum())} of {len(true)} "
                "model-seed runs")


def slowdown_evidence(frame: pd.DataFrame, level: int = 99) -> Evidence:
    """Per seed, the largest random- over true-label epochs to ``level``% across the
    models; a seed in which random labels never reached it is left out, and the reason
    says so. Judged only where true labels fitted (the claim's gate)."""
    column = f"time_to_fit.epoch_{level}"
    part = _slowdown_rows(frame)
    part = part[part["stage"] == "table1"]
    if column not in part.columns:
        return not_measured(CONSTANT_SLOWDOWN, f"the records carry no {column}")
    ratios = _with_ratios(part, level)
    random = part["setting"] == "random labels"
    if not random.any():
        return not_measured(CONSTANT_SLOWDOWN, "no Table 1 random-label trial finished")
    # A model that never reached the level leaves its seed's worst case unknown: NaN.
    per_seed = ratios[random].groupby(part.loc[random, "config.repeat"]).agg(
        lambda seed: seed.max(skipna=False))
    missing = sorted(int(r) for r, v in per_seed.items() if not math.isfinite(v))
    note = (f"left out: seed {', '.join(map(str, missing))}, where random or true labels "
            f"never reached {level}% within the epoch budget" if missing else "")
    return judge_seeds(CONSTANT_SLOWDOWN, per_seed.to_numpy(), note=note,
                       gate=true_labels_fitted(part, level), covers=models_ran(part))


def regularized_settings(frame: pd.DataFrame) -> list[str]:
    """Table 1's regularized settings the records ran (weight decay, crops), in order."""
    present = set(frame.loc[frame["stage"] == "table1", "setting"])
    return [s for s in REGULARIZER_NAMES if s in present]


def regularizers_ran(frame: pd.DataFrame) -> str:
    """What the regularized rows ran, read off the records: "weight decay 0.0005"."""
    table = frame[frame["stage"] == "table1"]
    decays = sorted({float(v) for v in table["config.weight_decay"].dropna() if float(v) > 0}) \
        if "config.weight_decay" in table.columns else []
    names = []
    for setting in regularized_settings(frame):
        name = REGULARIZER_NAMES[setting]
        if "weight decay" in name and decays:
            name += " " + ", ".join(f"{d:g}" for d in decays)
        names.append(name)
    return "; ".join(names)


def dropout_ran(frame: pd.DataFrame) -> bool:
    """Whether any Table 1 trial ran dropout (the write-up names it among the regularizers
    the claim covers), read off the records' config."""
    table = frame[frame["stage"] == "table1"]
    columns = [c for c in table.columns if c.startswith("config.") and "dropout" in c]
    return any((pd.to_numeric(table[c], errors="coerce") > 0).any() for c in columns)


def regularizer_evidence(frame: pd.DataFrame) -> Evidence:
    """Per seed, the smallest share across the models of the above-chance test accuracy
    the unregularized setting keeps of the best regularized setting's."""
    claim = REGULARIZERS_NOT_THE_EXPLANATION
    settings = regularized_settings(frame)
    table = frame[frame["stage"] == "table1"]
    if not settings or not (table["setting"] == "none").any():
        return not_measured(claim, "Table 1 has no pair of unregularized and regularized "
                                   "trials")
    above = (table.set_index(["model", "config.repeat", "setting"])["final.test_acc"]
             - CHANCE).unstack("setting")
    best = above[settings].max(axis=1)
    gate = Gate(bool((best > 0).all()),
                f"the best regularized setting's test accuracy is {(best.min() + CHANCE) * 100:.1f}% "
                "at its lowest (chance 10%)")
    shares = above["none"] / best
    per_seed = shares.groupby(level="config.repeat").min()
    ran = regularizers_ran(frame)
    covers = (f"{ran}, the only regularizer run" if len(regularized_settings(frame)) == 1
              else f"the regularizers run: {ran}")
    note = "dropout: not run" if not dropout_ran(frame) else ""
    return judge_seeds(claim, per_seed.to_numpy(), note=note, gate=gate,
                       covers=f"{covers}; {models_ran(table)}")


def evidence(records: list[dict[str, Any]]) -> tuple[Evidence, ...]:
    """Each of the study's claims (CLAIMS) judged by its 95% interval over seeds."""
    frame = finished_frame(records)
    if frame.empty:
        return tuple(not_measured(c, "no trial finished") for c in CLAIMS)
    return (random_label_evidence(frame), random_pixel_evidence(frame),
            slowdown_evidence(frame), regularizer_evidence(frame))


def narrative(records: list[dict[str, Any]], profile: str) -> Narrative:
    """The paper's section: random labels fitted, at what cost in time, with what test
    accuracy; the pixel corruptions; weight decay's effect."""
    frame = finished_frame(records)
    data = data_caption(records)
    table = frame[frame["stage"] == "table1"]
    model = "mlp 1x512" if (table["model"] == "mlp 1x512").any() else table["model"].iloc[0]
    rows = table[table["model"] == model]

    def acc(setting: str, column: str) -> str:
        part = rows[rows["setting"] == setting][column] * 100
        # ceiling: 99.998% reads "99.998", never "100.00" (a fit that did not happen).
        return format_mean_sd(part.mean(), part.std(ddof=1) if len(part) > 1 else math.nan,
                              ceiling=100.0)

    random_train = fixed_apart(
        (rows[rows["setting"] == "random labels"]["final.true_train_acc"] * 100).mean(), [100.0])
    corrupt = frame[frame["stage"] == "corruptions"]
    slow = _seed_ratios(frame, "corruptions", "label noise 1")
    slow_all = _seed_ratios(frame, "table1", "random labels", level=99)
    images = int(rows["data.train_size"].max())
    pixels = corrupt[corrupt["setting"].isin(PIXEL_CORRUPTIONS)]
    pixel_fit = f"{int((pixels['status'] == 'fitted').sum())} of {len(pixels)}"
    slowdown = (f"{slow.mean():.1f}x" if len(slow) else "not measured (no seed fitted both)")
    regularized = "".join(f"; {REGULARIZER_NAMES[s]} gave {acc(s, 'final.test_acc')}%"
                          for s in regularized_settings(frame))
    answer = (f"On {data} the {model} fitted random labels to {acc('random labels', 'final.true_train_acc')}% "
              f"training accuracy with {acc('random labels', 'final.test_acc')}% test accuracy "
              f"(chance: 10%), and true labels to {acc('none', 'final.true_train_acc')}% with "
              f"{acc('none', 'final.test_acc')}% test accuracy{regularized}. "
              + (f"On all {images:,} training images random labels took "
                 f"{format_mean_sd(slow_all.mean(), slow_all.std(ddof=1))}x the epochs true "
                 "labels took to reach 99% training accuracy. " if len(slow_all) else "")
              + f"On the label-corruption subset, random labels took "
              f"{slowdown} the epochs true labels took to fit, and {pixel_fit} input-corruption "
              "trials (shuffled pixels, random pixels, Gaussian) fitted their labels completely.")
    judged = evidence(records)
    # The headline's slowdown: all the training images when that was measured (Table 1's
    # setting), else the label-corruption subset's.
    pace = (f"{slow_all.mean():.1f}x the true-label epochs to reach 99% (all {images:,} images)"
            if len(slow_all) else f"{slowdown} the true-label time to fit")
    return Narrative(
        question="Do networks fit random labels and random pixels, how much slower than true "
                 "labels, and do explicit regularizers explain generalization?",
        claim="Networks fit random labels and random pixels to 100% training accuracy; "
              "explicit regularizers (weight decay, dropout, augmentation) do not explain "
              "generalization; training time grows with label noise only by a constant factor "
              "(Zhang et al., reviewed in the write-up).",
        answer=answer, evidence=judged,
        headline=f"The {model} memorized random labels ({random_train}% training "
                 f"accuracy) at {pace}; of Zhang et al.'s {len(judged)} sub-claims, "
                 f"{verdict_counts(judged)}.",
        tables=("table1", "slowdown"),
        figures=("fig1a_loss_vs_steps", "fig1b_time_to_fit_vs_label_noise",
                 "fig1c_test_error_vs_label_noise"),
        published="Zhang et al., Table 1, canonical CIFAR-10: MLP 1x512 100.0% train / 50.51% "
                  "test with true labels, 99.34% / 10.61% with random labels (beside ours in "
                  "the table when the data is CIFAR-10).",
    )


STUDY = register_study(Study(
    name="memorization",
    description="Zhang et al. (ICLR 2017): random labels, random pixels, time to fit, Table 1",
    profiles=PROFILES,
    summary=summary,
    narrative=narrative,
    title='Memorization of random labels (Zhang et al., ICLR 2017)',
    order=30,
    claims=CLAIMS,
    evidence=evidence,
    pilot=PILOT,
))
