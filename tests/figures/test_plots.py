"""The figures, drawn from fake run folders written in the workflow's formats (no training, no torch)."""

import json
import math
import random
import zlib

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.text import Text
from PIL import Image

from cnnstudy.base import settings
from cnnstudy.figures import style
from cnnstudy.figures.claims import VERDICT_MARKERS, draw_comparison_effects
from cnnstudy.figures.comparison import (
    draw_comparison_accuracy,
    draw_comparison_curves,
    draw_comparison_transfer,
    draw_dead_units,
    plot_comparison_accuracy,
    plot_comparison_curves,
    plot_comparison_transfer,
    plot_dead_units,
)
from cnnstudy.figures.gradients import draw_gradients, gradient_histogram, plot_gradients
from cnnstudy.figures.per_model import (
    CURVES,
    NOT_PRETRAINED,
    _save,
    _title,
    draw_confusion,
    draw_curves,
    plot_confusion,
    plot_curves,
    still_improving,
)
from cnnstudy.figures.style import DPI, MIN_FONT, PALETTE, WIDTH, model_colours, model_styles
from cnnstudy.figures.sweeps import draw_sweep, key_label
from helpers.figures import assert_nothing_clipped, legends

CLASSES = ["tench", "English springer", "cassette player", "chain saw", "church"]
STUDY_MD5 = "e793b78cc4c9e9a4ccc0c1155377a412"
DEMO_MD5 = "0123456789abcdef0123456789abcdef"
# model → (seeds, pretrained, dead-unit layers, gradient layers (name, kind, weights))
CNN_LAYERS = [
    ("conv1", "conv", 3456),
    ("bn1", "batchnorm", 64),
    ("conv2", "conv", 4608),
    ("fc1", "linear", 8000),
]
MODELS = {
    "baseline": ([0, 1], None, ["conv1", "conv2", "conv3", "fc1"], CNN_LAYERS),
    "batchnorm": ([0], None, ["conv1", "conv2", "fc1"], CNN_LAYERS),
    "combined": ([0, 1], None, ["conv1", "conv2", "conv3", "fc1"], CNN_LAYERS),
    "resnet18_bn_frozen": ([0], False, [], [("fc", "linear", 5120)]),
    "resnet18_bn_unfrozen": ([0, 1], True, [], [("bn1", "batchnorm", 64), ("fc", "linear", 5120)]),
}
CNNS = ["baseline", "batchnorm", "combined"]
ORDER = list(MODELS)
# the combined model's seed 1 stops early at epoch 7 of 10, before gradient epoch 10 is reached
EARLY = ("combined", 1)
LOG_EDGES = np.linspace(-9, 0, 9 * 4 + 1)  # 1e-9 … 1, four bins per decade


def study(md5=STUDY_MD5, image_size=160):
    return {
        "dataset_md5": md5,
        "image_size": image_size,
        "target_accuracy": 0.6,
        "reported": {
            "baseline": {"test_accuracy": 0.6203, "minutes": 14},
            "combined": {"test_accuracy": 0.698, "minutes": 20},
        },
    }


def bin_rows():
    """(low, high) of the fixed bins, most negative first, as the workflow writes them."""
    magnitudes = 10.0**LOG_EDGES
    negative = [(-magnitudes[i + 1], -magnitudes[i]) for i in reversed(range(len(magnitudes) - 1))]
    positive = [(magnitudes[i], magnitudes[i + 1]) for i in range(len(magnitudes) - 1)]
    return [(-math.inf, -1.0), *negative, (-1e-9, 1e-9), *positive, (1.0, math.inf)]


def histogram(rng, weights, zeros=0):
    """Counts of ``weights`` random gradients (log-normal magnitudes, random signs) in the fixed bins."""
    values = rng.choice([-1, 1], weights) * 10.0 ** rng.normal(-4, 1.2, weights)
    values[:zeros] = 0.0
    magnitude = np.log10(np.maximum(np.abs(values), 1e-30))
    slot = np.searchsorted(LOG_EDGES, magnitude, side="right")  # 0 under the range … len+1 above it
    middle = len(LOG_EDGES)
    index = np.where(values < 0, middle - slot, middle + slot)
    return np.bincount(index, minlength=2 * len(LOG_EDGES) + 1)


def write_run(root, model, seed):
    seeds, pretrained, dead, layers = MODELS[model]
    rng = np.random.default_rng(zlib.crc32(f"{model}-{seed}".encode()))
    early = (model, seed) == EARLY
    epochs = 7 if early else 10
    epoch = np.arange(1, epochs + 1)
    val = np.minimum(0.95, np.linspace(0.2, 0.7, epochs) + rng.uniform(0, 0.05, epochs))
    if early:
        val[3:] = val[3] - 0.02  # no gain after epoch 4: stopped by patience 3
    history = pd.DataFrame(
        {
            "epoch": epoch,
            "train_loss": 2.3 / np.sqrt(epoch),
            "train_accuracy": np.linspace(0.2, 0.9, epochs),
            "val_loss": 2.3 / np.sqrt(epoch) + 0.2,
            "val_accuracy": val,
            "lr": 1e-3,
        }
    )
    if model == "batchnorm":  # histories from 0.2 on also score training in evaluation mode
        history["train_eval_loss"] = 2.3 / np.sqrt(epoch) + 0.1
        history["train_eval_accuracy"] = np.linspace(0.2, 0.8, epochs)
    for index, layer in enumerate(dead):
        history[f"dead_{layer}"] = 0.0 if index == 0 else np.linspace(0, rng.uniform(0.05, 0.4), epochs)
    history["train_seconds"] = 20.0
    history["epoch_seconds"] = 30.0
    history["images_per_second"] = 400.0
    folder = root / "models" / f"{model}-seed{seed}"
    folder.mkdir(parents=True)
    history.to_csv(folder / "history.csv", index=False)

    recorded = [1, 5, epochs]
    rows = [
        (e, layer, kind, i, low, high, int(count))
        for e in recorded
        for layer, kind, weights in layers
        for i, ((low, high), count) in enumerate(
            zip(bin_rows(), histogram(rng, weights, zeros=e), strict=True)
        )
    ]
    columns = ["epoch", "layer", "kind", "bin", "low", "high", "count"]
    pd.DataFrame(rows, columns=columns).to_csv(folder / "gradients.csv", index=False)
    best = int(epoch[val.argmax()])
    summary = {
        "model": model,
        "seed": seed,
        "dataset": "imagenette-demo",
        "archive_md5": DEMO_MD5,
        "image_size": 32,
        "pretrained": pretrained,
        "best_epoch": best,
        "stopped_epoch": epochs,
        "stopped_early": early,
        "still_improving": best == epochs,
        "epochs_configured": 10,
        "early_stopping_patience": 3,
        "best_val_accuracy": float(val.max()),
        "gradient_epochs": {"configured": [1, 5, 10], "recorded": recorded, "missing": [10] if early else []},
        "probe": {"size": 64, "indices": list(range(64))} if dead else None,
        "hyperparameters": {},
    }
    (folder / "summary.json").write_text(json.dumps(summary))

    evaluation = root / "eval" / f"{model}-seed{seed}"
    evaluation.mkdir(parents=True)
    counts = rng.integers(0, 5, (len(CLASSES), len(CLASSES))) + np.diag([20] * len(CLASSES))
    confusion = pd.DataFrame(counts, index=pd.Index(CLASSES, name="true"), columns=CLASSES)
    confusion.to_csv(evaluation / "confusion.csv")
    accuracy = float(np.trace(counts) / counts.sum())
    metrics = {
        "model": model,
        "seed": seed,
        "dataset": "imagenette-demo",
        "image_size": 32,
        "archive_md5": DEMO_MD5,
        "pretrained": pretrained,
        "checkpoint_epoch": best,
        "accuracy": accuracy,
        "accuracy_ci95": [accuracy - 0.05, accuracy + 0.04],
        "n_images": int(counts.sum()),
        "loss": 1.0,
        "macro_f1": 0.5,
        "classes": CLASSES,
        "per_class": {},
    }
    (evaluation / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    for model, (seeds, *_) in MODELS.items():
        for seed in seeds:
            write_run(root, model, seed)
    return root


FILES = {
    "history": ("models", "history.csv"),
    "summary": ("models", "summary.json"),
    "gradients": ("models", "gradients.csv"),
    "confusion": ("eval", "confusion.csv"),
    "metrics": ("eval", "metrics.json"),
}


def inputs(root, models, *kinds, shuffle=None):
    """One list of paths per kind, one entry per run of ``models``; the same run at the same position,
    and the runs in a shuffled order when ``shuffle`` seeds one."""
    runs = [(model, seed) for model in models for seed in MODELS[model][0]]
    if shuffle is not None:
        random.Random(shuffle).shuffle(runs)
    lists = []
    for kind in kinds:
        folder, name = FILES[kind]
        lists.append([root / folder / f"{model}-seed{seed}" / name for model, seed in runs])
    return lists


def assert_png(path, figure_size_px=None):
    with Image.open(path) as image:
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    assert width >= 900 and height >= 500
    if figure_size_px:
        assert (width, height) == figure_size_px
    assert (pixels != pixels[0, 0]).any(), "a single-colour image"
    assert not list(path.parent.glob("*.part"))


def size_px(figure):
    return tuple(round(v) for v in figure.get_size_inches() * figure.dpi)


def flat(text):
    """Text as one line: figures wrap long titles and legend labels."""
    return " ".join(text.split())


def texts(figure):
    """The figure legends' labels, unwrapped."""
    return [flat(text.get_text()) for legend in legends(figure) for text in legend.get_texts()]


def test_title_says_when_a_model_is_not_pretrained():
    assert _title("resnet18_bn_frozen", "demo", False) == f"resnet18_bn_frozen on demo — {NOT_PRETRAINED}"
    assert "pretrained" not in _title("resnet18_bn_frozen", "imagenette2-160", True)
    assert "pretrained" not in _title("combined", "imagenette2-160", None)  # CNNs carry None


@pytest.mark.parametrize("model", ORDER)
def test_per_model_figures_render_unclipped(results, tmp_path, model):
    seeds, pretrained, *_ = MODELS[model]
    confusions, metrics, histories, summaries = inputs(
        results, [model], "confusion", "metrics", "history", "summary"
    )
    first = results / "models" / f"{model}-seed{seeds[0]}"
    figures = {
        "confusion": draw_confusion(confusions, metrics),
        "curves": draw_curves(histories, summaries),
        "gradients": draw_gradients(first / "gradients.csv", first / "summary.json"),
    }
    for name, figure in figures.items():
        assert_nothing_clipped(figure)
        titles = _save(figure, tmp_path / f"{name}.png")
        assert_png(tmp_path / f"{name}.png", size_px(figure))
        assert model in titles[0] and "imagenette-demo" in titles[0]
        assert (NOT_PRETRAINED in flat(titles[0])) is (pretrained is False)
    pooled = f"pooled over {len(seeds)} seeds"
    assert (pooled in flat(figures["confusion"].get_suptitle())) is (len(seeds) > 1)


def test_plot_functions_write_their_figures(results, tmp_path):
    confusions, metrics, histories, summaries = inputs(
        results, ["combined"], "confusion", "metrics", "history", "summary", shuffle=1
    )
    folder = results / "models" / "combined-seed0"
    written = {
        "confusion": plot_confusion(confusions, metrics, tmp_path / "confusion.png"),
        "curves": plot_curves(histories, summaries, tmp_path / "curves.png"),
        "gradients": plot_gradients(folder / "gradients.csv", folder / "summary.json", tmp_path / "g.png"),
    }
    for name, titles in written.items():
        assert "combined on imagenette-demo" in flat(titles[0]), name
    assert_png(tmp_path / "confusion.png")
    assert_png(tmp_path / "curves.png")
    assert_png(tmp_path / "g.png")


def test_figures_group_runs_by_the_model_and_seed_inside_the_files(results):
    def drawn(order):
        confusions, metrics, histories, summaries = inputs(
            results, ORDER, "confusion", "metrics", "history", "summary", shuffle=order
        )
        figures = [
            draw_comparison_accuracy(metrics, ORDER, study()),
            draw_comparison_curves(histories, summaries, ORDER),
            draw_dead_units(histories, summaries, CNNS),
            draw_comparison_transfer(histories, summaries, confusions, metrics, ORDER[2:]),
            draw_curves(*inputs(results, ["combined"], "history", "summary", shuffle=order)),
            draw_confusion(*inputs(results, ["combined"], "confusion", "metrics", shuffle=order)),
        ]
        return [
            (figure.get_suptitle(), texts(figure), [ax.get_title() for ax in figure.axes])
            + tuple(tuple(map(tuple, line.get_xydata())) for ax in figure.axes for line in ax.get_lines())
            for figure in figures
        ]

    assert drawn(1) == drawn(2) == drawn(3) == drawn(None)


def test_confusion_counts_are_pooled_over_seeds(results):
    confusions, metrics = inputs(results, ["combined"], "confusion", "metrics", shuffle=3)
    expected = sum(pd.read_csv(path, index_col=0).to_numpy() for path in confusions)

    figure = draw_confusion(confusions, metrics)

    counts_ax = figure.axes[0]
    np.testing.assert_array_equal(counts_ax.images[0].get_array(), expected)
    assert "mean of 2 seeds" in flat(figure.get_suptitle())


def test_confusion_takes_a_single_path_and_refuses_two_models(results):
    folder = results / "eval" / "batchnorm-seed0"
    figure = draw_confusion(str(folder / "confusion.csv"), str(folder / "metrics.json"))
    title = flat(figure.get_suptitle())
    assert "95% Wilson CI" in title and "pooled" not in title
    with pytest.raises(ValueError, match="one model"):
        draw_confusion(*inputs(results, ["baseline", "combined"], "confusion", "metrics"))


def test_gradient_densities_integrate_to_one_with_the_outside_shares():
    counts = histogram(np.random.default_rng(0), 4000, zeros=100)
    counts[0], counts[-1] = 7, 3  # gradients beyond ±1
    rows = pd.DataFrame(
        [
            (i, low, high, count)
            for i, ((low, high), count) in enumerate(zip(bin_rows(), counts, strict=True))
        ],
        columns=["bin", "low", "high", "count"],
    ).sample(frac=1, random_state=0)  # row order must not matter

    result = gradient_histogram(rows)

    area = float(np.sum(result.density * np.diff(result.edges)))
    assert area + result.below + result.middle + result.above == pytest.approx(1.0)
    assert result.below == 7 / counts.sum() and result.above == 3 / counts.sum()
    assert result.middle >= 100 / counts.sum()  # exact zeros sit in the middle bin
    np.testing.assert_allclose(result.edges, np.concatenate([-LOG_EDGES[::-1] - 9, LOG_EDGES[1:] + 9]))
    assert np.allclose(np.diff(result.edges), 0.25)  # four bins per decade: x is in decades
    assert result.weights == counts.sum()


def test_gradients_title_names_epochs_and_missing_ones(results):
    folder = results / "models" / "combined-seed1"  # stopped at 7 before gradient epoch 10

    title = flat(draw_gradients(folder / "gradients.csv", folder / "summary.json").get_suptitle())

    assert "epochs 1, 5, 7 (7 = last trained epoch)" in title
    assert "epochs 10 not reached: the run stopped at 7" in title
    assert "conv1, bn1, conv2, fc1" in title


def test_a_single_layer_gradient_figure_keeps_its_minimum_size(results):
    folder = results / "models" / "resnet18_bn_frozen-seed0"  # only fc trains

    figure = draw_gradients(folder / "gradients.csv", folder / "summary.json")

    assert size_px(figure) >= (900, 500) and size_px(figure)[1] >= 500
    assert_nothing_clipped(figure)
    assert "4 per decade of |g| from $10^{-9}$ to 1" in flat(figure._supxlabel.get_text())


def test_small_layers_draw_a_cumulative_share(results):
    folder = results / "models" / "batchnorm-seed0"

    figure = draw_gradients(folder / "gradients.csv", folder / "summary.json")

    bn = next(ax for ax in figure.axes if ax.get_title().startswith("bn1"))
    conv = next(ax for ax in figure.axes if ax.get_title().startswith("conv1"))
    assert bn.get_ylabel() == "cumulative share" and conv.get_ylabel() == "share per decade"
    assert all(line.get_ydata().max() <= 1 + 1e-9 for line in bn.get_lines())


def test_curves_use_a_fixed_accuracy_axis_and_mark_stops(results):
    for model in ORDER:
        histories, summaries = inputs(results, [model], "history", "summary")
        figure = draw_curves(histories, summaries)
        assert figure.axes[0].get_ylim() == (0, 1), model
    histories, summaries = inputs(results, ["combined"], "history", "summary", shuffle=0)
    figure = draw_curves(histories, summaries)
    labels = texts(figure)
    assert "early stop (seed 1: 7 of 10 epochs)" in labels
    assert any(label.startswith("chance (10 classes)") for label in labels)
    assert any("min–max" in label for label in labels)
    ran = [json.loads(path.read_text()) for path in summaries]
    improving = [still_improving(s["best_epoch"], s["stopped_epoch"], s["stopped_early"]) for s in ran]
    assert ("still improving" in flat(figure.get_suptitle())) is any(improving)


# ---- the curves drawn from constructed histories ---------------------------------------------------------


def constructed_run(root, val_accuracy, epochs_configured=None, model="baseline", seed=0):
    """A run folder with a history whose validation accuracy is ``val_accuracy``, epoch by epoch, and the
    summary training writes for it (best epoch: the first maximum; stopped early: fewer epochs run than
    configured; ``still_improving`` by training's own rule, best epoch = last). Every other column holds
    numbers of its own, so a curve drawn from the wrong column shows."""
    val = np.asarray(val_accuracy, dtype=float)
    epochs = len(val)
    epoch = np.arange(1, epochs + 1)
    wiggle = 0.02 * np.sin(epoch * (seed + 1.3))
    history = pd.DataFrame(
        {
            "epoch": epoch,
            "train_loss": 2.2 / np.sqrt(epoch) + wiggle,
            "train_accuracy": np.linspace(0.15, 0.8, epochs) + wiggle,
            "train_eval_loss": 2.0 / np.sqrt(epoch) - wiggle,
            "train_eval_accuracy": np.linspace(0.2, 0.9, epochs) - wiggle,
            "val_loss": 2.4 / np.sqrt(epoch) + 2 * wiggle,
            "val_accuracy": val,
            "lr": 1e-3,
        }
    )
    folder = root / f"{model}-seed{seed}"
    folder.mkdir(parents=True)
    history.to_csv(folder / "history.csv", index=False)
    best = int(epoch[val.argmax()])
    configured = epochs if epochs_configured is None else epochs_configured
    summary = {
        "model": model,
        "seed": seed,
        "dataset": "imagenette-demo",
        "pretrained": None,
        "best_epoch": best,
        "stopped_epoch": epochs,
        "stopped_early": epochs < configured,
        "still_improving": best == epochs,
        "epochs_configured": configured,
        "classes": CLASSES,
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder / "history.csv", folder / "summary.json"


def rising_to(best, epochs):
    """Validation accuracy that rises to its maximum at epoch ``best`` of ``epochs``, then falls a little."""
    epoch = np.arange(1, epochs + 1)
    return np.where(epoch <= best, 0.2 + 0.4 * epoch / best, 0.6 - 0.01 * (epoch - best))


@pytest.mark.parametrize(
    "best, ran, configured, improving",
    [
        (18, 20, 20, True),  # the demo's baseline: 18 of 20 is 90 % of training, the last tenth
        (20, 20, 20, True),
        (17, 20, 20, False),
        (45, 50, 50, True),  # the study's 50 epochs: 45 or later
        (44, 50, 50, False),
        (8, 8, 8, True),  # the demo's ResNet-18: only the last of 8
        (7, 8, 8, False),
        (11, 12, 20, False),  # stopped early (patience 1): early stopping judged it had stopped improving
    ],
)
def test_still_improving_is_one_rule_best_epoch_in_the_last_tenth(tmp_path, best, ran, configured, improving):
    history, summary = constructed_run(tmp_path, rising_to(best, ran), configured)

    title = flat(draw_curves([history], [summary]).get_suptitle())

    assert still_improving(best, ran, stopped_early=ran < configured) is improving
    assert ("still improving" in title) is improving
    if improving:
        assert f"best epoch {best} of {ran}, in the last 10 % of training" in title


def test_still_improving_names_the_seeds_it_holds_for(tmp_path):
    runs = [constructed_run(tmp_path, rising_to(best, 20), seed=seed) for seed, best in ((0, 15), (1, 19))]

    title = flat(draw_curves(*zip(*runs, strict=True)).get_suptitle())

    assert "still improving (best epoch in the last 10 % of training): seed(s) 1" in title


def curve_lines(figure):
    """(panel metric, history column) → the Line2D that draws it, found by its legend label."""
    columns = {label: prefix for prefix, label, _ in CURVES}
    accuracy_ax, loss_ax = figure.axes[:2]
    return {
        (metric, f"{columns[line.get_label()]}_{metric}"): line
        for metric, ax in (("accuracy", accuracy_ax), ("loss", loss_ax))
        for line in ax.get_lines()
        if line.get_label() in columns
    }


def test_the_curves_draw_the_historys_own_values(tmp_path):
    history_csv, summary_json = constructed_run(tmp_path, rising_to(6, 9), model="dropout")
    history = pd.read_csv(history_csv)

    lines = curve_lines(draw_curves([history_csv], [summary_json]))

    assert len(lines) == 6  # validation, evaluation-mode and running training, on both panels
    for (_, column), line in lines.items():
        np.testing.assert_array_equal(line.get_xdata(), history["epoch"], err_msg=column)
        np.testing.assert_allclose(line.get_ydata(), history[column], err_msg=column)


def band_range(band):
    """A min–max band's (lower, upper) edge per epoch, read back from its polygon."""
    vertices = pd.DataFrame(band.get_paths()[0].vertices, columns=["epoch", "value"])
    edges = vertices.groupby("epoch")["value"]
    return edges.min(), edges.max()


def test_with_two_seeds_the_curves_draw_each_epochs_mean_and_range(tmp_path):
    """Seed 1 stopped early at epoch 6 of 9: epochs 7–9 are seed 0's alone."""
    runs = [constructed_run(tmp_path, rising_to(6, 9), 9, seed=0),
            constructed_run(tmp_path, rising_to(2, 6), 9, seed=1)]  # fmt: skip
    seeds = pd.concat(pd.read_csv(history_csv) for history_csv, _ in runs).groupby("epoch")

    figure = draw_curves(*zip(*runs, strict=True))

    lines = curve_lines(figure)
    assert len(lines) == 6
    for (_, column), line in lines.items():
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 10), err_msg=column)
        np.testing.assert_allclose(line.get_ydata(), seeds[column].mean(), err_msg=column)
    for ax, metric in zip(figure.axes[:2], ("accuracy", "loss"), strict=True):
        bands = ax.collections  # one per curve, drawn in the curves' order
        assert len(bands) == len(CURVES)
        for band, (prefix, _, _) in zip(bands, CURVES, strict=True):
            lower, upper = band_range(band)
            np.testing.assert_allclose(lower, seeds[f"{prefix}_{metric}"].min(), err_msg=prefix)
            np.testing.assert_allclose(upper, seeds[f"{prefix}_{metric}"].max(), err_msg=prefix)


def test_comparison_curves_and_transfer_use_a_fixed_accuracy_axis(results):
    histories, summaries, confusions, metrics = inputs(
        results, ORDER, "history", "summary", "confusion", "metrics"
    )
    assert draw_comparison_curves(histories, summaries, ORDER).axes[0].get_ylim() == (0, 1)
    transfer = draw_comparison_transfer(histories, summaries, confusions, metrics, ["combined", *ORDER[3:]])
    assert transfer.axes[0].get_ylim() == (0, 1)


def test_study_bars_are_comparable_only_on_the_study_archive_and_size(results, tmp_path):
    (metrics,) = inputs(results, ORDER, "metrics")

    demo = texts(draw_comparison_accuracy(metrics, ORDER, study()))
    assert "study (not comparable: imagenette-demo at 32 px vs the study's 160 px Imagenette)" in demo

    # the same runs on the study's own archive and size
    for path in metrics:
        values = json.loads(path.read_text())
        copy = tmp_path / path.parent.name / "metrics.json"
        copy.parent.mkdir()
        copy.write_text(json.dumps({**values, "archive_md5": STUDY_MD5, "image_size": 160}))
    copies = [tmp_path / path.parent.name / "metrics.json" for path in metrics]
    figure = draw_comparison_accuracy(copies, ORDER, study())
    labels = texts(figure)
    assert "study (reported, 50 epochs)" in labels and not any("not comparable" in t for t in labels)
    assert not any(bar.get_hatch() for bar in figure.axes[0].patches)

    wrong_size = texts(draw_comparison_accuracy(copies, ORDER, study(image_size=320)))
    assert any("not comparable" in t for t in wrong_size)


def test_comparison_accuracy_says_test_size_seeds_and_random_init(results):
    (metrics,) = inputs(results, ORDER, "metrics")

    figure = draw_comparison_accuracy(metrics, ORDER, study())

    title = flat(figure.get_suptitle())
    assert "test images" in title and "mean of 1–2 seeds per model" in title
    ticks = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert ticks[3] == f"resnet18_bn_frozen\n{NOT_PRETRAINED}" and ticks[0] == "baseline"
    assert "each seed" in texts(figure) and "95% Wilson CI (one seed)" in texts(figure)


def test_dead_units_has_one_legend_and_a_panel_per_cnn(results):
    histories, summaries = inputs(results, ORDER, "history", "summary", shuffle=5)

    figure = draw_dead_units(histories, summaries, ["combined", "baseline", "batchnorm", *ORDER[3:]])

    drawn = legends(figure) + [ax.get_legend() for ax in figure.axes if ax.get_legend()]
    assert len(drawn) == 1
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title().split("\n")[0] for ax in visible] == ["combined", "baseline", "batchnorm"]
    assert all(ax.get_title().endswith("conv1 at 0% throughout") for ax in visible)  # conv1: 0 in the data
    assert visible[0].get_ylim()[0] < 0  # a layer with no dead units stays visible on the floor
    title = flat(figure.get_suptitle())
    assert "dead = zero for all 64 probe images (stratified by class)" in title
    assert "conv unit = channel, FC unit = neuron" in title


def test_comparison_figures_render_unclipped(results, tmp_path):
    histories, summaries, confusions, metrics = inputs(
        results, ORDER, "history", "summary", "confusion", "metrics"
    )
    transfer = ["combined", "resnet18_bn_frozen", "resnet18_bn_unfrozen"]
    cases = {
        "accuracy": (draw_comparison_accuracy, plot_comparison_accuracy, (metrics, ORDER, study())),
        "curves": (draw_comparison_curves, plot_comparison_curves, (histories, summaries, ORDER)),
        "dead": (draw_dead_units, plot_dead_units, (histories, summaries, CNNS)),
        "transfer": (
            draw_comparison_transfer,
            plot_comparison_transfer,
            (histories, summaries, confusions, metrics, transfer),
        ),
    }
    for name, (draw, plot, arguments) in cases.items():
        figure = draw(*arguments)
        assert_nothing_clipped(figure)
        titles = plot(*arguments, tmp_path / f"{name}.png")
        assert_png(tmp_path / f"{name}.png", size_px(figure))
        assert titles[0] == figure.get_suptitle()


def test_dead_units_without_a_cnn_says_so(results):
    histories, summaries = inputs(results, ORDER[3:], "history", "summary")

    figure = draw_dead_units(histories, summaries, ORDER)

    assert_nothing_clipped(figure)
    assert [text.get_text() for ax in figure.axes for text in ax.texts] == [
        "no history has dead-unit columns"
    ]


# ---- the report's column: width, dpi, fonts; one colour per model ----------------------------------------


def sweep_frame(grid, seed=0):
    """A sweep table as ``sweep_table`` returns it, for every combination of ``grid``."""
    rng = np.random.default_rng(seed)
    keys = list(grid)
    points = pd.MultiIndex.from_product(list(grid.values()), names=keys).to_frame(index=False)
    points["point"] = [f"p{index}" for index in range(len(points))]
    points["seeds"] = 1
    points["val_accuracy"] = rng.uniform(0.3, 0.7, len(points))
    points["test_accuracy"] = points["val_accuracy"] - 0.03
    return points


def claims_frame():
    """Rows of a claims CSV: a test-accuracy pair with the study's difference, an equivalence pair, one
    history measure without an interval."""
    common = dict(confidence=0.95, method="paired bootstrap over images + exact McNemar")
    return pd.DataFrame(
        [
            dict(claim_id="bn_beats_base", model_a="batchnorm", model_b="baseline", measure="test_accuracy",
                 effect=0.04, ci_low=0.01, ci_high=0.07, margin=np.nan, verdict="supported",
                 reported_difference=0.043, **common),
            dict(claim_id="unfreeze_small", model_a="resnet18_bn_unfrozen", model_b="resnet18_bn_frozen",
                 measure="test_accuracy", effect=0.005, ci_low=-0.01, ci_high=0.02, margin=0.02,
                 verdict="not supported", reported_difference=np.nan, **common),
            dict(claim_id="bn_faster", model_a="batchnorm", model_b="baseline", measure="epochs_to_95",
                 effect=2.0, ci_low=np.nan, ci_high=np.nan, margin=np.nan, verdict="not applicable",
                 reported_difference=np.nan, confidence=0.95, method="one seed: no interval"),
        ]
    )  # fmt: skip


def every_figure(root):
    """name → a drawn figure, one of every kind the workflow writes, from the fake run folders."""
    histories, summaries, confusions, metrics = inputs(
        root, ORDER, "history", "summary", "confusion", "metrics"
    )
    transfer = ["combined", "resnet18_bn_frozen", "resnet18_bn_unfrozen"]
    figures = {}
    for model in ["batchnorm", "combined", "resnet18_bn_frozen", "resnet18_bn_unfrozen"]:
        figures[f"confusion_{model}"] = draw_confusion(*inputs(root, [model], "confusion", "metrics"))
        figures[f"curves_{model}"] = draw_curves(*inputs(root, [model], "history", "summary"))
        folder = root / "models" / f"{model}-seed{MODELS[model][0][0]}"
        figures[f"gradients_{model}"] = draw_gradients(folder / "gradients.csv", folder / "summary.json")
    figures["dead_units"] = draw_dead_units(histories, summaries, CNNS)
    figures["dead_units_two"] = draw_dead_units(histories, summaries, CNNS[:2])
    figures["accuracy"] = draw_comparison_accuracy(metrics, ORDER, study())
    figures["comparison_curves"] = draw_comparison_curves(histories, summaries, ORDER)
    figures["transfer"] = draw_comparison_transfer(histories, summaries, confusions, metrics, transfer)
    sweeps = {
        "sweep_lr": {"lr": [1e-4, 3e-4, 1e-3, 3e-3]},
        "sweep_two": {"lr": [1e-4, 1e-3], "batch_size": [32, 64, 128]},
        "sweep_three": {"lr": [1e-4, 1e-3], "batch_size": [32, 64], "dropout_fc": [0.0, 0.5]},
    }
    for name, grid in sweeps.items():
        figures[name] = draw_sweep(sweep_frame(grid), name, {"model": "baseline", "grid": grid})
    figures["effects"] = draw_comparison_effects(claims_frame())
    return figures


def test_every_figure_fits_the_report_column_in_readable_type(results, tmp_path):
    """At most 9.5 in wide (the report's ≈ 950 px column shows it unshrunk), saved at ≥ 100 dpi with the
    dpi in the file, and no text under 8 pt."""
    for name, figure in every_figure(results).items():
        _save(figure, tmp_path / f"{name}.png")
        with Image.open(tmp_path / f"{name}.png") as image:
            width, height = image.size
            dpi_x, dpi_y = image.info["dpi"]
        assert dpi_x == pytest.approx(DPI, abs=0.01) and dpi_y == pytest.approx(DPI, abs=0.01), name
        assert DPI >= 100
        assert width / dpi_x <= WIDTH + 0.01, f"{name}: {width / dpi_x:.2f} in wide"
        assert (width, height) == size_px(figure), name
        small = [
            (text.get_text(), text.get_fontsize())
            for text in figure.findobj(Text)
            if text.get_text().strip() and text.get_fontsize() < MIN_FONT
        ]
        assert not small, f"{name}: text under {MIN_FONT} pt: {small[:5]}"
        assert_nothing_clipped(figure)


def line_colours(figure):
    """model → colour of its validation line, from every axes that draws one (labels may add a note)."""
    colours = {}
    for ax in figure.axes:
        for line in ax.get_lines():
            model = line.get_label().split(" — ")[0]
            if model in MODELS:
                colours.setdefault(model, set()).add(to_hex(line.get_color()))
    return colours


def test_a_model_has_one_colour_in_every_comparison_figure(results):
    histories, summaries, confusions, metrics = inputs(
        results, ORDER, "history", "summary", "confusion", "metrics"
    )
    transfer = ["combined", "resnet18_bn_frozen", "resnet18_bn_unfrozen"]

    everything = line_colours(draw_comparison_curves(histories, summaries, ORDER))
    subset = line_colours(draw_comparison_transfer(histories, summaries, confusions, metrics, transfer))

    assert set(subset) == set(transfer)
    for model in transfer:
        assert subset[model] == everything[model] and len(everything[model]) == 1, model
    assert len({colour for colours in everything.values() for colour in colours}) == len(ORDER)
    # the bars and the dead-unit panels use the same colours
    accuracy = draw_comparison_accuracy(metrics, ORDER, study())
    bars = [to_hex(bar.get_facecolor()) for bar in accuracy.axes[0].patches][: len(ORDER)]
    assert bars == [next(iter(everything[model])) for model in ORDER]
    dead = draw_dead_units(histories, summaries, CNNS)
    for ax in (ax for ax in dead.axes if ax.get_lines()):
        model = ax.get_title().split("\n")[0]
        assert {to_hex(line.get_color()) for line in ax.get_lines()} == everything[model]
    # so does the forest plot: each row's point and interval in its first model's colour
    pairs = claims_frame()
    forest = line_colours(draw_comparison_effects(pairs, ORDER))
    assert set(forest) == set(pairs["model_a"])
    for model, colours in forest.items():
        assert colours == everything[model], model


def test_the_forest_plot_tells_the_verdict_by_shape():
    pairs = claims_frame()

    figure = draw_comparison_effects(pairs)

    points = [
        line for ax in figure.axes for line in ax.get_lines() if line.get_marker() in VERDICT_MARKERS.values()
    ]
    assert [line.get_marker() for line in points] == [
        VERDICT_MARKERS[verdict] for verdict in pairs["verdict"]
    ]
    assert len(set(VERDICT_MARKERS.values())) == len(VERDICT_MARKERS)
    assert {"supported", "not supported", "not applicable", "batchnorm", "resnet18_bn_unfrozen"} <= set(
        texts(figure)
    )  # the verdicts' shapes and the first models' colours, each named


def test_model_styles_keep_the_study_order_and_stay_distinct_past_the_palette():
    assert style.STUDY_MODELS == settings.STUDY_MODELS
    variants = [f"variant{index}" for index in range(12)]
    full = ["baseline", "batchnorm", "dropout", "augmentation", "combined", *variants, "resnet18_bn_frozen"]

    styles = model_styles(full)

    assert styles["baseline"].colour == PALETTE[0]
    assert model_colours(["combined", "resnet18_bn_frozen"]) == {
        model: styles[model].colour for model in ["combined", "resnet18_bn_frozen"]
    }  # a subset keeps the colours the full list gives
    assert len(set(styles.values())) == len(full)  # colour, line style and marker together tell apart
    repeated = [model for model in full if styles[model].colour == PALETTE[0]]
    assert len(repeated) > 1 and len({styles[model].linestyle for model in repeated}) == len(repeated)


def test_gradient_colours_follow_the_epoch_number_in_every_model(results):
    def bn1_colours(model, seed):
        folder = results / "models" / f"{model}-seed{seed}"
        figure = draw_gradients(folder / "gradients.csv", folder / "summary.json")
        assert all(ax.get_visible() for ax in figure.axes)  # no empty panel slot
        panel = next(ax for ax in figure.axes if ax.get_title().startswith("bn1"))
        return [to_hex(line.get_color()) for line in panel.get_lines()]

    baseline = bn1_colours("baseline", 0)  # epochs 1, 5, 10
    stopped = bn1_colours("combined", 1)  # epochs 1, 5, 7: stopped early
    assert baseline[:2] == stopped[:2] and baseline[2] != stopped[2]
    assert len(set(baseline)) == 3


def test_sweep_axes_speak_words_and_show_chance():
    grid = {"lr": [1e-4, 1e-3, 1e-2]}
    figure = draw_sweep(sweep_frame(grid), "lr", {"model": "dropout", "grid": grid})
    ax = figure.axes[0]
    assert ax.get_xlabel() == "Adam learning rate (log scale)" and ax.get_xscale() == "log"
    assert any(flat(text).startswith("chance (10 classes)") for text in texts(figure))
    assert to_hex(ax.get_lines()[0].get_color()) == model_colours(["dropout"])["dropout"]
    assert key_label("batch_size") == "batch size (images)" and key_label("new_key") == "new_key"


@pytest.mark.parametrize(
    "grid", [{"lr": [1e-4, 1e-2]}, {"lr": [1e-4], "batch_size": [32], "dropout_fc": [0.5]}]
)
def test_sweep_figure_draws_the_model_as_configured_at_its_validation_accuracy(grid):
    base = {"model": "dropout", "lr": 1e-3, "batch_size": 128, "dropout_fc": 0.3, "val_accuracy": 0.42}
    figure = draw_sweep(sweep_frame(grid), "s", {"model": "dropout", "grid": grid}, base=base)
    (line,) = [line for line in figure.axes[0].get_lines() if "as configured" in line.get_label()]
    position = line.get_xdata() if len(grid) > 2 else line.get_ydata()  # bars run sideways
    assert list(position) == [0.42, 0.42] and "lr = 0.001" in line.get_label()
    assert to_hex(line.get_color()) == model_colours(["dropout"])["dropout"]
    heatmap = draw_sweep(sweep_frame({"lr": [1e-4], "batch_size": [32]}), "s", {"model": "dropout",
                         "grid": {"lr": [1e-4], "batch_size": [32]}}, base=base)  # fmt: skip
    assert "dropout as configured (lr = 0.001, batch_size = 128): validation 42.0%" in flat(
        heatmap.get_suptitle()
    )


def test_comparison_accuracy_marks_the_study_and_chance(results, tmp_path):
    (metrics,) = inputs(results, ORDER, "metrics")
    other_data = draw_comparison_accuracy(metrics, ORDER, study())
    labels = texts(other_data)
    assert len(other_data.axes[0].patches) == len(ORDER)  # no study bar beside ours: a marker on it
    assert "chance (5 classes)" in labels and any("not comparable" in label for label in labels)
    one_seed = [path for path in metrics if path.parent.name.endswith("seed0")]
    assert not any(
        "mean over seeds" in label for label in texts(draw_comparison_accuracy(one_seed, ORDER, study()))
    )
