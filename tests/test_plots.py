import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from cnnstudy.plots import (
    _mark_epochs,
    _title,
    plot_comparison_accuracy,
    plot_comparison_curves,
    plot_comparison_transfer,
    plot_confusion,
    plot_curves,
    plot_dead_units,
    plot_gradients,
)

CLASSES = ["tench", "English springer", "cassette player", "chain saw", "church"]
CNNS = ["baseline", "batchnorm", "dropout", "augmentation", "combined"]
RESNETS = ["resnet18_bn_frozen", "resnet18_bn_unfrozen"]
# the offline demo's case: bn_frozen from a random start, bn_unfrozen with ImageNet weights
PRETRAINED = {**dict.fromkeys(CNNS), "resnet18_bn_frozen": False, "resnet18_bn_unfrozen": True}
REPORTED = {
    "baseline": {"test_accuracy": 0.6203, "minutes": 14},
    "combined": {"test_accuracy": 0.698, "minutes": 20},
}
GRADIENT_LAYERS = [
    ("conv1", "conv"),
    ("bn1", "batchnorm"),
    ("conv2", "conv"),
    ("fc1", "linear"),
    ("fc2", "linear"),
]


def write_model(root, model, index, epochs=8, configured=10):
    rng = np.random.default_rng(index)
    epoch = np.arange(1, epochs + 1)
    history = pd.DataFrame(
        {
            "epoch": epoch,
            "train_loss": 2.3 / np.sqrt(epoch),
            "train_accuracy": np.linspace(0.2, 0.9, epochs),
            "val_loss": 2.3 / np.sqrt(epoch) + 0.2,
            "val_accuracy": np.linspace(0.15, 0.6, epochs) + rng.uniform(0, 0.05, epochs),
            "lr": 1e-3,
            "epoch_seconds": 30.0,
            "images_per_second": 400.0,
        }
    )
    if model in CNNS:
        for layer in ("conv1", "conv2", "conv3", "fc1"):
            history[f"dead_{layer}"] = np.linspace(0, rng.uniform(0.05, 0.4), epochs)
    folder = root / "models" / model
    folder.mkdir(parents=True)
    history.to_csv(folder / "history.csv", index=False)

    edges = np.linspace(-1e-3, 1e-3, 13)
    gradients = pd.DataFrame(
        [
            (e, layer, kind, left, right, int(count))
            for e in (1, 5, epochs)
            for layer, kind in GRADIENT_LAYERS
            for left, right, count in zip(
                edges[:-1], edges[1:], rng.poisson(1000 * np.hanning(12)), strict=True
            )
        ],
        columns=["epoch", "layer", "kind", "bin_left", "bin_right", "count"],
    )
    gradients.to_csv(folder / "gradients.csv", index=False)
    summary = {
        "model": model,
        "dataset": "demo",
        "pretrained": PRETRAINED[model],
        "best_epoch": int(epoch[history["val_accuracy"].argmax()]),
        "stopped_epoch": epochs,
        "epochs_configured": configured,
        "early_stopping_patience": 2,
        "train_seconds": 240.0,
        "hyperparameters": {},
    }
    (folder / "summary.json").write_text(json.dumps(summary))

    evaluation = root / "eval" / model
    evaluation.mkdir(parents=True)
    counts = rng.integers(0, 5, (len(CLASSES), len(CLASSES))) + np.diag([20] * len(CLASSES))
    confusion = pd.DataFrame(counts, index=pd.Index(CLASSES, name="true"), columns=CLASSES)
    confusion.to_csv(evaluation / "confusion.csv")
    metrics = {
        "model": model,
        "dataset": "demo",
        "pretrained": PRETRAINED[model],
        "accuracy": float(np.trace(counts) / counts.sum()),
        "loss": 1.0,
        "n_images": int(counts.sum()),
        "checkpoint_epoch": summary["best_epoch"],
        "classes": CLASSES,
        "per_class": {},
        "macro_f1": 0.5,
    }
    (evaluation / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    for index, model in enumerate(CNNS + RESNETS):
        write_model(root, model, index)
    return root


def paths(root, kind, models):
    folder, name = {"history": ("models", "history.csv"), "metrics": ("eval", "metrics.json")}.get(
        kind, ("eval", "confusion.csv")
    )
    return {model: root / folder / model / name for model in models}


def assert_png(path, width, height):
    with Image.open(path) as image:
        assert image.size == (width, height)
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels != pixels[0, 0]).any(), "a single-colour image"
    assert not list(path.parent.glob("*.part"))


def test_title_says_when_a_model_is_not_pretrained():
    assert (
        _title("resnet18_bn_frozen", "demo", False)
        == "resnet18_bn_frozen on demo — not pretrained (random init)"
    )
    assert "pretrained" not in _title("resnet18_bn_frozen", "imagenette2-160", True)
    assert "pretrained" not in _title("combined", "imagenette2-160", None)  # CNNs carry None


@pytest.mark.parametrize("model", ["combined", "resnet18_bn_frozen", "resnet18_bn_unfrozen"])
def test_per_model_figures(results, tmp_path, model):
    models, evaluation = results / "models" / model, results / "eval" / model
    random_init = PRETRAINED[model] is False

    titles = plot_confusion(
        evaluation / "confusion.csv", evaluation / "metrics.json", tmp_path / "confusion.png"
    )
    assert_png(tmp_path / "confusion.png", 1500, 700)
    assert model in titles[0] and "demo" in titles[0]
    assert ("not pretrained (random init)" in titles[0]) is random_init

    titles = plot_curves(models / "history.csv", models / "summary.json", tmp_path / "curves.png")
    assert_png(tmp_path / "curves.png", 1300, 500)
    assert ("not pretrained (random init)" in titles[0]) is random_init

    titles = plot_gradients(models / "gradients.csv", models / "summary.json", tmp_path / "gradients.png")
    assert_png(tmp_path / "gradients.png", 1050, 650)  # five layers: 3 × 2 panels
    assert ("not pretrained (random init)" in titles[0]) is random_init
    assert titles[1:] == [f"{layer} ({kind})" for layer, kind in GRADIENT_LAYERS]


def test_curves_mark_the_best_epoch_and_an_early_stop():
    figure = Figure()
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    history = pd.DataFrame({"epoch": [1, 2, 3], "val_accuracy": [0.3, 0.5, 0.4]})

    _mark_epochs(ax, history, {"best_epoch": 2, "stopped_epoch": 3, "epochs_configured": 50})
    _mark_epochs(ax, history, {"best_epoch": 2, "stopped_epoch": 50, "epochs_configured": 50})

    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["best epoch (2)", "early stop (epoch 3 of 50)", "best epoch (2)"]


def test_dead_units_skips_models_without_dead_columns(results, tmp_path):
    titles = plot_dead_units(paths(results, "history", CNNS + RESNETS), tmp_path / "dead.png")

    assert_png(tmp_path / "dead.png", 1350, 750)  # five CNN panels: 3 × 2
    assert titles[1:] == CNNS


def test_comparison_accuracy(results, tmp_path):
    titles = plot_comparison_accuracy(
        paths(results, "metrics", CNNS + RESNETS), REPORTED, 0.60, tmp_path / "accuracy.png"
    )

    assert_png(tmp_path / "accuracy.png", 1250, 600)
    assert "resnet18_bn_frozen not pretrained (random init)" in titles[0]
    assert "unfrozen" not in titles[0]


def test_comparison_curves_label_random_init_from_the_summary_beside_each_history(results, tmp_path):
    titles = plot_comparison_curves(paths(results, "history", CNNS + RESNETS), tmp_path / "curves.png")

    assert_png(tmp_path / "curves.png", 1100, 600)
    assert "on demo" in titles[0] and "resnet18_bn_frozen not pretrained (random init)" in titles[0]


def test_comparison_transfer(results, tmp_path):
    models = ["combined", *RESNETS]

    titles = plot_comparison_transfer(
        paths(results, "history", models),
        paths(results, "confusion", models),
        paths(results, "metrics", models),
        tmp_path / "transfer.png",
    )

    assert_png(tmp_path / "transfer.png", 1500, 1100)
    assert "resnet18_bn_frozen not pretrained (random init)" in titles[0]
    panel_titles = titles[2:]  # after the suptitle and the curves' title: one confusion panel per model
    assert len(panel_titles) == 3 and "not pretrained (random init)" in panel_titles[1]
    assert "not pretrained" not in panel_titles[0] + panel_titles[2]
