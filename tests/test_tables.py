import json
import math
import random

import pandas as pd
import pytest

from cnnstudy.sweeps import sweep_table, write_sweep_table
from cnnstudy.tables import COLUMNS, per_class_table, summary_table, write_per_class, write_summary
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
    metrics = {
        "model": model, "seed": seed, "pretrained": pretrained, "dataset": "imagenette2-160", "archive_md5": md5,
        "image_size": image_size, "accuracy": accuracy, "accuracy_ci95": [accuracy - 0.02, accuracy + 0.01],
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


def test_write_summary_csv_markdown_and_html(tmp_path):
    frame = summary_table(*study_runs(tmp_path, seeds=(0, 1)), MODELS, STUDY)
    write_summary(frame, tmp_path / "summary.csv", tmp_path / "summary.md", tmp_path / "summary.html", STUDY)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "summary.csv"), frame, check_dtype=False)
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("# Results") and "≥ 60%" in text
    assert "72.00% [70.0, 73.0]" in text and "± 2.83 pp (2)" in text
    assert "62.03%" in text and "training minutes (loop only)" in text and "job minutes" in text
    assert "resnet18_bn_frozen (not pretrained)" in text and "random start" in text
    assert text.count("\n|") == len(MODELS) + 2  # header, separator, one line per model
    page = (tmp_path / "summary.html").read_text()
    assert "<table" in page and "72.00% [70.0, 73.0]" in page
    assert not list(tmp_path.glob(".*.part"))


def test_per_class_table_averages_seeds_per_model(tmp_path):
    metrics, _, _ = study_runs(tmp_path, seeds=(0, 1))
    frame = per_class_table(metrics, MODELS)
    assert len(frame) == 2 * len(MODELS) and (frame["seeds"] == 2).all()
    tench = frame[(frame["model"] == "combined") & (frame["class"] == "tench")].iloc[0]
    assert tench["precision"] == pytest.approx(0.72) and tench["recall"] == 0.5
    write_per_class(frame, tmp_path / "p.csv", tmp_path / "p.md", tmp_path / "p.html")
    text = (tmp_path / "p.md").read_text()
    assert "tench (3)" in text and "0.72 / 0.50" in text


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
    write_sweep_table(frame, "s", sweep, tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.html")
    text = (tmp_path / "t.md").read_text()
    assert "never used for selection" in text and "← best" in text
