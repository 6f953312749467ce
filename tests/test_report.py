"""Tests of harness.report: records -> frames -> tables and figures.

The golden test rebuilds records.csv and a mean ± sd table from the committed fixture
(tests/fixtures/records/, made by tests/fixtures/make_records.py) and compares the text
with tests/golden/ exactly. After an intended change to the output format, regenerate
the golden files and review the diff before committing:

    HARNESS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_report.py
"""

from __future__ import annotations

import math
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.errors import DataError
from harness.report import (
    Plot,
    Table,
    best_cells,
    completed,
    confusion_heatmap,
    data_caption,
    format_mean_sd,
    history_frame,
    latex_escape,
    line_with_bands,
    load_records,
    mean_sd,
    mean_sd_columns,
    pareto_front,
    parse_number,
    per_class_bars,
    per_class_frame,
    records_frame,
    scatter_with_pareto,
    write_figure,
    write_outputs,
    write_table,
)
from harness.report.tables import atomic_path, render_latex, render_markdown

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "records"
GOLDEN = HERE / "golden"


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return load_records(FIXTURE)


def fixture_summary(records: list[dict]) -> list[Table]:
    """What a study's summary() looks like: completed trials, mean ± sd over repeats."""
    frame = completed(records_frame(records))
    summary = mean_sd(frame, ["config.loss", "config.imbalance_factor"],
                      ["final.test_acc", "final.test_error", "per_class.9"])
    shown = mean_sd_columns(
        summary,
        {"final.test_acc": "test acc (%)", "final.test_error": "test error (%)",
         "per_class.9": "rarest class acc (%)"},
        digits=2, scale=100,
    ).rename(columns={"config.loss": "loss", "config.imbalance_factor": "imbalance factor"})
    # A reference row scoring above every run: it must never be marked best.
    reference = pd.DataFrame([{"loss": "reference", "imbalance factor": 100.0,
                               "test acc (%)": "99.00", "test error (%)": "1.00",
                               "rarest class acc (%)": "—", "n": 1}])
    table = pd.concat([shown, reference], ignore_index=True)
    return [Table(
        name="accuracy_by_loss",
        frame=table,
        caption=f"Test accuracy on {data_caption(records)} by loss and imbalance factor "
                "(mean ± sd over repeats).",
        best={"test acc (%)": "max", "test error (%)": "min", "rarest class acc (%)": "max"},
        note="Fixture numbers for tests, not results; the reference row is excluded from best.",
        reference_rows={len(table) - 1},
    )]


# --- golden files ---------------------------------------------------------------------

def test_golden_outputs_match(records: list[dict], tmp_path: Path) -> None:
    written = write_outputs(records, fixture_summary(records), tmp_path)
    names = [p.name for p in written]
    assert names == ["records.csv", "accuracy_by_loss.csv", "accuracy_by_loss.tex",
                     "accuracy_by_loss.md", "index.md", "outputs.json"]
    if os.environ.get("HARNESS_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        for path in written:
            shutil.copyfile(path, GOLDEN / path.name)
    for path in written:
        golden = GOLDEN / path.name
        assert golden.exists(), f"missing {golden}; run with HARNESS_UPDATE_GOLDEN=1"
        assert path.read_text(encoding="utf-8") == golden.read_text(encoding="utf-8"), (
            f"{path.name} differs from {golden}; if intended, regenerate with "
            "HARNESS_UPDATE_GOLDEN=1 and review the diff"
        )


def test_golden_table_marks_best_and_skips_reference() -> None:
    md = (GOLDEN / "accuracy_by_loss.md").read_text(encoding="utf-8")
    tex = (GOLDEN / "accuracy_by_loss.tex").read_text(encoding="utf-8")
    # cb_focal at factor 10 is the best run in the fixture; the 99.00 reference is not bold.
    assert "**78.77 ± 0.52**" in md and "**99.00**" not in md
    assert r"\textbf{78.77 $\pm$ 0.52}" in tex and r"\textbf{99.00}" not in tex
    assert "cb\\_focal" in tex and "(\\%)" in tex and "±" not in tex
    assert "Table: Test accuracy on CIFAR-10 (JPEG q75 copy)" in md


# --- records_frame ----------------------------------------------------------------------

def test_records_frame_layout(records: list[dict]) -> None:
    frame = records_frame(records)
    assert len(frame) == 9
    assert list(frame.columns[:6]) == ["study", "profile", "trial_id", "config_hash", "seed",
                                       "status"]
    for column in ["config.loss.beta", "config.model.blocks", "final.test_acc", "data.source",
                   "num_params", "per_class.0", "per_class.9"]:
        assert column in frame.columns
    # ce has no beta: NaN, not a missing column or a made-up default.
    assert frame.loc[frame["config.loss"] == "ce", "config.loss.beta"].isna().all()
    assert frame["config.milestones"].iloc[0] == (2,)
    keys = list(zip(frame["config_hash"], frame["config.repeat"], strict=True))
    assert keys == sorted(keys)


def test_records_frame_ignores_input_order(records: list[dict]) -> None:
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    pd.testing.assert_frame_equal(records_frame(shuffled), records_frame(records))


def test_long_frames(records: list[dict]) -> None:
    history = history_frame(records)
    assert len(history) == 9 * 3 and {"epoch", "test_acc", "config.loss"} <= set(history.columns)
    per_class = per_class_frame(records)
    assert len(per_class) == 9 * 10
    first = per_class.iloc[0]
    assert (first["class"], first["class_name"], first["train_count"]) == (0, "airplane", 5000)


def test_load_records_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="broken.json"):
        load_records(tmp_path)
    (tmp_path / "broken.json").write_text('{"schema_version": 2, "config": {}, "status": "x"}')
    with pytest.raises(DataError, match="schema_version"):
        load_records(tmp_path)
    with pytest.raises(DataError, match="no such records folder"):
        load_records(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no trial records"):
        load_records(tmp_path / "empty")


# --- mean_sd and formatting -----------------------------------------------------------------

def test_mean_sd_hand_computed() -> None:
    frame = pd.DataFrame({
        "loss": ["ce", "ce", "ce", "cb", "focal"],
        "beta": [np.nan, np.nan, np.nan, 0.99, np.nan],
        "acc": [1.0, 2.0, 3.0, 5.0, 4.0],
    })
    out = mean_sd(frame, ["loss"], ["acc"])
    assert list(out.columns) == ["loss", "acc_mean", "acc_sd", "n"]
    rows = {r.loss: r for r in out.itertuples()}
    assert rows["ce"].acc_mean == 2.0 and rows["ce"].acc_sd == 1.0 and rows["ce"].n == 3
    assert rows["cb"].acc_mean == 5.0 and math.isnan(rows["cb"].acc_sd) and rows["cb"].n == 1
    # A NaN key (an option a loss lacks) is a group of its own, not dropped.
    by_beta = mean_sd(frame, ["beta"], ["acc"])
    assert by_beta["n"].tolist() == [1, 4]
    assert mean_sd(frame, [], ["acc"])["n"].tolist() == [5]


def test_format_mean_sd() -> None:
    assert format_mean_sd(0.912345, 0.00123, scale=100) == "91.23 ± 0.12"
    assert format_mean_sd(0.912345, float("nan"), scale=100) == "91.23"
    assert format_mean_sd(float("nan"), 0.1) == "—"
    assert format_mean_sd(-0.0001, 0.0, digits=2) == "0.00 ± 0.00"
    assert format_mean_sd(3.14159, 0.5, digits=1) == "3.1 ± 0.5"


# --- tables ------------------------------------------------------------------------------

def hand_table() -> Table:
    frame = pd.DataFrame({
        "method": ["a", "b", "c", "paper"],
        "acc": ["91.23 ± 0.12", "92.00 ± 1.00", "—", "99.00"],
        "error": [8.77, 8.0, 8.0, 1.0],
    })
    return Table("hand", frame, "Hand table", best={"acc": "max", "error": "min"},
                 reference_rows={3})


def test_best_cells_max_min_ties_and_reference() -> None:
    best = best_cells(hand_table())
    assert best["acc"] == {1}
    assert best["error"] == {1, 2}  # a tie: both bold; the paper's 1.0 is a reference row
    table = hand_table()
    table.reference_rows = frozenset()
    assert best_cells(table) == {"acc": {3}, "error": {3}}


def test_best_rendered_bold() -> None:
    tex, md = render_latex(hand_table()), render_markdown(hand_table())
    assert r"\textbf{92.00 $\pm$ 1.00}" in tex and r"\textbf{99.00}" not in tex
    assert "**92.00 ± 1.00**" in md and "**99.00**" not in md and "**1**" not in md
    assert tex.count(r"\midrule") == 2  # header rule plus the rule before the reference row
    for part in (r"\toprule", r"\bottomrule", r"\caption{Hand table}", r"\label{tab:hand}",
                 r"\begin{table}", r"\begin{tabular}{lrr}"):
        assert part in tex


def test_parse_number() -> None:
    assert parse_number("91.23 ± 0.12") == 91.23
    assert parse_number("−1.5") == -1.5
    assert parse_number("45%") == 45.0
    assert parse_number(3) == 3.0
    assert parse_number("—") is None and parse_number(float("nan")) is None
    assert parse_number(True) is None


def test_latex_escape() -> None:
    assert latex_escape("a_b & 50% $x #1 {y}") == r"a\_b \& 50\% \$x \#1 \{y\}"
    assert latex_escape("~^\\") == r"\textasciitilde{}\textasciicircum{}\textbackslash{}"
    # Dashes as commands: a "--" in the .tex is then always a flag lost to an en dash.
    assert latex_escape("1.0 ± 0.1 — β") == r"1.0 $\pm$ 0.1 \textemdash{} $\beta$"


def test_markdown_escapes_pipes() -> None:
    table = Table("pipes", pd.DataFrame({"x": ["a|b", "c*d"]}), "cap")
    md = render_markdown(table)
    assert "| a\\|b |" in md and "| c\\*d |" in md


def test_table_validation() -> None:
    frame = pd.DataFrame({"acc": [1.0]})
    with pytest.raises(ValueError, match="not in the frame"):
        Table("t", frame, "c", best={"missing": "max"})
    with pytest.raises(ValueError, match="'max' or 'min'"):
        Table("t", frame, "c", best={"acc": "largest"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="reference rows"):
        Table("t", frame, "c", reference_rows={7})
    with pytest.raises(ValueError, match="output name"):
        Table("../escape", frame, "c")


def test_write_outputs_rejects_name_clash(records: list[dict], tmp_path: Path) -> None:
    table = Table("records", pd.DataFrame({"a": [1]}), "clash")
    with pytest.raises(ValueError, match="records.csv"):
        write_outputs(records, [table], tmp_path)
    assert list(tmp_path.iterdir()) == []  # checked before anything was written


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    paths = write_table(hand_table(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hand.csv", "hand.md", "hand.tex"]
    assert all(p.stat().st_size > 0 for p in paths)
    target = tmp_path / "hand.csv"
    before = target.read_text()
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a tab")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hand.csv", "hand.md", "hand.tex"]


# --- captions ---------------------------------------------------------------------------

def _record(source: str | None, dataset: str = "cifar10") -> dict:
    data = {"dataset": dataset} if source is None else {"dataset": dataset, "source": source}
    return {"schema_version": 1, "status": "completed", "config": {"dataset": dataset},
            "data": data}


def test_data_caption_names_each_source(records: list[dict]) -> None:
    assert data_caption([_record("cifar10-jpeg-q75")]) == "CIFAR-10 (JPEG q75 copy)"
    assert data_caption([_record("cifar10")]) == "CIFAR-10"
    assert data_caption([_record("sklearn-digits", "digits")]) == "scikit-learn digits (8x8)"
    assert data_caption([_record("cifar10-jpeg-q90")]) == "CIFAR-10 (JPEG q90 copy)"
    both = data_caption([_record("cifar10"), _record("cifar10-jpeg-q75"), _record("cifar10")])
    assert both == "CIFAR-10 and CIFAR-10 (JPEG q75 copy)"
    assert data_caption([_record(None)]) == "cifar10 (source not recorded)"
    assert data_caption(records_frame(records)) == data_caption(records)


# --- figures ------------------------------------------------------------------------------

def _dominated(points: np.ndarray, i: int) -> bool:
    p = points[i]
    return any((q[0] <= p[0] and q[1] >= p[1]) and (q[0] < p[0] or q[1] > p[1])
               for q in points)


def test_pareto_front_hand_made() -> None:
    frame = pd.DataFrame({
        "macs": [1.0, 2.0, 2.0, 3.0, 4.0, 0.5, np.nan, 4.0],
        "acc": [0.5, 0.7, 0.6, 0.7, 0.9, 0.4, 1.0, 0.9],
    }, index=list("ABCDEFGH"))
    front = pareto_front(frame, "macs", "acc")
    assert front[front].index.tolist() == ["A", "B", "E", "F", "H"]
    # Flip both goals: now larger x and smaller y are better.
    flipped = pareto_front(frame, "macs", "acc", maximize_y=False, minimize_x=False)
    assert flipped[flipped].index.tolist() == ["A", "C", "D", "E", "F", "H"]


def test_pareto_front_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    points = rng.integers(0, 8, size=(60, 2)).astype(float)  # many ties on purpose
    front = pareto_front(pd.DataFrame(points, columns=["x", "y"]), "x", "y")
    expected = [not _dominated(points, i) for i in range(len(points))]
    assert front.tolist() == expected


@pytest.mark.slow
def test_figures_write_deterministic_png(records: list[dict], tmp_path: Path) -> None:
    frame = completed(records_frame(records))
    history = history_frame(records)
    per_class = per_class_frame(records)

    def build() -> list[Plot]:
        return [
            Plot("curves", line_with_bands(history, "epoch", "test_acc", hue="config.loss")),
            Plot("pareto", scatter_with_pareto(frame, "train_seconds", "final.test_acc",
                                               hue="config.imbalance_factor",
                                               label="config.loss")),
            Plot("per_class", per_class_bars(per_class, hue="config.loss")),
            Plot("confusion", confusion_heatmap(records[1]["confusion_matrix"],
                                                records[1]["class_names"])),
        ]

    first = [write_figure(p.figure, tmp_path / "a", p.name) for p in build()]
    second = [write_figure(p.figure, tmp_path / "b", p.name) for p in build()]
    for a, b in zip(first, second, strict=True):
        data = a.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
        assert data == b.read_bytes(), f"{a.name} is not byte-identical on rebuild"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "confusion.png", "curves.png", "pareto.png", "per_class.png"]


def test_confusion_heatmap_checks_shape() -> None:
    with pytest.raises(ValueError, match="does not match"):
        confusion_heatmap([[1, 2], [3, 4]], ["a", "b", "c"])


def test_a_table_of_sentences_wraps_its_text_columns_in_latex() -> None:
    frame = pd.DataFrame({"claim": [1], "computed": ["a long sentence " * 8], "n": [3]})
    table = Table("sentences", frame, "Sentences.", column_widths={"computed": 0.4})
    latex = render_latex(table)
    assert r"\begin{tabular}{r>{\raggedright\arraybackslash}p{0.4\linewidth}r}" in latex
    # Without widths the layout wraps the long text column itself, at the body's size.
    plain = render_latex(Table("sentences", frame, "Sentences."))
    assert r"\begin{tabular}{r>{\raggedright\arraybackslash}p{" in plain
    assert r"\footnotesize" not in plain and r"\small" not in plain


@pytest.mark.parametrize("widths", [{"missing": 0.3}, {"computed": 0.0}, {"computed": 1.5}])
def test_column_widths_must_name_a_column_and_a_fraction(widths) -> None:
    frame = pd.DataFrame({"computed": ["x"]})
    with pytest.raises(ValueError, match="column_widths"):
        Table("sentences", frame, "Sentences.", column_widths=widths)
