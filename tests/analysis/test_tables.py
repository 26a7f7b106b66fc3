import json
import math
import random
from pathlib import Path

import pandas as pd
import pytest

from cnnstudy.analysis.claims import CLAIM_COLUMNS, COMPARISON_COLUMNS, PAIR_COLUMNS
from cnnstudy.analysis.claims_tables import write_claims, write_comparisons
from cnnstudy.analysis.tables import (
    COLUMNS,
    data_banner,
    per_class_table,
    summary_table,
    write_per_class,
    write_summary,
)
from cnnstudy.figures.sweeps import base_result, sweep_table, write_sweep_table
from helpers import MODELS

STUDY_MD5 = "e793b78cc4c9e9a4ccc0c1155377a412"
STUDY = {
    "dataset_md5": STUDY_MD5,
    "image_size": 160,
    "target_accuracy": 0.60,
    "reported": {
        "baseline": {"test_accuracy": 0.6203, "minutes": 14},
        "batchnorm": {"test_accuracy": 0.6631, "minutes": 16},
        "dropout": {"test_accuracy": 0.6352, "minutes": 15},
        "augmentation": {"test_accuracy": 0.6501, "minutes": 17},
        "combined": {"test_accuracy": 0.6980, "minutes": 20},
    },
}
ACCURACY = {
    "baseline": 0.55,
    "batchnorm": 0.60,  # exactly on the target: meets it
    "dropout": 0.5999,
    "augmentation": 0.61,
    "combined": 0.70,
    "resnet18_bn_frozen": 0.40,
    "resnet18_bn_unfrozen": 0.90,
}
PRETRAINED = {"resnet18_bn_frozen": False, "resnet18_bn_unfrozen": True}  # the demo's frozen one: random


def write_run(root, model, seed, accuracy, md5=STUDY_MD5, image_size=160, hyperparameters=None):
    """A run's folder as training and evaluation leave it; returns (metrics, summary, history) paths."""
    folder = root / f"{model.replace('/', '_')}-{seed}"
    folder.mkdir(parents=True)
    pretrained = PRETRAINED.get(model)
    if hyperparameters is None and model.startswith("resnet18_"):  # as fine-tuning records its mode
        hyperparameters = {"mode": model.removeprefix("resnet18_")}
    dataset = "imagenette2-160" if md5 == STUDY_MD5 else "imagenette-demo"
    metrics = {
        "model": model, "seed": seed, "pretrained": pretrained, "dataset": dataset, "archive_md5": md5,
        "image_size": image_size, "n_images": 5, "accuracy": accuracy,
        "accuracy_ci95": [accuracy - 0.02, accuracy + 0.01],
        "classes": ["tench", "church"],
        "per_class": {"tench": {"precision": accuracy, "recall": 0.5, "f1": 0.5, "support": 3},
                      "church": {"precision": 0.25, "recall": 1.0, "f1": 0.4, "support": 2}},
    }  # fmt: skip
    summary = {
        "model": model, "seed": seed, "pretrained": pretrained, "best_epoch": 4 + seed, "train_seconds": 60.0 * (seed + 1),
        "wall_seconds": 120.0 * (seed + 1), "best_val_accuracy": accuracy + 0.05, "train_gflop_per_image": 24.0,
        "peak_rss_mb": 1000.0 + seed, "hyperparameters": hyperparameters or {},
    }  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "summary.json").write_text(json.dumps(summary))
    pd.DataFrame({"epoch": range(1, 7 + seed)}).to_csv(folder / "history.csv", index=False)
    return folder / "metrics.json", folder / "summary.json", folder / "history.csv"


def study_runs(root, seeds=(0,), combined=(0.70, 0.74), shuffle=True, **options):
    runs = [
        write_run(root, model, seed, combined[i] if model == "combined" else ACCURACY[model], **options)
        for model in MODELS
        for i, seed in enumerate(seeds)
    ]
    if shuffle:  # the table must group by what the files say, not by their order
        random.Random(0).shuffle(runs)
    return [list(paths) for paths in zip(*runs, strict=True)]


def test_one_row_per_model_in_config_order_whatever_the_input_order(tmp_path):
    frame = summary_table(*study_runs(tmp_path), MODELS, STUDY)
    assert list(frame.columns) == COLUMNS
    assert frame["model"].tolist() == MODELS
    assert frame["test_accuracy"].tolist() == pytest.approx([ACCURACY[m] for m in MODELS])
    assert frame["test_accuracy_ci_low"].tolist() == pytest.approx([ACCURACY[m] - 0.02 for m in MODELS])
    assert frame["test_accuracy_std"].isna().all() and (frame["seeds"] == 1).all()
    assert (frame["train_minutes"] == 1.0).all() and (frame["job_minutes"] == 2.0).all()  # the loop, the job
    assert (frame["best_epoch"] == 4).all() and (frame["epochs_run"] == 6).all()
    assert frame["reported_minutes"].tolist()[:5] == [14, 16, 15, 17, 20]
    assert frame[["reported_test_accuracy", "reported_minutes"]].iloc[5:].isna().all().all()
    assert frame["comparable_with_study"].all()


def test_random_init_resnet_is_labelled_and_target_is_met_at_or_above(tmp_path):
    frame = summary_table(*study_runs(tmp_path), MODELS, STUDY).set_index("model")
    assert frame.loc["resnet18_bn_frozen", "configuration"] == "resnet18_bn_frozen (not pretrained)"
    assert frame.loc["resnet18_bn_unfrozen", "configuration"] == "resnet18_bn_unfrozen"
    assert frame["meets_target"].to_dict() == {model: ACCURACY[model] >= 0.60 for model in MODELS}


def test_two_seeds_are_grouped_by_the_seed_recorded_in_each_file(tmp_path):
    frame = summary_table(*study_runs(tmp_path, seeds=(0, 3)), MODELS, STUDY).set_index("model")
    combined = frame.loc["combined"]
    assert combined["seeds"] == 2 and combined["test_accuracy"] == pytest.approx(0.72)
    assert combined["test_accuracy_std"] == pytest.approx(math.sqrt(2 * 0.02**2))  # ddof=1
    assert combined["train_minutes"] == pytest.approx((1 + 4) / 2)
    assert combined["best_epoch"] == 4 and combined["epochs_run"] == 6  # the lowest seed's
    assert frame.loc["baseline", "test_accuracy_std"] == pytest.approx(0.0)


def test_a_run_given_twice_is_an_error(tmp_path):
    metrics, summaries, histories = study_runs(tmp_path / "a", shuffle=False)
    again = write_run(tmp_path / "b", "baseline", 0, 0.3)
    with pytest.raises(ValueError, match="two results for baseline seed 0"):
        summary_table(metrics + [again[0]], summaries + [again[1]], histories + [again[2]], MODELS, STUDY)


@pytest.mark.parametrize(
    "md5, size, comparable", [(STUDY_MD5, 160, True), ("0" * 32, 160, False), (STUDY_MD5, 32, False)]
)
def test_the_studys_numbers_are_comparable_only_on_its_archive_and_size(tmp_path, md5, size, comparable):
    frame = summary_table(*study_runs(tmp_path, md5=md5, image_size=size), MODELS, STUDY)
    write_summary(frame, tmp_path / "s.csv", tmp_path / "s.md", tmp_path / "s.html", STUDY)
    assert frame["comparable_with_study"].all() == comparable
    assert ("not comparable" in (tmp_path / "s.md").read_text()) != comparable


def markdown_rows(text):
    """The Markdown table of ``text`` as lists of cells: the header first, then the rows."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[:1] + lines[2:]]


def test_write_summary_csv_markdown_and_html(tmp_path):
    frame = summary_table(*study_runs(tmp_path, seeds=(0, 1)), MODELS, STUDY)
    write_summary(frame, tmp_path / "summary.csv", tmp_path / "summary.md", tmp_path / "summary.html", STUDY)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "summary.csv"), frame, check_dtype=False)
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("# Results\n\nTest accuracy on the test set (Imagenette's val folder, 5 images)")
    assert "≥ 60 %" in text
    assert "72.0 % (70.0–73.0 %)" in text and "± 2.8 pp (2)" in text  # one format: one decimal, with "%"
    assert "62.0 %, 14 min" in text and "train min" in text and "job_minutes" in text
    assert "resnet18_bn_frozen (not pretrained)" in text and "random start" in text
    assert text.count("\n|") == len(MODELS) + 2  # header, separator, one line per model
    page = (tmp_path / "summary.html").read_text()
    assert "<table" in page and "72.0\u00a0% (70.0–73.0\u00a0%)" in page
    assert not list(tmp_path.glob(".*.part"))


def test_summary_is_narrow_and_says_what_each_resnet_mode_trains(tmp_path):
    frame = summary_table(*study_runs(tmp_path), MODELS, STUDY)
    write_summary(frame, tmp_path / "s.csv", tmp_path / "s.md", tmp_path / "s.html", STUDY)
    text = (tmp_path / "s.md").read_text()
    header, *rows = markdown_rows(text)
    assert header == [
        "model",
        "test accuracy (95 % CI)",
        "train min",
        "epochs: best / run",
        "study",
        "≥ 60 %",
    ]
    assert rows[0] == ["baseline", "55.0 % (53.0–56.0 %)", "1.0", "4 / 6", "62.0 %, 14 min", "no"]
    assert all(any(cell not in ("", "—") for cell in column) for column in zip(*rows, strict=True))
    assert "*resnet18_bn_frozen*: head only; *resnet18_bn_unfrozen*: head + BatchNorm" in text


@pytest.mark.parametrize("on_study_data", [True, False])
def test_every_table_opens_with_the_data_banner_only_off_the_studys_data(tmp_path, on_study_data):
    options = {} if on_study_data else {"md5": "0" * 32, "image_size": 32}
    metrics, summaries, histories = study_runs(tmp_path / "runs", **options)
    frame = summary_table(metrics, summaries, histories, MODELS, STUDY)
    write_summary(frame, tmp_path / "s.csv", tmp_path / "s.md", tmp_path / "s.html", STUDY)
    per_class = per_class_table(metrics, MODELS)
    write_per_class(per_class, tmp_path / "p.csv", tmp_path / "p.md", tmp_path / "p.html", STUDY)
    banner = data_banner([json.loads(Path(path).read_text()) for path in metrics], STUDY)
    write_comparisons(
        comparisons(seeds=[0]), tmp_path / "c.csv", tmp_path / "c.md", tmp_path / "c.html", banner
    )
    assert (banner == "") == on_study_data
    for name in ("s", "p", "c"):
        text, page = (tmp_path / f"{name}.md").read_text(), (tmp_path / f"{name}.html").read_text()
        opens = text.split("\n\n")[1].startswith("> **Not the study's data.** This run used imagenette-demo")
        assert opens != on_study_data, name
        assert ('<p class="banner">' in page) != on_study_data, name
    summary = (tmp_path / "s.md").read_text()
    assert ("Imagenette's val folder" in summary) == on_study_data
    assert ("a *no* says nothing about the code" in summary) != on_study_data  # why every row says "no"


def test_a_summary_read_back_from_its_csv_still_carries_the_banner(tmp_path):
    frame = summary_table(*study_runs(tmp_path, md5="0" * 32), MODELS, STUDY)
    frame.to_csv(tmp_path / "s.csv", index=False)
    write_summary(pd.read_csv(tmp_path / "s.csv"), tmp_path / "t.csv", tmp_path / "t.md", None, STUDY)
    assert "> **Not the study's data.**" in (tmp_path / "t.md").read_text()


def test_per_class_table_averages_seeds_per_model(tmp_path):
    metrics, _, _ = study_runs(tmp_path, seeds=(0, 1))
    frame = per_class_table(metrics, MODELS)
    assert len(frame) == 2 * len(MODELS) and (frame["seeds"] == 2).all()
    tench = frame[(frame["model"] == "combined") & (frame["class"] == "tench")].iloc[0]
    assert tench["precision"] == pytest.approx(0.72) and tench["recall"] == 0.5
    write_per_class(frame, tmp_path / "p.csv", tmp_path / "p.md", tmp_path / "p.html")
    assert ["combined", "tench (3)", "0.72", "0.50", "0.50"] in markdown_rows((tmp_path / "p.md").read_text())


def test_per_class_is_long_with_no_empty_column_and_a_dash_for_a_never_predicted_class(tmp_path):
    metrics, _, _ = study_runs(tmp_path, shuffle=False)
    for path in metrics:  # every model predicted both classes, but dropout never said "church"
        never = Path(path).parent.name.startswith("dropout")
        counts = [[3, 0], [2, 0]] if never else [[2, 1], [1, 1]]
        confusion = pd.DataFrame(
            counts, index=pd.Index(["tench", "church"], name="true"), columns=["tench", "church"]
        )
        confusion.to_csv(Path(path).with_name("confusion.csv"))
        if never:  # as scikit-learn scores a class never predicted: zero_division=0
            record = json.loads(Path(path).read_text())
            record["per_class"]["church"] |= {"precision": 0.0, "recall": 0.0, "f1": 0.0}
            Path(path).write_text(json.dumps(record))
    frame = per_class_table(metrics, MODELS)
    dropout = frame[frame["model"] == "dropout"].set_index("class")
    assert math.isnan(dropout.loc["church", "precision"]) and dropout.loc["church", "predicted"] == 0
    assert frame[frame["model"] != "dropout"]["precision"].notna().all()  # 0.25: predicted, not always right
    write_per_class(frame, tmp_path / "p.csv", tmp_path / "p.md", tmp_path / "p.html", STUDY)
    header, *rows = markdown_rows((tmp_path / "p.md").read_text())
    assert header == ["model", "class (test images)", "precision", "recall", "F1"]
    assert len(rows) == 2 * len(MODELS)  # one row per model and class
    assert all(all(cell != "" for cell in row) for row in rows) and all(name for name in header)
    assert ["dropout", "church (2)", "—", "0.00", "0.00"] in rows
    assert ["baseline", "church (2)", "0.25", "1.00", "0.40"] in rows
    assert "never predicted the class" in (tmp_path / "p.md").read_text()
    elsewhere = per_class_table(
        metrics, MODELS, confusion_paths=[Path(p).with_name("confusion.csv") for p in metrics]
    )
    pd.testing.assert_frame_equal(elsewhere, frame)


def comparisons(seeds):
    """A comparisons frame as pairwise_comparisons returns it: every pair of three models, per seed."""
    rows = []
    for a, b in [("baseline", "batchnorm"), ("baseline", "resnet18_bn_unfrozen"), ("batchnorm", "combined")]:
        for seed in seeds:
            rows.append(
                {"model_a": a, "model_b": b, "seed": seed, "n_images": 300, "accuracy_a": 0.50667,
                 "accuracy_b": 0.37667, "difference": 0.13, "ci_low": 0.0667, "ci_high": 0.1967,
                 "a_only_correct": 72, "b_only_correct": 33, "p_mcnemar": 1.8e-4, "p_value": 1.8e-4,
                 "method": "paired bootstrap over images + exact McNemar" if seed != "mean" else "crossed"}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def test_comparisons_say_once_what_every_row_shares(tmp_path):
    write_comparisons(comparisons(seeds=[0]), tmp_path / "c.csv", tmp_path / "c.md", tmp_path / "c.html")
    text = (tmp_path / "c.md").read_text()
    header, *rows = markdown_rows(text)
    assert header == ["A", "B", "accuracy A / B", "A − B, pp (95 % CI)", "only A / only B right", "p"]
    assert rows[0] == [
        "baseline",
        "batchnorm",
        "50.7 / 37.7 %",
        "+13.0 (+6.7 to +19.7)",
        "72 / 33",
        "1.8e-04",
    ]
    assert "seed 0, 300 test images" in text and "exact McNemar" in text
    assert len(pd.read_csv(tmp_path / "c.csv")) == 3
    write_comparisons(comparisons(seeds=[0, 1, "mean"]), tmp_path / "c.csv", tmp_path / "c.md", None)
    header, *rows = markdown_rows((tmp_path / "c.md").read_text())
    assert header[2] == "seed" and [row[2] for row in rows[:3]] == ["0", "1", "mean"]


def test_claims_table_fits_in_four_columns(tmp_path):
    claims = pd.DataFrame(
        [{"id": "bn", "text": "Batch normalisation improves test accuracy.", "measure": "test_accuracy",
          "outcome": "better", "models": ["batchnorm", "baseline"], "margin": math.nan, "effect": -0.13,
          "ci_low": -0.197, "ci_high": -0.067, "p_value": 1.8e-4, "p_holm": 7.1e-4, "seeds": 1,
          "verdict": "not applicable", "reason": "not the study's data; as measured: contradicted",
          "seeds_to_settle": "—"}],
        columns=CLAIM_COLUMNS,
    )  # fmt: skip
    pairs = pd.DataFrame([{"claim_id": "bn", "confidence": 0.95, "alpha": 0.05}], columns=PAIR_COLUMNS)
    premise = "**This run did not use the study's data**: every claim is *not applicable*."
    write_claims(claims, pairs, tmp_path / "k.csv", tmp_path / "k.md", tmp_path / "k.html", premise)
    text = (tmp_path / "k.md").read_text()
    header, *rows = markdown_rows(text)
    assert header == ["claim (measure)", "effect (95 % CI)", "p (Holm p)", "verdict: reason"]
    assert rows[0] == [
        "Batch normalisation improves test accuracy. *(test accuracy)*",
        "-13.0 pp (-19.7 to -6.7)",
        "1.8e-04 (7.1e-04)",
        "**not applicable**: not the study's data; as measured: contradicted",
    ]
    assert text.split("\n\n")[1] == f"> {premise}" and "One seed per model." in text
    assert '<p class="banner"><strong>This run did not use' in (tmp_path / "k.html").read_text()


def test_sweep_table_has_one_row_per_grid_point_with_the_runs_own_values(tmp_path):
    sweep = {"model": "baseline", "grid": {"lr": [1.0e-4, 1.0e-3], "batch_size": [64]}}
    paths = []
    for seed in (0, 1):
        for lr, accuracy in ((1.0e-4, 0.5), (1.0e-3, 0.6)):
            point = f"s/lr~{lr:g}/batch_size~64"
            paths.append(
                write_run(
                    tmp_path, point, seed, accuracy + seed / 10, hyperparameters={"lr": lr, "batch_size": 64}
                )
            )
    random.Random(1).shuffle(paths)
    metrics, summaries, _ = zip(*paths, strict=True)
    frame = sweep_table(metrics, summaries, sweep)
    assert frame["lr"].tolist() == [1.0e-4, 1.0e-3] and (frame["batch_size"] == 64).all()  # grid order
    by_lr = frame.set_index("lr")
    assert by_lr.loc[1.0e-3, "test_accuracy"] == pytest.approx(0.65) and by_lr.loc[1.0e-3, "selected"]
    assert by_lr.loc[1.0e-4, "val_accuracy"] == pytest.approx(0.6) and by_lr.loc[1.0e-4, "seeds"] == 2
    base_runs = [
        write_run(
            tmp_path, "baseline", seed, 0.4 + seed / 10, hyperparameters={"lr": 3.0e-4, "batch_size": 32}
        )
        for seed in (0, 1)
    ]
    base_metrics, base_summaries, _ = zip(*base_runs, strict=True)
    base = base_result(base_metrics, base_summaries, sweep)
    assert (base["lr"], base["batch_size"], base["seeds"]) == (3.0e-4, 32, 2)
    assert base["val_accuracy"] == pytest.approx(0.5) and base["test_accuracy"] == pytest.approx(0.45)
    write_sweep_table(frame, "s", sweep, tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.html", base)
    text = (tmp_path / "t.md").read_text()
    assert "never used for selection" in text and "← best" in text
    assert "baseline as configured (lr = 0.0003, batch_size = 32): validation accuracy 50.00%" in text
