"""The study's figures: per model (confusion, curves, gradients, dead units) and across models.

Every function reads the files earlier stages wrote, draws on its own Agg canvas (no pyplot, so no global
figure state and nothing to close), writes one PNG atomically at a fixed pixel size, and returns the
figure's title strings so callers and tests can check what a figure claims without reading pixels.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from cnnstudy.files import atomic_path

DPI = 100  # pixel size = figsize × DPI exactly: savefig keeps the whole canvas (no bbox_inches="tight")
NOT_PRETRAINED = "not pretrained (random init)"
DEAD_PREFIX = "dead_"


def _title(model, dataset, pretrained):
    """Model and dataset; a random-init ResNet says so plainly (``pretrained`` is None for the CNNs)."""
    title = f"{model} on {dataset}"
    return f"{title} — {NOT_PRETRAINED}" if pretrained is False else title


def _label(model, pretrained, separator=" — "):
    return f"{model}{separator}{NOT_PRETRAINED}" if pretrained is False else model


def _not_pretrained_note(pretrained_by_model):
    names = [model for model, pretrained in pretrained_by_model.items() if pretrained is False]
    return f" — {', '.join(names)} {NOT_PRETRAINED}" if names else ""


def _read_json(path):
    return json.loads(Path(path).read_text())


def _summary_beside(history_csv, summary_json=None):
    """Training's summary.json sits beside history.csv, so comparison plots can label random-init ResNets
    even when the caller passes only histories."""
    if summary_json:
        return _read_json(summary_json)
    beside = Path(history_csv).with_name("summary.json")
    return _read_json(beside) if beside.exists() else {}


def _figure(width, height):
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, out_png):
    with atomic_path(out_png) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)
    titles = [figure.get_suptitle()] + [ax.get_title() for ax in figure.axes]
    return [title for title in titles if title]


def _read_confusion(path):
    counts = pd.read_csv(path, index_col=0)
    return counts.reindex(columns=counts.index, fill_value=0)  # same class order on both axes


def _row_normalised(counts):
    return counts.div(counts.sum(axis=1), axis=0).fillna(0.0)  # a class absent from the test set: zeros


def _heatmap(ax, values, class_names, text_format, vmax=None, fontsize=8, row_names=True):
    vmax = values.max() if vmax is None else vmax
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, class_names if row_names else [])
    ax.set_xlabel("predicted")
    if row_names:
        ax.set_ylabel("true")
    for (row, column), value in np.ndenumerate(values):
        colour = "white" if value > vmax / 2 else "black"
        ax.text(
            column, row, text_format.format(value), ha="center", va="center", fontsize=fontsize, color=colour
        )
    return image


def plot_confusion(confusion_csv, metrics_json, out_png):
    counts = _read_confusion(confusion_csv)
    metrics = _read_json(metrics_json)
    names = list(counts.index)
    figure = _figure(15, 7)
    left, right = figure.subplots(1, 2)
    image = _heatmap(left, counts.to_numpy(), names, "{:.0f}")
    figure.colorbar(image, ax=left, shrink=0.8, label="test images")
    image = _heatmap(right, _row_normalised(counts).to_numpy(), names, "{:.2f}", vmax=1.0)
    figure.colorbar(image, ax=right, shrink=0.8, label="share of the true class")
    left.set_title("Counts")
    right.set_title("Row-normalised (diagonal = recall)")
    title = _title(metrics["model"], metrics["dataset"], metrics.get("pretrained"))
    figure.suptitle(f"Confusion matrix: {title} — test accuracy {metrics['accuracy']:.2%}")
    return _save(figure, out_png)


def _mark_epochs(ax, history, summary):
    best = summary.get("best_epoch") or int(history.loc[history["val_accuracy"].idxmax(), "epoch"])
    ax.axvline(best, color="tab:green", linestyle="--", label=f"best epoch ({best})")
    stopped, configured = summary.get("stopped_epoch"), summary.get("epochs_configured")
    if stopped and configured and stopped < configured:
        label = f"early stop (epoch {stopped} of {configured})"
        ax.axvline(stopped, color="tab:red", linestyle=":", label=label)


def plot_curves(history_csv, summary_json, out_png):
    history = pd.read_csv(history_csv)
    summary = _read_json(summary_json)
    figure = _figure(13, 5)
    accuracy_ax, loss_ax = figure.subplots(1, 2)
    for ax, metric, ylabel in (
        (accuracy_ax, "accuracy", "accuracy"),
        (loss_ax, "loss", "cross-entropy loss"),
    ):
        ax.plot(history["epoch"], history[f"train_{metric}"], marker="o", markersize=3, label="training")
        ax.plot(history["epoch"], history[f"val_{metric}"], marker="o", markersize=3, label="validation")
        _mark_epochs(ax, history, summary)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    accuracy_ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    accuracy_ax.set_title("Accuracy")
    loss_ax.set_title("Loss")
    title = _title(summary["model"], summary["dataset"], summary.get("pretrained"))
    figure.suptitle(f"Training curves: {title}")
    return _save(figure, out_png)


def _grid(count, max_columns):
    columns = min(max_columns, max(1, math.ceil(math.sqrt(count))))
    return max(1, math.ceil(count / columns)), columns


def plot_gradients(gradients_csv, summary_json, out_png):
    gradients = pd.read_csv(gradients_csv)
    summary = _read_json(summary_json)
    layers = list(pd.unique(gradients["layer"]))  # the order training recorded them: input to output
    epochs = sorted(gradients["epoch"].unique())
    colours = colormaps["viridis"](np.linspace(0.0, 0.9, max(1, len(epochs))))
    rows, columns = _grid(len(layers), max_columns=4)
    figure = _figure(3.5 * columns, 2.75 * rows + 1)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, layer in zip(axes, layers, strict=False):
        layer_rows = gradients[gradients["layer"] == layer]
        for epoch, colour in zip(epochs, colours, strict=True):
            bins = layer_rows[layer_rows["epoch"] == epoch].sort_values("bin_left")
            if not bins.empty:
                edges = np.append(bins["bin_left"].to_numpy(), bins["bin_right"].iloc[-1])
                ax.stairs(bins["count"].to_numpy(), edges, color=colour)
        # gradients pile up around zero; symlog keeps the tails visible and still shows empty bins as 0
        ax.set_yscale("symlog", linthresh=1)
        ax.set_title(f"{layer} ({layer_rows['kind'].iloc[0]})", fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    for ax in axes[len(layers) :]:
        ax.set_visible(False)
    if not layers:
        axes[0].set_visible(True)
        axes[0].text(0.5, 0.5, "no gradient histograms recorded", ha="center", va="center")
    handles = [Line2D([], [], color=colour) for colour in colours[: len(epochs)]]
    if epochs:
        figure.legend(handles, [f"epoch {e}" for e in epochs], loc="outside right center")
    figure.supxlabel("weight gradient")
    figure.supylabel("count (symlog)")
    title = _title(summary["model"], summary["dataset"], summary.get("pretrained"))
    figure.suptitle(f"Weight-gradient histograms per layer: {title}")
    return _save(figure, out_png)


def plot_dead_units(history_csvs, out_png):
    panels = {}
    for model, path in history_csvs.items():
        history = pd.read_csv(path)
        dead = [column for column in history.columns if column.startswith(DEAD_PREFIX)]
        if dead:  # ResNet histories carry no dead-unit columns
            panels[model] = (history, dead)
    rows, columns = _grid(len(panels), max_columns=3)
    figure = _figure(4.5 * columns, 3.5 * rows + 0.5)
    axes = figure.subplots(rows, columns, squeeze=False, sharey=True).ravel()
    for ax, (model, (history, dead)) in zip(axes, panels.items(), strict=False):
        for column in dead:
            label = column.removeprefix(DEAD_PREFIX)
            ax.plot(history["epoch"], history[column], marker="o", markersize=3, label=label)
        ax.set_title(model)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="layer", title_fontsize=8)
    axes[0].set_ylim(bottom=0)  # top autoscaled: dead fractions are often a few percent
    axes[0].yaxis.set_major_formatter(PercentFormatter(xmax=1))
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if not panels:
        axes[0].set_visible(True)
        axes[0].text(0.5, 0.5, "no history has dead-unit columns", ha="center", va="center")
    figure.supylabel("dead ReLU units")
    figure.suptitle("Dead ReLU units per layer: share of units that output zero for every probe image")
    return _save(figure, out_png)


def plot_comparison_accuracy(metrics_jsons, reported, target, out_png):
    metrics = {model: _read_json(path) for model, path in metrics_jsons.items()}
    models = list(metrics)
    pretrained = {model: metrics[model].get("pretrained") for model in models}
    x = np.arange(len(models))
    width = 0.4
    figure = _figure(max(8, 1.5 * len(models) + 2), 6)
    ax = figure.subplots()
    ours = [metrics[model]["accuracy"] for model in models]
    bars = ax.bar(x - width / 2, ours, width, color="tab:blue", label="ours (test set)")
    ax.bar_label(bars, labels=[f"{value:.1%}" for value in ours], fontsize=8, padding=2)
    with_reported = [i for i, model in enumerate(models) if model in reported]
    if with_reported:
        values = [reported[models[i]]["test_accuracy"] for i in with_reported]
        label = "reported by the study (50 epochs)"
        bars = ax.bar(x[with_reported] + width / 2, values, width, color="tab:gray", label=label)
        ax.bar_label(bars, labels=[f"{value:.1%}" for value in values], fontsize=8, padding=2)
    ax.axhline(target, color="tab:red", linestyle="--", label=f"target {target:.0%}")
    labels = [_label(model, pretrained[model], separator="\n") for model in models]
    ax.set_xticks(x, labels, rotation=20, ha="right", rotation_mode="anchor")
    ax.set_ylim(0, 1.08)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_ylabel("test accuracy")
    ax.grid(axis="y", alpha=0.3)
    figure.legend(loc="outside right center")
    dataset = metrics[models[0]]["dataset"] if models else ""
    note = _not_pretrained_note(pretrained)
    figure.suptitle(f"Test accuracy on {dataset}: ours and the source study's{note}")
    return _save(figure, out_png)


def plot_comparison_curves(history_csvs, out_png, summary_jsons=None):
    """``summary_jsons`` (model → path) is optional: by default each history's sibling summary.json."""
    figure = _figure(11, 6)
    ax = figure.subplots()
    pretrained, datasets = {}, set()
    for model, path in history_csvs.items():
        summary = _summary_beside(path, (summary_jsons or {}).get(model))
        pretrained[model] = summary.get("pretrained")
        datasets.update([summary["dataset"]] if "dataset" in summary else [])
        history = pd.read_csv(path)
        linestyle = "--" if model.startswith("resnet") else "-"
        label = _label(model, pretrained[model])
        ax.plot(
            history["epoch"],
            history["val_accuracy"],
            linestyle=linestyle,
            marker="o",
            markersize=3,
            label=label,
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    on = f" on {', '.join(sorted(datasets))}" if datasets else ""
    figure.suptitle(f"Validation accuracy per epoch, all models{on}{_not_pretrained_note(pretrained)}")
    return _save(figure, out_png)


def plot_comparison_transfer(history_csvs, confusion_csvs, metrics_jsons, out_png):
    models = list(history_csvs)
    metrics = {model: _read_json(metrics_jsons[model]) for model in models}
    pretrained = {model: metrics[model].get("pretrained") for model in models}
    figure = _figure(max(12, 5 * len(models)), 11)
    grid = figure.add_gridspec(2, max(1, len(models)), height_ratios=[1, 1.4])
    curves = figure.add_subplot(grid[0, :])
    confusion_axes = []
    for column, model in enumerate(models):
        history = pd.read_csv(history_csvs[model])
        accuracy = metrics[model]["accuracy"]
        label = f"{_label(model, pretrained[model])}: test {accuracy:.1%}"
        curves.plot(history["epoch"], history["val_accuracy"], marker="o", markersize=3, label=label)
        ax = figure.add_subplot(grid[1, column])
        counts = _read_confusion(confusion_csvs[model])
        rates = _row_normalised(counts).to_numpy()
        image = _heatmap(
            ax, rates, list(counts.index), "{:.2f}", vmax=1.0, fontsize=6.5, row_names=column == 0
        )
        name = _label(model, pretrained[model], separator="\n")
        ax.set_title(f"{name}\ntest accuracy {accuracy:.1%}")
        confusion_axes.append(ax)
    if confusion_axes:
        figure.colorbar(image, ax=confusion_axes, shrink=0.8, label="share of the true class")
    curves.set_title("Validation accuracy per epoch")
    curves.set_xlabel("epoch")
    curves.set_ylabel("validation accuracy")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    curves.grid(alpha=0.3)
    curves.legend(fontsize=9)
    dataset = metrics[models[0]]["dataset"] if models else ""
    note = _not_pretrained_note(pretrained)
    figure.suptitle(f"ResNet-18 transfer learning against the combined CNN on {dataset}{note}")
    return _save(figure, out_png)
