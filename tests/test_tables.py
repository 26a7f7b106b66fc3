import math

import pandas as pd
import pytest

from cnnstudy.tables import COLUMNS, summary_table, write_summary
from helpers import MODELS

REPORTED = {
    "baseline": {"test_accuracy": 0.6203, "minutes": 14},
    "batchnorm": {"test_accuracy": 0.6631, "minutes": 16},
    "dropout": {"test_accuracy": 0.6352, "minutes": 15},
    "augmentation": {"test_accuracy": 0.6501, "minutes": 17},
    "combined": {"test_accuracy": 0.6980, "minutes": 20},
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
# the offline demo's case: bn_frozen from a random start
PRETRAINED = {"resnet18_bn_frozen": False, "resnet18_bn_unfrozen": True}


def history(epochs, seconds):
    return pd.DataFrame({"epoch": range(1, epochs + 1), "epoch_seconds": [seconds] * epochs})


def inputs(seeds=1, combined_accuracies=(0.70, 0.74)):
    metrics, summaries, histories = {}, {}, {}
    for model in MODELS:
        pretrained = PRETRAINED.get(model)
        accuracies = list(combined_accuracies[:seeds]) if model == "combined" else [ACCURACY[model]] * seeds
        metrics[model] = [{"model": model, "pretrained": pretrained, "accuracy": a} for a in accuracies]
        summaries[model] = [
            {"model": model, "pretrained": pretrained, "best_epoch": 4 + seed} for seed in range(seeds)
        ]
        histories[model] = [history(6 + seed, 30.0 * (seed + 1)) for seed in range(seeds)]
    return metrics, summaries, histories


def test_one_row_per_model_with_the_metrics_values():
    frame = summary_table(MODELS, *inputs(), REPORTED, 0.60)

    assert list(frame.columns) == COLUMNS
    assert len(frame) == len(MODELS)
    assert [name.split(" ")[0] for name in frame["configuration"]] == MODELS
    assert frame["test_accuracy"].tolist() == pytest.approx([ACCURACY[m] for m in MODELS])
    assert frame["test_accuracy_std"].isna().all() and (frame["seeds"] == 1).all()
    assert frame["training_minutes"].tolist() == pytest.approx([6 * 30.0 / 60] * len(MODELS))  # measured
    assert (frame["best_epoch"] == 4).all() and (frame["epochs_run"] == 6).all()
    assert frame["reported_test_accuracy"].tolist()[:5] == [REPORTED[m]["test_accuracy"] for m in MODELS[:5]]
    assert frame["reported_minutes"].tolist()[:5] == [14, 16, 15, 17, 20]
    assert frame[["reported_test_accuracy", "reported_minutes"]].iloc[5:].isna().all().all()


def test_random_init_resnet_is_labelled_not_pretrained():
    frame = summary_table(MODELS, *inputs(), REPORTED, 0.60).set_index(pd.Index(MODELS))

    assert frame.loc["resnet18_bn_frozen", "configuration"] == "resnet18_bn_frozen (not pretrained)"
    assert frame.loc["resnet18_bn_unfrozen", "configuration"] == "resnet18_bn_unfrozen"
    assert frame.loc["combined", "configuration"] == "combined"  # CNNs carry pretrained None


def test_meets_target_is_test_accuracy_at_or_above_the_target():
    frame = summary_table(MODELS, *inputs(), REPORTED, 0.60).set_index(pd.Index(MODELS))

    assert frame["meets_target"].to_dict() == {model: ACCURACY[model] >= 0.60 for model in MODELS}
    assert frame.loc["batchnorm", "meets_target"] and not frame.loc["dropout", "meets_target"]


def test_two_seeds_give_mean_and_sample_std():
    frame = summary_table(MODELS, *inputs(seeds=2), REPORTED, 0.60).set_index(pd.Index(MODELS))

    combined = frame.loc["combined"]
    assert combined["seeds"] == 2
    assert combined["test_accuracy"] == pytest.approx(0.72)
    assert combined["test_accuracy_std"] == pytest.approx(math.sqrt(2 * 0.02**2))  # ddof=1
    assert combined["training_minutes"] == pytest.approx((6 * 30 / 60 + 7 * 60 / 60) / 2)
    assert combined["best_epoch"] == 4 and combined["epochs_run"] == 6  # the primary seed's
    assert frame.loc["baseline", "test_accuracy_std"] == pytest.approx(0.0)


def test_write_summary_csv_and_markdown(tmp_path):
    frame = summary_table(MODELS, *inputs(seeds=2), REPORTED, 0.60)

    write_summary(frame, tmp_path / "summary.csv", tmp_path / "summary.md", "imagenette2-160", 0.60)

    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "summary.csv"), frame, check_dtype=False)
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("# ") and "imagenette2-160" in text.splitlines()[0]
    assert "≥ 60%" in text
    assert "| combined " in text and "72.00 ± 2.83 %" in text
    assert "62.03%" in text  # the study's baseline, as a percentage
    assert "resnet18_bn_frozen (not pretrained)" in text and "random init" in text
    assert "50 epochs on the full Imagenette-160" in text
    assert text.count("\n|") == len(MODELS) + 2  # header, separator, one line per model
    assert not list(tmp_path.glob("*.part"))
