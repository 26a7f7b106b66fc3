"""The study's per-model figures (confusion, curves, gradients) and the helpers every figure shares.

Each ``draw_*`` function reads the files earlier stages wrote and returns a Figure on its own Agg canvas
(no pyplot, so no global figure state and nothing to close); each ``plot_*`` function draws and writes
one PNG atomically, and returns the figure's title strings so callers and tests can check what a figure
claims without reading pixels. The cross-model figures live in ``plots_compare`` and are importable from
here too, as the rule scripts do.

Inputs come as lists of paths, one entry per run (model × seed), in any order: runs are always grouped by
the ``model`` and ``seed`` written inside summary.json / metrics.json, never by list position.
"""

import json
import math
import os
import textwrap
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from cnnstudy.files import atomic_path

DPI = 100  # pixel size = figsize × DPI exactly: savefig keeps the whole canvas (no bbox_inches="tight")
NOT_PRETRAINED = "not pretrained (random init)"
DEAD_PREFIX = "dead_"
DEFAULT_CLASSES = 10  # Imagenette's; used for the chance line when a summary does not say
BAND_NOTE = "band: min–max over seeds"
# Below this many weights a 70-bin histogram is a barcode of single counts: such layers (all BatchNorm
# layers here) are drawn as a cumulative share instead, which stays readable with a few dozen values.
FEW_WEIGHTS = 2000
COMPARE_FIGURES = {
    "plot_dead_units",
    "plot_comparison_accuracy",
    "plot_comparison_curves",
    "plot_comparison_transfer",
}


def __getattr__(name):
    """The cross-model figures, importable from here as the rule scripts expect. Looked up lazily, since
    ``plots_compare`` imports this module's helpers."""
    if name in COMPARE_FIGURES:
        from cnnstudy import plots_compare

        return getattr(plots_compare, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- names and text -------------------------------------------------------------------------------------


def _title(model, dataset, pretrained):
    """Model and dataset; a random-init ResNet says so plainly (``pretrained`` is None for the CNNs)."""
    title = f"{model} on {dataset}"
    return f"{title} — {NOT_PRETRAINED}" if pretrained is False else title


def _label(model, pretrained, separator=" — "):
    return f"{model}{separator}{NOT_PRETRAINED}" if pretrained is False else model


def _wrap(text, width_in, fontsize=12):
    """Break each line of ``text`` so it fits ``width_in`` inches (a character is about 0.6 em wide)."""
    characters = max(20, int(width_in * 72 / (0.6 * fontsize)))
    return "\n".join(_fill(line, characters) for line in text.split("\n"))


def _fill(text, characters):
    """Lines of at most ``characters``, broken at spaces only (names like imagenette2-160 stay whole)."""
    return textwrap.fill(text, characters, break_on_hyphens=False)


def _epochs_text(epochs):
    return ", ".join(str(int(epoch)) for epoch in epochs)


# ---- figure, saving -------------------------------------------------------------------------------------


def _figure(width_in, height_in):
    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, out_png):
    with atomic_path(out_png) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)
    titles = [figure.get_suptitle()] + [ax.get_title() for ax in figure.axes]
    return [title for title in titles if title]


# ---- reading runs ---------------------------------------------------------------------------------------


class Run(NamedTuple):
    model: str
    seed: int
    summary: dict
    history: pd.DataFrame


class Evaluation(NamedTuple):
    model: str
    seed: int
    metrics: dict
    confusion: pd.DataFrame


def _read_json(path):
    return json.loads(Path(path).read_text())


def _paths(paths):
    """A list of paths; a rule with one run passes a single string."""
    return [paths] if isinstance(paths, str | os.PathLike) else list(paths)


def _grouped(items):
    """model → its runs sorted by seed, models in the order first met; a seed twice is an error."""
    groups = {}
    for item in items:
        groups.setdefault(item.model, []).append(item)
    for model, members in groups.items():
        members.sort(key=lambda member: member.seed)
        seeds = [member.seed for member in members]
        if len(set(seeds)) < len(seeds):
            raise ValueError(f"{model}: the inputs hold seed(s) {seeds}, one of them twice")
    return groups


def load_runs(history_csvs, summary_jsons):
    """model → [Run] from paired lists: ``history_csvs[i]`` and ``summary_jsons[i]`` share a run folder."""
    pairs = zip(_paths(history_csvs), _paths(summary_jsons), strict=True)
    runs = []
    for history_csv, summary_json in pairs:
        summary = _read_json(summary_json)
        runs.append(Run(summary["model"], int(summary["seed"]), summary, pd.read_csv(history_csv)))
    return _grouped(runs)


def _read_confusion(path):
    counts = pd.read_csv(path, index_col=0)
    return counts.reindex(columns=counts.index, fill_value=0)  # same class order on both axes


def load_evaluations(confusion_csvs, metrics_jsons):
    """model → [Evaluation] from paired lists: ``confusion_csvs[i]`` sits beside ``metrics_jsons[i]``.
    ``confusion_csvs`` None: metrics only (the confusion left None)."""
    metrics_jsons = _paths(metrics_jsons)
    confusion_csvs = [None] * len(metrics_jsons) if confusion_csvs is None else _paths(confusion_csvs)
    evaluations = []
    for confusion_csv, metrics_json in zip(confusion_csvs, metrics_jsons, strict=True):
        metrics = _read_json(metrics_json)
        confusion = None if confusion_csv is None else _read_confusion(confusion_csv)
        evaluations.append(Evaluation(metrics["model"], int(metrics["seed"]), metrics, confusion))
    return _grouped(evaluations)


def _one_model(groups, figure):
    if len(groups) != 1:
        raise ValueError(f"the {figure} figure shows one model; its inputs hold {sorted(groups) or 'none'}")
    return next(iter(groups.items()))


def _joined(values):
    return ", ".join(str(value) for value in sorted(set(values), key=str))


# ---- shared drawing -------------------------------------------------------------------------------------


def pooled_confusion(evaluations):
    """The seeds' confusion counts summed cell by cell, in the first seed's class order."""
    names = list(evaluations[0].confusion.index)
    total = sum(e.confusion.reindex(index=names, columns=names, fill_value=0) for e in evaluations)
    return total.astype(int)


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


def _accuracy_text(evaluations):
    """Test accuracy: one seed with its Wilson 95% interval, several as mean ± sd across seeds."""
    accuracies = [e.metrics["accuracy"] for e in evaluations]
    if len(accuracies) == 1:
        low, high = evaluations[0].metrics["accuracy_ci95"]
        return f"test accuracy {accuracies[0]:.1%} (95% Wilson CI {low:.1%}–{high:.1%})"
    spread = np.std(accuracies, ddof=1)
    return f"test accuracy {np.mean(accuracies):.1%} (mean of {len(accuracies)} seeds ± {spread:.1%} sd)"


def _test_images_text(evaluations):
    sizes = sorted({int(e.metrics["n_images"]) for e in evaluations})
    return f"{sizes[0]:,} test images" if len(sizes) == 1 else f"{sizes[0]:,}–{sizes[-1]:,} test images"


def _class_count(summary):
    classes = summary.get("classes") or summary.get("hyperparameters", {}).get("num_classes")
    return len(classes) if isinstance(classes, list) else int(classes or DEFAULT_CLASSES)


def _accuracy_axis(ax, classes, ylabel="accuracy"):
    """0–100% on every accuracy axis, so figures side by side compare; chance drawn for reference."""
    ax.axhline(1 / classes, color="0.35", linestyle=":", linewidth=1.2, label=f"chance ({classes} classes)")
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_ylabel(ylabel)


def _epoch_axis(ax):
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _across_seeds(runs, column):
    """Per epoch: mean, min and max of ``column`` over the seeds that reached that epoch."""
    stacked = pd.concat([run.history[["epoch", column]] for run in runs])
    return stacked.groupby("epoch")[column].agg(["mean", "min", "max"]).reset_index()


def _draw_spread(ax, runs, column, label, **style):
    """One seed: its line. Several: the mean line and a min–max band in the same colour."""
    spread = _across_seeds(runs, column)
    (line,) = ax.plot(spread["epoch"], spread["mean"], marker="o", markersize=2.5, label=label, **style)
    if len(runs) > 1:
        ax.fill_between(
            spread["epoch"], spread["min"], spread["max"], color=line.get_color(), alpha=0.18, linewidth=0
        )
    return line


def _add_band_entry(handles, labels, run_groups):
    """A legend entry for the min–max bands when some model has several seeds. It says so when seeds
    stopped at different epochs: the later epochs' mean and band then cover fewer seeds."""
    if not any(len(runs) > 1 for runs in run_groups):
        return
    label = BAND_NOTE
    if any(len({int(run.history["epoch"].max()) for run in runs}) > 1 for runs in run_groups):
        label += "; after an early stop, mean and band cover the seeds still training"
    handles.append(Patch(color="0.5", alpha=0.3))
    labels.append(label)


# ---- confusion ------------------------------------------------------------------------------------------


def draw_confusion(confusion_csvs, metrics_jsons):
    """One model's test confusion, counts pooled over its seeds, and the same row-normalised."""
    model, evaluations = _one_model(load_evaluations(confusion_csvs, metrics_jsons), "confusion")
    counts = pooled_confusion(evaluations)
    names = list(counts.index)
    metrics = evaluations[0].metrics
    figure = _figure(15, 7.5)
    left, right = figure.subplots(1, 2)
    image = _heatmap(left, counts.to_numpy(), names, "{:.0f}")
    figure.colorbar(image, ax=left, shrink=0.8, label="test images")
    image = _heatmap(right, _row_normalised(counts).to_numpy(), names, "{:.2f}", vmax=1.0)
    figure.colorbar(image, ax=right, shrink=0.8, label="share of the true class")
    seeds = len(evaluations)
    left.set_title(f"Counts (summed over {seeds} seeds)" if seeds > 1 else "Counts")
    right.set_title("Row-normalised (diagonal = recall)")
    title = _title(model, metrics["dataset"], metrics.get("pretrained"))
    pooled = f" — pooled over {seeds} seeds" if seeds > 1 else ""
    figure.suptitle(
        _wrap(
            f"Test-set confusion matrix: {title}{pooled}\n"
            f"{_accuracy_text(evaluations)}; {_test_images_text(evaluations)} per seed",
            15,
        )
    )
    return figure


def plot_confusion(confusion_csvs, metrics_jsons, out_png):
    return _save(draw_confusion(confusion_csvs, metrics_jsons), out_png)


# ---- training curves ------------------------------------------------------------------------------------


def _per_seed(runs, key, named=False):
    """'12' for one run; 'seed 0: 12, seed 1: 9' for several, or when ``named``."""
    if len(runs) == 1 and not named:
        return str(runs[0].summary[key])
    return ", ".join(f"seed {run.seed}: {run.summary[key]}" for run in runs)


def _mark_epochs(ax, runs):
    """The kept (best-validation) epoch of each seed, and the epoch where early stopping ended a run."""
    for index, epoch in enumerate(sorted({run.summary["best_epoch"] for run in runs})):
        label = f"best epoch ({_per_seed(runs, 'best_epoch')})" if index == 0 else None
        ax.axvline(epoch, color="tab:green", linestyle="--", linewidth=1.2, label=label)
    stopped = [run for run in runs if run.summary.get("stopped_early")]
    for index, run in enumerate(stopped):
        configured = run.summary["epochs_configured"]
        label = None
        if index == 0:
            label = (
                f"early stop ({_per_seed(stopped, 'stopped_epoch', len(runs) > 1)} of {configured} epochs)"
            )
        ax.axvline(run.summary["stopped_epoch"], color="tab:red", linestyle=":", linewidth=1.5, label=label)


def _still_improving_text(runs):
    """Runs whose best epoch is their last: more epochs might still have helped."""
    improving = [run for run in runs if run.summary.get("still_improving")]
    if not improving:
        return ""
    if len(runs) == 1:
        return f" — still improving at the last epoch ({runs[0].summary['stopped_epoch']})"
    return f" — still improving at the last epoch: seed(s) {_joined(run.seed for run in improving)}"


def draw_curves(history_csvs, summary_jsons):
    """One model's training and validation accuracy and loss per epoch, over all its seeds."""
    model, runs = _one_model(load_runs(history_csvs, summary_jsons), "training curves")
    summary = runs[0].summary
    figure = _figure(14, 5.5)
    accuracy_ax, loss_ax = figure.subplots(1, 2)
    for ax, metric in ((accuracy_ax, "accuracy"), (loss_ax, "loss")):
        _draw_spread(ax, runs, f"train_{metric}", "training", color="tab:blue")
        _draw_spread(ax, runs, f"val_{metric}", "validation", color="tab:orange")
        _mark_epochs(ax, runs)
        _epoch_axis(ax)
    _accuracy_axis(accuracy_ax, _class_count(summary))
    loss_ax.set_ylim(bottom=0)
    loss_ax.set_ylabel("cross-entropy loss")
    accuracy_ax.set_title("Accuracy")
    loss_ax.set_title("Loss")
    handles, labels = accuracy_ax.get_legend_handles_labels()
    _add_band_entry(handles, labels, [runs])
    legend_title = f"mean of {len(runs)} seeds" if len(runs) > 1 else f"seed {runs[0].seed}"
    figure.legend(
        handles, [_fill(label, 30) for label in labels], loc="outside right center", title=legend_title
    )
    title = _title(model, summary["dataset"], summary.get("pretrained"))
    figure.suptitle(_wrap(f"Training curves: {title}{_still_improving_text(runs)}", 14))
    return figure


def plot_curves(history_csvs, summary_jsons, out_png):
    return _save(draw_curves(history_csvs, summary_jsons), out_png)


# ---- gradient histograms --------------------------------------------------------------------------------


class GradientHistogram(NamedTuple):
    """One layer's weight gradients in one epoch on the signed log axis x = sign(g)·(log10|g| − log10 L).

    ``edges``: x of the log bins' boundaries, negative bins then positive; the middle bin (|g| < L) has no
    width there and sits at x = 0. ``density``: share of the weights per unit of x (per decade of |g|) in
    each log bin. ``below``, ``middle``, ``above``: shares under −H, with |g| < L (zeros included), over H.
    Together: sum(density × diff(edges)) + below + middle + above = 1.
    """

    edges: np.ndarray
    density: np.ndarray
    below: float
    middle: float
    above: float
    weights: int


def _signed_log(values, floor):
    return np.sign(values) * np.log10(np.abs(values) / floor)


def _bin_kinds(low, high):
    """Masks over the bins (by their low/high gradient values): below −H, |g| < L, above H, log-spaced."""
    below, above = np.isneginf(low), np.isposinf(high)
    middle = (low < 0) & (high > 0) & ~below & ~above
    return below, middle, above, ~(below | middle | above)


def gradient_histogram(rows):
    """Rows (bin, low, high, count) of one layer in one epoch → its GradientHistogram."""
    rows = rows.sort_values("bin")
    low, high = rows["low"].to_numpy(float), rows["high"].to_numpy(float)
    count = rows["count"].to_numpy(float)
    weights = count.sum()
    share = count / weights
    below, middle, above, logged = _bin_kinds(low, high)
    floor = high[middle][0]
    edges = np.append(_signed_log(low[logged], floor), _signed_log(high[logged][-1:], floor))
    return GradientHistogram(
        edges=edges,
        density=share[logged] / np.diff(edges),
        below=float(share[below].sum()),
        middle=float(share[middle].sum()),
        above=float(share[above].sum()),
        weights=int(weights),
    )


def _binning(gradients):
    """(L, H, bins per decade) of the file's fixed bins."""
    low, high = gradients["low"].to_numpy(float), gradients["high"].to_numpy(float)
    _, middle, above, logged = _bin_kinds(low, high)
    widths = np.abs(np.log10(high[logged] / low[logged]))  # decades per bin, the same for every bin
    return high[middle][0], low[above][0], round(1 / np.median(widths))


def _power_label(value):
    """A gradient value as a tick label: 0, ±1, ±10⁻³ (or 3e-09 when not a power of ten)."""
    if value == 0:
        return "0"
    exponent = math.log10(abs(value))
    sign = "−" if value < 0 else ""
    if abs(exponent - round(exponent)) > 1e-6:
        return f"{value:.0e}"
    return f"{sign}1" if round(exponent) == 0 else f"${sign}10^{{{round(exponent)}}}$"


def _gradient_x_axis(ax, floor, span):
    """Ticks every few decades, labelled with the gradient values they stand for (0 in the middle)."""
    step = max(1, math.ceil(span / 3))
    half = np.arange(step, span + 1e-9, step)
    ticks = np.concatenate([-half[::-1], [0.0], half])
    ax.set_xticks(ticks, [_power_label(math.copysign(floor * 10 ** abs(t), t) if t else 0) for t in ticks])
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlim(-span - 0.3, span + 0.3)


def _share_text(shares):
    """Per-epoch shares of one out-of-range bin; one value when every epoch agrees."""
    texts = ["0" if share == 0 else "<0.1%" if share < 0.001 else f"{share:.1%}" for share in shares]
    return texts[:1] if len(set(texts)) == 1 else texts


LINE = 0.068  # height of one line of share text, as a fraction of the panel


def _draw_outside_shares(ax, histograms, colours, floor, ceiling):
    """The shares outside the log bins, written at the panel's top: left (< −H), middle, right (> H).

    Returns the number of text lines, so the caller can leave that much headroom above the curves."""
    columns = [
        (0.02, "left", f"< −{_power_label(ceiling)}", [h.below for h in histograms]),
        (0.5, "center", f"|g| < {_power_label(floor)}", [h.middle for h in histograms]),
        (0.98, "right", f"> {_power_label(ceiling)}", [h.above for h in histograms]),
    ]
    lines = 1
    for x, align, header, shares in columns:
        texts = _share_text(shares)
        ax.text(x, 0.97, header, transform=ax.transAxes, ha=align, va="top", fontsize=6.5, color="0.3")
        for index, text in enumerate(texts):
            colour = colours[index] if len(texts) > 1 else "0.3"
            y = 0.97 - LINE * (index + 1)
            ax.text(x, y, text, transform=ax.transAxes, ha=align, va="top", fontsize=6.5, color=colour)
        lines = max(lines, 1 + len(texts))
    return lines


def _cumulative(histogram):
    """(x, cumulative share) through the log bins' edges, with the middle bin's jump at x = 0."""
    mass = np.cumsum(histogram.density * np.diff(histogram.edges))
    values = histogram.below + np.concatenate([[0.0], mass])
    values[histogram.edges > 0] += histogram.middle  # right of x = 0 the middle bin is already passed
    zero = np.flatnonzero(np.isclose(histogram.edges, 0.0))[0]
    x = np.insert(histogram.edges, zero, 0.0)
    y = np.insert(values, zero + 1, values[zero] + histogram.middle)
    return x, y


def _draw_layer(ax, layer_rows, epochs, colours, floor, ceiling):
    histograms = [gradient_histogram(layer_rows[layer_rows["epoch"] == epoch]) for epoch in epochs]
    weights = histograms[0].weights
    cumulative = weights < FEW_WEIGHTS
    for histogram, colour in zip(histograms, colours, strict=True):
        if cumulative:
            x, y = _cumulative(histogram)
            ax.plot(x, y, color=colour, linewidth=1.3)
        else:
            ax.stairs(histogram.density, histogram.edges, color=colour, linewidth=1.3)
    lines = _draw_outside_shares(ax, histograms, colours, floor, ceiling)
    headroom = 1 / max(0.45, 1 - LINE * lines - 0.06)  # the share text sits above every curve
    if cumulative:
        ax.set_ylim(-0.02, headroom)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
        ax.set_ylabel("cumulative share", fontsize=8)
    else:
        top = max(float(h.density.max()) for h in histograms) or 1.0
        ax.set_ylim(0, top * headroom)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        ax.set_ylabel("share per decade", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(alpha=0.25)
    kind = layer_rows["kind"].iloc[0]
    ax.set_title(f"{layer_rows['layer'].iloc[0]} ({kind}, {weights:,} weights)", fontsize=9)


def _epoch_colours(count):
    """Dark, distinct colours: tab10 up to ten epochs, else viridis without its pale yellow end."""
    if count <= 10:
        return [colormaps["tab10"](index) for index in range(count)]
    return list(colormaps["viridis"](np.linspace(0.0, 0.8, count)))


def _layers_text(layers):
    return ", ".join(layers) if len(layers) <= 6 else f"{len(layers)} layers, {layers[0]} to {layers[-1]}"


def _gradient_title(summary, layers, epochs):
    stopped = summary.get("stopped_epoch", max(epochs, default=0))
    title = _title(summary["model"], summary["dataset"], summary.get("pretrained"))
    last = f" ({stopped} = last trained epoch)" if stopped in epochs else ""
    text = f"Weight gradients of each epoch's last training batch: {title}\n"
    text += f"layers: {_layers_text(layers)}; epochs {_epochs_text(epochs)}{last}"
    missing = summary.get("gradient_epochs", {}).get("missing") or []
    if missing:
        text += f"; epochs {_epochs_text(missing)} not reached: the run stopped at {stopped}"
    return text


def _gradient_footnote(floor, ceiling, per_decade):
    low, high = _power_label(floor), _power_label(ceiling)
    return (
        f"x = sign(g)·(log₁₀|g| − log₁₀ {low}); ticks show gradient values. Fixed bins: {per_decade} per "
        f"decade of |g| from {low} to {high} for each sign; |g| < {low} (zeros included), g < −{high} and "
        f"g > {high} are counted apart and written in each panel. Histogram panels: share of the layer's "
        f"weights per decade (area + written shares = 100%). Layers under {FEW_WEIGHTS:,} weights: "
        "cumulative share from the most negative gradient."
    )


def draw_gradients(gradients_csv, summary_json):
    """One run's weight-gradient distribution per layer, one line per recorded epoch."""
    gradients = pd.read_csv(gradients_csv)
    summary = _read_json(summary_json)
    layers = list(pd.unique(gradients["layer"]))  # the order training recorded them: input to output
    epochs = sorted(int(epoch) for epoch in gradients["epoch"].unique())
    colours = _epoch_colours(len(epochs))
    columns = min(4, max(1, math.ceil(math.sqrt(len(layers)))))
    rows = max(1, math.ceil(len(layers) / columns))
    width = max(9.0, 3.6 * columns + 1.6)
    figure = _figure(width, max(5.0, 2.9 * rows + 1.8))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    if layers:
        floor, ceiling, per_decade = _binning(gradients)
        span = math.log10(ceiling / floor)
        for ax, layer in zip(axes, layers, strict=False):
            _draw_layer(ax, gradients[gradients["layer"] == layer], epochs, colours, floor, ceiling)
            _gradient_x_axis(ax, floor, span)
        figure.supxlabel(_wrap(_gradient_footnote(floor, ceiling, per_decade), width, 9), fontsize=9)
        stopped = summary.get("stopped_epoch")
        labels = [f"epoch {e}" + (" (last trained)" if e == stopped else "") for e in epochs]
        handles = [Line2D([], [], color=colour, linewidth=2) for colour in colours]
        figure.legend(handles, labels, loc="outside right center", title="recorded epoch")
    else:
        axes[0].set_axis_off()
        axes[0].text(0.5, 0.5, "no gradient histograms recorded", ha="center", transform=axes[0].transAxes)
    for ax in axes[max(1, len(layers)) :]:
        ax.set_visible(False)
    figure.suptitle(_wrap(_gradient_title(summary, layers, epochs), width))
    return figure


def plot_gradients(gradients_csv, summary_json, out_png):
    return _save(draw_gradients(gradients_csv, summary_json), out_png)
