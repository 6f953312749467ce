"""Noise2Noise: does a denoiser trained on noisy targets learn what one trained on clean
targets learns?

The write-up (theory claim 7) argues that under L2 the optimum is the mean of the targets,
so noise whose mean is the clean target leaves it unchanged (Lehtinen et al., ICML 2018). This
study trains the same U-Net on clean and on independently noisy targets for additive
Gaussian, Poisson and multiplicative Bernoulli noise, and measures the PSNR gap; and it
shows where the argument breaks: random-valued impulse noise has no zero mean, and above
p = 1/2 no unbiased median either (it is validated at p 0.7 and trained blind, as
Noise2Noise does), so noisy targets need the loss that recovers the mode (annealed L0)
rather than L2's mean or L1's median.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.evidence import (
    SUPPORTED,
    Claim,
    Evidence,
    Gate,
    judge_seeds,
    not_measured,
    verdict_counts,
)
from harness.report import (
    Table,
    completed,
    data_caption,
    format_mean_sd,
    mean_sd,
    mean_sd_columns,
    records_frame,
)
from harness.space import LABEL_KEY, variants
from harness.study import Narrative, Pilot, Profile, Stage, Study, register_study
from studies._denoising_figures import psnr_curves, sample_grid

# PSNR (dB) of Noise2Noise's own U-Net, clean / noisy targets, from the official README
# (NVlabs/noise2noise); trained on ImageNet crops, tested on Kodak and BSD300.
PUBLISHED = {
    ("gaussian", "Kodak"): (32.38, 32.39),
    ("gaussian", "BSD300"): (31.01, 31.02),
    ("poisson", "Kodak"): (31.66, 31.66),
    ("poisson", "BSD300"): (30.27, 30.26),
}
PUBLISHED_LEVEL = {"gaussian": 25.0 / 255.0, "poisson": 30.0}  # the levels they were tested at
# Each noise model's name and how its level reads (Gaussian sigma in 0-255 pixel units).
NOISE_KINDS = {
    "gaussian": ("Gaussian", "sigma", 255.0),
    "poisson": ("Poisson", "lambda", 1.0),
    "bernoulli": ("Bernoulli", "p", 1.0),
    "impulse": ("impulse", "p", 1.0),
}
NOISE_NAMES = tuple(NOISE_KINDS)  # the order of rows, curves and grid rows
ZERO_MEAN_NOISES = ("gaussian", "poisson", "bernoulli")
IMPULSE_LOSSES = ("l2", "l1", "l0")

# The claims, registered by `harness run` before any trial. Claim 7 / Noise2Noise: for
# each zero-mean noise model, noisy-target training matches clean-target training, within
# a 0.2 dB margin (a PSNR difference below what a reader sees; Noise2Noise's own gaps are
# 0.01 dB). And where the argument's premise fails (impulse noise has no zero mean), L2 on
# noisy targets falls short by more than that margin. Each means something only where the
# denoiser denoises: clean-target training at least 3 dB above the noisy input.
MARGIN_DB = 0.2
DENOISES_DB = 3.0
DENOISES = (f"clean-target training reaches a test PSNR at least {DENOISES_DB:g} dB above the "
            "noisy input's, in every seed (the denoiser has learned to denoise)")
# The committed mini records size later runs and are no evidence (git history).
PILOT = Pilot("mini", "the mini records first committed in 65b6f89 (2026-11-28) and re-run "
                      "from 7839f73 in b645977 (2026-12-06); the claims and the ±0.2 dB "
                      "margin first appear in a133a7a (2026-12-06), after the first records "
                      "were seen",
              first_record="2026-11-28 (65b6f89)")
GAP_EFFECT = "noisy - clean target test PSNR (dB), L2, paired by seed"
MATCHES_CLEAN = {
    noise: Claim(
        f"noisy targets match clean ({NOISE_KINDS[noise][0]})",
        f"a denoiser trained with L2 on independently noisy targets reaches the PSNR of one "
        f"trained on clean targets, {NOISE_KINDS[noise][0]} noise",
        GAP_EFFECT, "equivalence", MARGIN_DB, stage="denoise", gate=DENOISES)
    for noise in ZERO_MEAN_NOISES
}
IMPULSE_BREAKS_L2 = Claim(
    "impulse noise breaks L2",
    "with random-valued impulse noise (no zero mean) L2 on noisy targets falls short of "
    "clean targets",
    GAP_EFFECT, "less", -MARGIN_DB, stage="denoise", gate=DENOISES)
CLAIMS = (*MATCHES_CLEAN.values(), IMPULSE_BREAKS_L2)


def trial_variants(noises: tuple[str, ...], blind: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Clean and noisy targets under L2 for every noise model; for impulse noise also L1
    and annealed L0 on noisy targets (the loss comparison). Noise models in ``blind`` train
    on a level drawn per image (Noise2Noise's way); the others at the fixed test level."""
    out = []
    for noise in noises:
        drawn = {"task.blind": True} if noise in blind else {}
        for target in ("clean", "noisy"):
            out.append({LABEL_KEY: f"{noise}/{target}/l2", "task.noise": noise,
                        "task.target": target, "loss": "l2", **drawn})
        if noise == "impulse":
            for loss in IMPULSE_LOSSES[1:]:
                out.append({LABEL_KEY: f"{noise}/noisy/{loss}", "task.noise": noise,
                            "task.target": "noisy", "loss": loss, **drawn})
    return out


def _stage(common: dict[str, Any], noises: tuple[str, ...], repeats: int, gpus: float = 0.0,
           blind: tuple[str, ...] = ("impulse",)):
    space = {**common, "task": "denoise", "variant": variants(*trial_variants(noises, blind))}
    # Common random numbers (harness.pairing): a noise model's arms (clean or noisy
    # target, L2, L1 or L0) of one seed share its initial weights, batch order and noisy
    # inputs; each seed draws its own training subset, validation and test images.
    return Stage("denoise", space, repeats=repeats, gpus_per_trial=gpus,
                 paired_keys=("loss", "task.target"), data_seed_per_repeat=True)


# Noise2Noise's recipe: Adam (beta2 0.99; AdamW with no weight decay is Adam), lr 3e-4, cosine-squared ramp-down over the last
# 30% of steps; no flips. Batch and length are set per profile.
N2N_RECIPE = {"optimizer": "adamw", "adam_beta2": 0.99, "lr": 3e-4, "weight_decay": 0.0,
              "schedule": "rampdown", "flip": False}
# Small batches give the tiny U-Net enough steps to get past the noisy input in 3 epochs.
# The CPU profiles train on a subset, so a validation split held out before it costs no
# training image; the paper profile chooses nothing and trains on all 50,000.
SMOKE_COMMON = {**N2N_RECIPE, "dataset": "photos", "model": "unet", "model.features": 8,
                "model.depth": 2, "model.head_features": 16, "epochs": 3, "batch_size": 8,
                "lr": 2e-3, "train_limit": 2048, "val_size": 256}
# A 2-core CPU: the U-Net at a third of the width and depth 3 (66k parameters), 8,000
# training images, 4 epochs, 1,000 test images; lr raised for the short schedule.
MINI_COMMON = {**N2N_RECIPE, "dataset": "cifar10", "model": "unet", "model.features": 16,
               "model.depth": 3, "model.head_features": 32, "epochs": 4, "batch_size": 32,
               "lr": 1e-3, "train_limit": 8000, "test_limit": 1000, "val_size": 1000}
PAPER_COMMON = {**N2N_RECIPE, "dataset": "cifar10", "model": "unet", "epochs": 30,
                "batch_size": 64, "lr": 1e-3}

PROFILES = {
    "smoke": Profile(
        "smoke", "scikit-learn's china photo (32x32 crops) to its flower photo, tiny U-Net, "
        "Gaussian (fixed level) and impulse noise (blind, tested at p 0.7), 1 seed, a minute "
        "on a CPU",
        (_stage(SMOKE_COMMON, ("gaussian", "impulse"), repeats=1),),
    ),
    "mini": Profile(
        "mini", "CIFAR-10 (JPEG copy) 8k-image subset, U-Net at 1/3 width and depth 3, 4 epochs, "
        "all four noise models (impulse trained blind, the others at the fixed test level), "
        "3 seeds, CPU, under 45 minutes",
        (_stage(MINI_COMMON, ("gaussian", "poisson", "bernoulli", "impulse"), repeats=3),),
        needs_cifar=True,
    ),
    "paper": Profile(
        "paper", "all of CIFAR-10, Noise2Noise's full U-Net, 30 epochs, all four noise "
        "models trained blind, 3 seeds, trials sharing one GPU",
        (_stage(PAPER_COMMON, ("gaussian", "poisson", "bernoulli", "impulse"), repeats=3,
                gpus=0.25, blind=("gaussian", "poisson", "bernoulli", "impulse")),),
        needs_cifar=True,
    ),
}


# ---------------------------------------------------------------------------- tables


def noise_label(noise: str, level: float) -> str:
    name, symbol, scale = NOISE_KINDS[noise]
    return f"{name} ({symbol} {level * scale:g})"


def noise_labels(frame: pd.DataFrame) -> dict[str, str]:
    """Each noise model's label with the level its trials were tested at, as the records
    say (the validation level of harness.data.noise where a record does not)."""
    from harness.data.noise import VALIDATION_LEVEL

    levels = {}
    if "noise.test_level" in frame.columns:
        levels = frame.dropna(subset=["noise.test_level"]).groupby("noise")["noise.test_level"].first()
    return {n: noise_label(n, float(levels.get(n, VALIDATION_LEVEL[n]))) for n in NOISE_KINDS}


def training_noise_text(frame: pd.DataFrame) -> str:
    """How the trials' training noise was drawn, from the records: blind (a level per image
    from the model's range, Noise2Noise's way) or at the fixed test level."""
    if "noise.blind" not in frame.columns:
        return "training noise at the fixed test level"
    blind = sorted({n for n, b in zip(frame["noise"], frame["noise.blind"], strict=True) if b is True},
                   key=NOISE_NAMES.index)
    fixed = sorted(set(frame["noise"]) - set(blind), key=NOISE_NAMES.index)
    parts = []
    if blind:
        parts.append(f"{', '.join(NOISE_KINDS[n][0] for n in blind)} trained blind (a level "
                     "per image from the model's range)")
    if fixed:
        parts.append(f"{', '.join(NOISE_KINDS[n][0] for n in fixed)} trained at the fixed "
                     "test level")
    return "; ".join(parts)


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = completed(records_frame(records)).copy()
    frame["noise"] = frame["config.task.noise"]  # records carry every task option
    frame["target"] = frame["config.task.target"]
    frame["loss"] = frame["config.loss"]
    return frame


def _cell(stats: pd.DataFrame, metric: str) -> str:
    if stats.empty:
        return "—"
    return mean_sd_columns(stats, {metric: "v"})["v"].iloc[0]


def psnr_table(frame: pd.DataFrame, caption_data: str) -> Table:
    """PSNR per noise model with clean and noisy targets (L2), the gap noisy - clean, the
    noisy input as baseline, and Noise2Noise's published figures beside them."""
    l2 = frame[frame["loss"] == "l2"]
    names = noise_labels(frame)
    metrics = ["final.test_psnr", "final.input_psnr"]
    has_photos = "final.photos_psnr" in frame.columns and frame["final.photos_psnr"].notna().any()
    rows = []
    for noise in [n for n in NOISE_NAMES if n in set(l2["noise"])]:
        part = l2[l2["noise"] == noise]
        by_target = {t: part[part["target"] == t] for t in ("clean", "noisy")}
        stats = {t: mean_sd(p, [], metrics + (["final.photos_psnr"] if has_photos else []))
                 if len(p) else pd.DataFrame() for t, p in by_target.items()}
        gap = _gap_cell(part)
        row = {
            "noise": names[noise],
            "noisy input": f"{part['final.input_psnr'].mean():.2f}",
            "clean targets": _cell(stats["clean"], "final.test_psnr"),
            "noisy targets": _cell(stats["noisy"], "final.test_psnr"),
            "gap (noisy - clean)": gap,
        }
        if has_photos:
            row["photos, clean"] = _cell(stats["clean"], "final.photos_psnr")
            row["photos, noisy"] = _cell(stats["noisy"], "final.photos_psnr")
        row["n"] = str(min(len(by_target["clean"]), len(by_target["noisy"])))
        rows.append(row)
    columns = list(rows[0]) if rows else ["noise", "clean targets", "noisy targets",
                                          "gap (noisy - clean)"]
    reference = []
    for (noise, data), (clean, noisy) in PUBLISHED.items():
        label = f"{noise_label(noise, PUBLISHED_LEVEL[noise])}: Noise2Noise on {data} (published)"
        rows.append({**{c: "—" for c in columns}, "noise": label,
                     "clean targets": f"{clean:.2f}", "noisy targets": f"{noisy:.2f}",
                     "gap (noisy - clean)": f"{noisy - clean:+.2f}"})
        reference.append(label)
    table = pd.DataFrame(rows, columns=columns)
    table.index = [row["noise"] for row in rows]
    return Table(
        "psnr_by_noise", table,
        f"Test PSNR (dB, mean ± sd over n seeds) of the U-Net trained with L2 on clean or on "
        f"independently noisy targets, on the test images of {caption_data} (its own images "
        f"are the clean ones), test noise at the level each row names "
        f"({training_noise_text(frame)}); the gap is per seed, "
        "noisy minus clean. Published rows (the NVlabs/noise2noise README): Noise2Noise's full "
        "U-Net trained on ImageNet "
        "crops and tested on Kodak / BSD300, other data than ours.",
        best={}, reference_rows=frozenset(reference),
    )


def paired_gaps(part: pd.DataFrame, metric: str = "final.test_psnr") -> pd.DataFrame:
    """Per seed (repeat index) present with both targets: the clean- and noisy-target
    values of ``metric`` and their gap, noisy - clean. The one definition of the gap, for
    the table and the verdict alike."""
    by = {t: part[part["target"] == t].set_index("config.repeat")[metric] for t in ("clean", "noisy")}
    paired = pd.concat(by, axis=1, join="inner").dropna()
    return paired.assign(gap=paired["noisy"] - paired["clean"])


def _gap_cell(part: pd.DataFrame) -> str:
    """The gap as mean ± sd over seeds, signed."""
    paired = paired_gaps(part)
    if paired.empty:
        return "—"
    text = mean_sd_columns(mean_sd(paired[["gap"]], [], ["gap"]), {"gap": "g"})["g"].iloc[0]
    return text if text.startswith("-") else f"+{text}"


def impulse_table(frame: pd.DataFrame, caption_data: str) -> Table | None:
    part = frame[frame["noise"] == "impulse"]
    if part.empty:
        return None
    metrics = ["final.test_psnr"] + (["final.photos_psnr"] if part.get("final.photos_psnr") is not None
                                     and part["final.photos_psnr"].notna().any() else [])
    stats = mean_sd(part, ["target", "loss"], metrics)
    order = {loss: i for i, loss in enumerate(IMPULSE_LOSSES)}
    stats = stats.sort_values(["target", "loss"], key=lambda s: s.map(order) if s.name == "loss" else s)
    shown = mean_sd_columns(stats, {"final.test_psnr": "test PSNR (dB)",
                                    "final.photos_psnr": "photos PSNR (dB)"})
    shown.index = [f"{t}/{loss}" for t, loss in zip(stats["target"], stats["loss"], strict=True)]
    label = noise_labels(frame)["impulse"]
    return Table(
        "impulse_losses", shown,
        f"Random-valued {label} noise on {caption_data} (its own images are the clean "
        f"ones; {training_noise_text(part)}): test PSNR by target and "
        "training loss (mean ± sd over n seeds). " + impulse_statistics_text(part) + " With "
        "noisy targets L2 learns the mean, pulled towards grey; annealed L0 (Noise2Noise's) "
        "seeks the mode, the clean value.",
        best={"test PSNR (dB)": "max"},
    )


def impulse_statistics_text(part: pd.DataFrame) -> str:
    """What the noisy target's mean and median are at the level the records were tested at:
    the mean is biased at every clean value but 1/2; the median only where p > 1/2."""
    from harness.data.noise import VALIDATION_LEVEL, impulse_median_unbiased

    levels = part["noise.test_level"].dropna() if "noise.test_level" in part.columns else []
    p = float(levels.iloc[0]) if len(levels) else VALIDATION_LEVEL["impulse"]
    low, high = impulse_median_unbiased(p)
    if (low, high) == (0.0, 1.0):
        median = (f"its median is the clean value at every pixel (p {p:g} <= 1/2), so the "
                  "L1 optimum is the clean image too")
    else:
        median = (f"its median is the clean value only for clean values in [{low:.2f}, "
                  f"{high:.2f}], so the L1 optimum is biased on dark and bright pixels")
    return f"At p {p:g} the noisy target's mean is biased and {median}."


def summary(records: list[dict[str, Any]], profile: str) -> list[Any]:
    frame = _frame(records)
    caption_data = data_caption(records)
    outputs: list[Any] = [psnr_table(frame, caption_data)]
    impulse = impulse_table(frame, caption_data)
    if impulse is not None:
        outputs.append(impulse)
    names = noise_labels(frame)
    outputs += psnr_curves(records, caption_data, names)
    grid = sample_grid(records, names)
    if grid is not None:
        outputs.append(grid)
    return outputs


def _gap(frame: pd.DataFrame, noise: str) -> dict[str, float] | None:
    """Per-seed noisy - clean PSNR gap (L2) and the two PSNRs, for one noise model."""
    part = frame[(frame["noise"] == noise) & (frame["loss"] == "l2")]
    paired = paired_gaps(part)
    if paired.empty:
        return None
    gaps = paired["gap"]
    return {"gap": gaps.mean(), "sd": gaps.std(ddof=1) if len(gaps) > 1 else math.nan,
            "n": len(gaps), "clean": paired["clean"].mean(), "noisy": paired["noisy"].mean(),
            "input": part["final.input_psnr"].mean()}


def gap_evidence(frame: pd.DataFrame, noise: str, claim: Claim) -> Evidence:
    """The claim judged by the per-seed noisy - clean PSNR gap (L2) of one noise model."""
    needed = [c for c in ("final.test_psnr", "config.repeat") if c not in frame.columns]
    if needed:
        return not_measured(claim, f"the records carry no {', '.join(needed)}")
    part = frame[(frame["noise"] == noise) & (frame["loss"] == "l2")]
    paired = paired_gaps(part)
    if paired.empty:
        return not_measured(claim, f"no {NOISE_KINDS[noise][0]} seed ran with both targets")
    return judge_seeds(claim, paired["gap"].to_numpy(), gate=denoises(part))


def denoises(part: pd.DataFrame) -> Gate:
    """The claims' gate: clean-target training DENOISES_DB above the noisy input, per seed."""
    clean = part[part["target"] == "clean"]
    if "final.input_psnr" not in clean.columns or clean["final.input_psnr"].isna().all():
        return Gate(False, "no record carries the noisy input's PSNR (final.input_psnr)")
    above = (clean["final.test_psnr"] - clean["final.input_psnr"]).dropna()
    return Gate(bool(len(above)) and bool((above >= DENOISES_DB).all()),
                f"clean-target training {above.min():.1f} dB above the noisy input at its "
                "lowest seed")


def evidence(records: list[dict[str, Any]]) -> tuple[Evidence, ...]:
    """Each of the study's claims (CLAIMS) judged by its 95% interval over seeds."""
    frame = _frame(records)
    judged = [gap_evidence(frame, noise, claim) for noise, claim in MATCHES_CLEAN.items()]
    return (*judged, gap_evidence(frame, "impulse", IMPULSE_BREAKS_L2))


def narrative(records: list[dict[str, Any]], profile: str) -> Narrative:
    """The paper's section: the clean/noisy-target gap for zero-mean noise (claim 7), and
    where it breaks (impulse noise needs L1 or L0)."""
    frame = _frame(records)
    names = noise_labels(frame)
    data = data_caption(records)
    parts = []
    for noise in ZERO_MEAN_NOISES:
        gap = _gap(frame, noise)
        if gap is None:
            continue
        parts.append(f"{names[noise]}: noisy targets {gap['noisy']:.2f} dB, clean targets "
                     f"{gap['clean']:.2f} dB, gap {format_mean_sd(gap['gap'], gap['sd'])} dB "
                     f"(n = {gap['n']}), {gap['noisy'] - gap['input']:.1f} dB above the noisy "
                     "input")
    impulse = frame[(frame["noise"] == "impulse") & (frame["target"] == "noisy")]
    by_loss = impulse.groupby("loss")["final.test_psnr"].mean()
    impulse_text = ""
    if {"l2", "l1", "l0"} <= set(by_loss.index):
        impulse_text = (f" With random-valued {names['impulse']} noise, noisy targets gave "
                        f"{by_loss['l2']:.2f} dB under L2, "
                        f"{by_loss['l1']:.2f} dB under L1 and {by_loss['l0']:.2f} dB under "
                        f"annealed L0. {impulse_statistics_text(impulse)}")
    judged = evidence(records)
    zero_mean = judged[:len(MATCHES_CLEAN)]
    matched = sum(e.verdict == SUPPORTED for e in zero_mean)
    return Narrative(
        question="Does a denoiser trained on independently noisy targets learn what one trained "
                 "on clean targets learns, and where does that break?",
        claim="Under L2 the best prediction is the mean of the targets, so zero-mean noise on "
              "the targets leaves the optimum unchanged: training on noisy targets works "
              "(theory claim 7, Lehtinen et al.'s Noise2Noise).",
        answer=f"On {data}: " + "; ".join(parts) + "." + impulse_text,
        evidence=judged,
        headline=f"Noisy-target training matched clean-target training within ±{MARGIN_DB:g} dB "
                 f"(95% interval) for {matched} of {len(zero_mean)} noise models whose target mean is the "
                 f"clean image (additive Gaussian, Poisson; Bernoulli is multiplicative, handled "
                 f"by masking the loss) "
                 f"({verdict_counts(zero_mean)}).",
        tables=("psnr_by_noise", "impulse_losses"),
        figures=("samples", "psnr_vs_epoch"),
        published="Noise2Noise's figures from its official README (NVlabs/noise2noise; clean / "
                  "noisy targets, full U-Net trained on "
                  "ImageNet crops, other data than ours): Gaussian Kodak 32.38 / 32.39 dB, "
                  "BSD300 31.01 / 31.02; Poisson Kodak 31.66 / 31.66, BSD300 30.27 / 30.26.",
    )


STUDY = register_study(Study(
    name="denoising",
    description="Noise2Noise: denoisers trained on noisy vs clean targets (Gaussian, Poisson, "
                "Bernoulli, impulse noise; L2, L1, annealed L0)",
    profiles=PROFILES,
    summary=summary,
    narrative=narrative,
    title='Denoising with noisy targets (Noise2Noise)',
    order=40,
    claims=CLAIMS,
    evidence=evidence,
    pilot=PILOT,
))
