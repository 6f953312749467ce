"""The imbalance study's evidence: CB-focal against CE, paired by seed, from the main
stage's records, with the per-class test outcomes a hierarchical bootstrap draws from.

A helper of studies/imbalance.py (the leading underscore keeps study discovery from
treating it as a study); it never imports the study file, which hands each function the
claim it judges and the chance level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.evidence import Claim, Evidence, Gate, above_chance, judge_seeds, not_measured
from harness.report import completed, per_class_frame, records_frame


def cb_focal_label(labels: set[str]) -> str | None:
    return next((label for label in sorted(labels) if label.startswith("CB-focal")), None)


def _paired_differences(values: pd.Series, cb_focal: str) -> pd.Series:
    """CB-focal minus CE per seed, from values indexed by (label, config.repeat)."""
    by_seed = values.unstack("label")
    return (by_seed[cb_focal] - by_seed["CE"]).dropna()


def _class_outcomes(record: dict[str, Any]) -> list[np.ndarray]:
    """Per class, the 0/1 outcome of each of its test images, from the confusion matrix
    (rows: true class): the examples a hierarchical bootstrap draws from."""
    matrix = np.asarray(record.get("confusion_matrix") or [], dtype=int)
    return [np.r_[np.ones(matrix[c, c]), np.zeros(matrix[c].sum() - matrix[c, c])]
            for c in range(len(matrix))]


def paired_outcomes(main: list[dict[str, Any]], cb_focal: str) -> list[list[np.ndarray]]:
    """Per seed run with both losses: CE's class outcome arrays, then CB-focal's; empty
    when a record carries no confusion matrix (an older record)."""
    by_seed: dict[int, dict[str, dict[str, Any]]] = {}
    for record in main:
        by_seed.setdefault(int(record["config"].get("repeat", 0)), {})[record.get("label")] = record
    out = []
    for repeat in sorted(by_seed):
        pair = by_seed[repeat]
        if "CE" not in pair or cb_focal not in pair:
            continue
        arms = [_class_outcomes(pair["CE"]), _class_outcomes(pair[cb_focal])]
        if not all(arms) or len(arms[0]) != len(arms[1]):
            return []
        out.append([*arms[0], *arms[1]])
    return out


def _rare_gain(arrays: Sequence[np.ndarray]) -> float:
    """CB-focal - CE mean accuracy (points) over the rarer half of the classes, from one
    seed's class outcomes (CE's classes, then CB-focal's)."""
    k = len(arrays) // 2
    rare = [c for c in range(k) if c >= (k - 1) / 2]  # the rarer half, as rarer_half_evidence

    def mean(arms: Sequence[np.ndarray]) -> float:
        return float(np.mean([a.mean() for a in arms]))
    return 100 * (mean([arrays[k + c] for c in rare]) - mean([arrays[c] for c in rare]))


def _error_gain(arrays: Sequence[np.ndarray]) -> float:
    """CB-focal - CE top-1 test error (points) from one seed's class outcomes."""
    k = len(arrays) // 2

    def accuracy(arms: Sequence[np.ndarray]) -> float:
        return float(np.concatenate(list(arms)).mean())
    return 100 * (accuracy(arrays[:k]) - accuracy(arrays[k:]))


def rarer_half_evidence(claim: Claim, main: list[dict[str, Any]], factor: float,
                        chance: float) -> Evidence:
    per_class = per_class_frame(main)
    if per_class.empty:
        return not_measured(claim, "the records carry no per-class accuracy")
    cb_focal = cb_focal_label(set(per_class["label"]))
    if cb_focal is None or "CE" not in set(per_class["label"]):
        return not_measured(claim, f"CB-focal and CE were not both run at IF {factor:g}")
    rare = per_class[per_class["class"] >= per_class["class"].max() / 2]  # the rarer half
    accuracy = rare.groupby(["label", "config.repeat"])["accuracy"].mean() * 100
    ce = per_class[per_class["label"] == "CE"]
    worst = ce.loc[ce["accuracy"].idxmin()]
    at_chance = sorted({int(c) for c in ce.loc[ce["accuracy"] <= chance, "class"]})
    gate = Gate(not at_chance,
                f"CE at or below chance on class{'es' if len(at_chance) > 1 else ''} "
                f"{', '.join(map(str, at_chance))} (lowest {worst['accuracy'] * 100:.1f}%)"
                if at_chance else
                f"CE's lowest class accuracy {worst['accuracy'] * 100:.1f}% (chance 10%)")
    examples = paired_outcomes(main, cb_focal) or None
    return judge_seeds(claim, _paired_differences(accuracy, cb_focal).to_numpy(), gate=gate,
                       examples=examples, effect_of=_rare_gain)


def overall_error_evidence(claim: Claim, main: list[dict[str, Any]], factor: float,
                           chance: float) -> Evidence:
    frame = completed(records_frame(main)) if main else pd.DataFrame()
    if frame.empty or "final.test_acc" not in frame.columns:
        return not_measured(claim, "the records carry no final.test_acc")
    cb_focal = cb_focal_label(set(frame["label"]))
    if cb_focal is None or "CE" not in set(frame["label"]):
        return not_measured(claim, f"CB-focal and CE were not both run at IF {factor:g}")
    error = (1.0 - frame.set_index(["label", "config.repeat"])["final.test_acc"]) * 100
    both = frame[frame["label"].isin(["CE", cb_focal])]
    gate = above_chance(both["final.test_acc"], chance,
                        "the lowest overall test accuracy of the two")
    examples = paired_outcomes(main, cb_focal) or None
    return judge_seeds(claim, _paired_differences(error, cb_focal).to_numpy(), gate=gate,
                       examples=examples, effect_of=_error_gain)
