"""The study's cross-model figures: dead units, test accuracy, validation curves, transfer learning.

Same conventions as ``per_model``: lists of paths in any order, grouped by the model and seed written
inside the files; models drawn in the order the caller's ``models`` gives, each in its own colour (the
same in every figure, see ``style.model_styles``); several seeds shown as a mean with its spread.
``draw_*`` returns the Figure, ``plot_*`` writes it and returns its titles.
"""

import math

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.patheffects import withStroke
from matplotlib.ticker import PercentFormatter

from cnnstudy.analysis.tables import comparable_with_study
from cnnstudy.figures.per_model import (
    BAND_NOTE,
    DEAD_PREFIX,
    _accuracy_axis,
    _accuracy_text,
    _add_band_entry,
    _class_count,
    _draw_spread,
    _epoch_axis,
    _figure,
    _fill,
    _heatmap,
    _joined,
    _label,
    _row_percent,
    _save,
    _test_images_text,
    _wrap,
    load_evaluations,
    load_runs,
    pooled_confusion,
)
from cnnstudy.figures.style import FONT, SMALL, WIDTH, model_styles

CHANCE_STYLE = dict(color="0.35", linestyle=":", linewidth=1.2)
TARGET_STYLE = dict(color="0.15", linestyle="--", linewidth=1.2)


def _in_order(groups, models):
    """The groups of ``models`` that have runs, in ``models`` order; runs of other models are left out."""
    return {model: groups[model] for model in models if model in groups}


def _seed_counts_text(groups, spread=BAND_NOTE):
    counts = sorted({len(runs) for runs in groups.values()})
    if counts in ([], [1]):
        return "1 seed per model"
    return f"mean of {'–'.join(map(str, counts))} seeds per model" + (f"; {spread}" if spread else "")


# ---- dead units -----------------------------------------------------------------------------------------

# A layer's line in every panel: its marker and line style (the colour is the panel's model).
LAYER_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LAYER_LINESTYLES = ("-", "--", ":", "-.")
LAYER_OFFSET = 0.2  # epochs between neighbouring layers' markers, so lines on the same value stay apart


def _probe_text(runs):
    sizes = sorted({run.summary["probe"]["size"] for run in runs if run.summary.get("probe")})
    return "/".join(map(str, sizes)) if sizes else "the"


def _layer_style(index):
    return dict(
        marker=LAYER_MARKERS[index % len(LAYER_MARKERS)],
        linestyle=LAYER_LINESTYLES[index % len(LAYER_LINESTYLES)],
        markersize=4,
        markerfacecolor="none" if index % 2 else None,  # hollow every other layer: stacked markers show
    )


def _dead_layers(runs, layers):
    """The layers of ``layers`` this model's history has, and those at 0% in every epoch of every seed."""
    present = [layer for layer in layers if DEAD_PREFIX + layer in runs[0].history.columns]
    zero = [layer for layer in present if all((run.history[DEAD_PREFIX + layer] == 0).all() for run in runs)]
    return present, zero


def _dead_panel_title(model, present, zero):
    if present and zero == present:
        return f"{model}\nall layers at 0%"
    if zero:
        return f"{model}\n{', '.join(zero)} at 0% throughout"
    return model


def _panel_grid(count):
    """(rows, columns) for ``count`` panels in a 9.5 in column: at most three side by side."""
    columns = min(3, max(1, count))
    return max(1, math.ceil(count / columns)), columns


def draw_dead_units(history_csvs, summary_jsons, models):
    """Share of dead ReLU units per layer and epoch, one panel per custom CNN in ``models``, drawn in the
    model's colour; layers told apart by marker and line style, offset a little along the epoch axis."""
    groups = _in_order(load_runs(history_csvs, summary_jsons), models)
    panels = {
        model: runs
        for model, runs in groups.items()
        if any(column.startswith(DEAD_PREFIX) for column in runs[0].history.columns)
    }  # ResNet histories carry no dead-unit columns
    layers = list(
        dict.fromkeys(
            column.removeprefix(DEAD_PREFIX)
            for runs in panels.values()
            for column in runs[0].history.columns
            if column.startswith(DEAD_PREFIX)
        )
    )
    styles = model_styles(models)
    rows, columns = _panel_grid(len(panels))
    figure = _figure(WIDTH, max(5.0, 2.9 * rows + 2.0))
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    flat_axes = axes.ravel()
    top = 0.0
    for ax, (model, runs) in zip(flat_axes, panels.items(), strict=False):
        present, zero = _dead_layers(runs, layers)
        for index, layer in enumerate(layers):
            if layer in present:
                offset = (index - (len(layers) - 1) / 2) * LAYER_OFFSET
                style = _layer_style(index) | {"color": styles[model].colour}
                _draw_spread(ax, runs, DEAD_PREFIX + layer, layer, offset=offset, **style)
                top = max(top, max(run.history[DEAD_PREFIX + layer].max() for run in runs))
        ax.set_title(_dead_panel_title(model, present, zero))
        _epoch_axis(ax)
    for index, ax in enumerate(flat_axes[: len(panels)]):
        bottom = index + columns >= len(panels)  # the lowest panel of its column: epoch labels under it
        ax.xaxis.set_tick_params(labelbottom=bottom)
        ax.set_xlabel("epoch" if bottom else "")
    # from just below 0, so a layer with no dead units shows as a line on the floor, not hidden under it
    flat_axes[0].set_ylim(-0.03, min(1.03, max(0.1, top * 1.1)))
    flat_axes[0].yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    empty = list(flat_axes[len(panels) :])
    for ax in empty:
        ax.set_visible(False)
    all_runs = [run for runs in panels.values() for run in runs]
    if panels:
        handles = [Line2D([], [], color="0.2", **_layer_style(index)) for index in range(len(layers))]
        labels = list(layers)
        _add_band_entry(handles, labels, panels.values())
        labels = [_fill(label, 30) for label in labels]
        title = "layer (colour: model)"
        if empty:  # the legend takes the first empty slot
            empty[0].set_visible(True)
            empty[0].set_axis_off()
            empty[0].legend(handles, labels, loc="center", title=title)
        else:
            figure.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), title=title)
        figure.supylabel("dead ReLU units (share of the layer's units)")
    else:
        flat_axes[0].set_visible(True)
        flat_axes[0].set_axis_off()
        flat_axes[0].set_title("")
        flat_axes[0].text(
            0.5, 0.5, "no history has dead-unit columns", ha="center", transform=flat_axes[0].transAxes
        )
    seeds = "; lines: mean over seeds" if len(all_runs) > len(panels) else ""
    figure.suptitle(
        _wrap(
            "Dead ReLU units per layer and epoch\n"
            f"dead = zero for all {_probe_text(all_runs)} probe images (stratified by class); "
            f"conv unit = channel, FC unit = neuron{seeds}",
            WIDTH,
        )
    )
    return figure


def plot_dead_units(history_csvs, summary_jsons, models, out_png):
    return _save(draw_dead_units(history_csvs, summary_jsons, models), out_png)


# ---- test accuracy against the study --------------------------------------------------------------------


def study_comparability(groups, study):
    """(comparable, legend label): the study's numbers compare with ours only when every run used its
    archive (same md5) at its image size."""
    metrics = [e.metrics for evaluations in groups.values() for e in evaluations]
    if metrics and comparable_with_study(metrics, study):
        return True, "study (reported, 50 epochs)"
    sizes = {m.get("image_size") for m in metrics}
    size_text = "/".join(str(size) for size in sorted(sizes, key=str))
    return False, (
        f"study (not comparable: {_joined(m['dataset'] for m in metrics)} at {size_text} px "
        f"vs the study's {study['image_size']} px Imagenette)"
    )


STUDY_COMPARABLE = dict(facecolor="0.55", edgecolor="0.3")  # a grey bar beside ours
STUDY_OTHER_DATA = dict(  # an open marker on our bar: another dataset's number, for reference only
    marker="D", markersize=7, markerfacecolor="white", markeredgecolor="black", linestyle="none"
)
WHISKER = dict(capsize=4, linewidth=1.3, path_effects=[withStroke(linewidth=3, foreground="white")])


def _draw_ours(ax, x, evaluations, width, style):
    """Mean bar in the model's colour; one seed: its Wilson 95% interval; several: each seed as a dot and
    the min–max range. Whiskers and dots carry a white edge, so they show on a bar of any colour."""
    accuracies = np.array([e.metrics["accuracy"] for e in evaluations])
    mean = accuracies.mean()
    ax.bar(x, mean, width, color=style.colour, hatch=style.hatch or None, edgecolor="white")
    if len(accuracies) == 1:
        low, high = evaluations[0].metrics["accuracy_ci95"]
    else:
        low, high = accuracies.min(), accuracies.max()
        offsets = np.linspace(-width / 4, width / 4, len(accuracies))
        ax.plot(x + offsets, accuracies, "o", color="black", markeredgecolor="white", markersize=5, zorder=3)
    ax.errorbar(x, mean, yerr=[[mean - low], [high - mean]], fmt="none", color="black", **WHISKER)
    _value_inside(ax, x, mean)


def _value_inside(ax, x, value):
    """The bar's value written inside it at the foot, on a white box: legible on any bar colour."""
    box = dict(facecolor="white", edgecolor="none", alpha=0.85, pad=1)
    ax.text(x, 0.015, f"{value:.1%}", ha="center", va="bottom", fontsize=SMALL, bbox=box, zorder=4)


def _accuracy_legend(groups, study_label, comparable, show_study, target, classes):
    several = any(len(evaluations) > 1 for evaluations in groups.values())
    ours = "ours: test accuracy, mean over seeds" if several else "ours: test accuracy (one seed)"
    handles = [Patch(facecolor="0.75", label=f"{ours} (bar colour = model)")]
    if any(len(evaluations) == 1 for evaluations in groups.values()):
        handles.append(Line2D([], [], color="black", label="95% Wilson CI (one seed)"))
    if several:
        handles.append(Line2D([], [], color="black", label="min–max over seeds"))
        handles.append(Line2D([], [], color="black", marker="o", linestyle="none", label="each seed"))
    if show_study:
        if comparable:
            handles.append(Patch(label=study_label, **STUDY_COMPARABLE))
        else:
            handles.append(Line2D([], [], label=study_label, **STUDY_OTHER_DATA))
    handles.append(Line2D([], [], label=f"target {target:.0%}", **TARGET_STYLE))
    handles.append(Line2D([], [], label=f"chance ({classes} classes)", **CHANCE_STYLE))
    for handle in handles:
        handle.set_label(_fill(handle.get_label(), 52))
    return handles


def draw_comparison_accuracy(metrics_jsons, models, study):
    """Test accuracy of every model in ``models``, with the study's reported value where it has one:
    a grey bar beside ours when comparable, an open marker on our bar when it is from other data."""
    groups = _in_order(load_evaluations(None, metrics_jsons), models)
    comparable, study_label = study_comparability(groups, study)
    reported = study.get("reported") or {}
    shown = [model for model in groups if model in reported]
    beside = comparable and bool(shown)  # a study bar beside ours only when the numbers compare
    width = 0.38 if beside else 0.6
    styles = model_styles(models)
    figure = _figure(WIDTH, 6.0)
    ax = figure.subplots()
    for x, (model, evaluations) in enumerate(groups.items()):
        _draw_ours(ax, x - width / 2 if beside else x, evaluations, width, styles[model])
        if model in reported:
            value = reported[model]["test_accuracy"]
            if comparable:
                ax.bar(x + width / 2, value, width, **STUDY_COMPARABLE)
                _value_inside(ax, x + width / 2, value)
            else:
                ax.plot(x, value, zorder=5, **STUDY_OTHER_DATA)
    target = study["target_accuracy"]
    classes = _class_count(next(iter(groups.values()))[0].metrics) if groups else 10
    ax.axhline(target, **TARGET_STYLE)
    ax.axhline(1 / classes, **CHANCE_STYLE)
    labels = [_label(model, runs[0].metrics.get("pretrained"), "\n") for model, runs in groups.items()]
    ax.set_xticks(range(len(groups)), labels, rotation=25, ha="right", rotation_mode="anchor")
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_ylabel("test accuracy")
    ax.grid(axis="y", alpha=0.3)
    figure.legend(
        handles=_accuracy_legend(groups, study_label, comparable, bool(shown), target, classes),
        loc="outside lower center",
        ncols=2,
    )
    evaluations = [e for runs in groups.values() for e in runs]
    datasets = _joined(e.metrics["dataset"] for e in evaluations)
    sizes = _joined(e.metrics["image_size"] for e in evaluations)
    figure.suptitle(
        _wrap(
            f"Test accuracy per model on {datasets} at {sizes} px\n"
            f"{_test_images_text(evaluations) if evaluations else 'no test images'}; "
            f"{_seed_counts_text(groups, spread=None)}",
            WIDTH,
        )
    )
    return figure


def plot_comparison_accuracy(metrics_jsons, models, study, out_png):
    return _save(draw_comparison_accuracy(metrics_jsons, models, study), out_png)


# ---- validation curves ----------------------------------------------------------------------------------


def _validation_curves(ax, groups, classes, models):
    """Every model's validation accuracy (mean over its seeds, min–max band), in the model's style."""
    styles = model_styles(models)
    for model, runs in groups.items():
        label = _label(model, runs[0].summary.get("pretrained"))
        style = styles[model]
        _draw_spread(
            ax,
            runs,
            "val_accuracy",
            label,
            color=style.colour,
            linestyle=style.linestyle,
            marker=style.marker,
        )
    _accuracy_axis(ax, classes, "validation accuracy")
    _epoch_axis(ax)


def _datasets_text(groups):
    return _joined(run.summary["dataset"] for runs in groups.values() for run in runs)


def _classes(groups):
    return _class_count(next(iter(groups.values()))[0].summary) if groups else 10


def _curves_legend(container, ax, groups, columns, **where):
    handles, labels = ax.get_legend_handles_labels()
    _add_band_entry(handles, labels, groups.values())
    labels = [_fill(label, 40) for label in labels]
    container.legend(handles, labels, loc="outside lower center", ncols=columns, title="model", **where)


def draw_comparison_curves(history_csvs, summary_jsons, models):
    groups = _in_order(load_runs(history_csvs, summary_jsons), models)
    figure = _figure(WIDTH, 6.5)
    ax = figure.subplots()
    _validation_curves(ax, groups, _classes(groups), models)
    _curves_legend(figure, ax, groups, 3)
    figure.suptitle(
        _wrap(
            f"Validation accuracy per epoch, all models on {_datasets_text(groups)}\n{_seed_counts_text(groups)}",
            WIDTH,
        )
    )
    return figure


def plot_comparison_curves(history_csvs, summary_jsons, models, out_png):
    return _save(draw_comparison_curves(history_csvs, summary_jsons, models), out_png)


# ---- transfer learning ----------------------------------------------------------------------------------


def _confusion_grid(count):
    """(rows, columns) of confusion matrices: up to three side by side, four as two by two."""
    columns = 2 if count == 4 else min(3, max(1, count))
    return max(1, math.ceil(count / columns)), columns


def draw_comparison_transfer(history_csvs, summary_jsons, confusion_csvs, metrics_jsons, models):
    """Validation curves (top) and pooled, row-normalised test confusion matrices (below), one per model."""
    groups = _in_order(load_runs(history_csvs, summary_jsons), models)
    evaluations = _in_order(load_evaluations(confusion_csvs, metrics_jsons), models)
    shown = [model for model in groups if model in evaluations]
    rows, columns = _confusion_grid(len(shown))
    # a matrix's side: the column less class names and colour bar; below and above it, its labels
    row_in = (WIDTH - 2.4) / columns + 1.8
    figure = _figure(WIDTH, 4.4 + rows * row_in + 0.7)
    # two subfigures lay out apart: the curves' legend does not shift the confusion matrices
    top, bottom = figure.subfigures(2, 1, height_ratios=[4.4, rows * row_in])
    curves = top.subplots()
    _validation_curves(curves, groups, _classes(groups), models)
    curves.set_title("Validation accuracy per epoch")
    _curves_legend(top, curves, groups, min(3, len(groups) + 1))
    image, confusion_axes = None, []
    panels = bottom.subplots(rows, columns, squeeze=False).ravel()
    styles = model_styles(models)
    for index, (model, ax) in enumerate(zip(shown, panels, strict=False)):
        counts = pooled_confusion(evaluations[model])
        image = _heatmap(
            ax, _row_percent(counts), list(counts.index), "{:.0f}", vmax=100, row_names=index % columns == 0
        )
        seeds = len(evaluations[model])
        pooled = f", pooled over {seeds} seeds" if seeds > 1 else ""
        name = _label(model, evaluations[model][0].metrics.get("pretrained"), "\n")
        accuracy = _accuracy_text(evaluations[model]).replace(" (", "\n(", 1)
        ax.set_title(f"{name}\n{accuracy}{pooled}", fontsize=FONT, color="black")
        for spine in ax.spines.values():  # the frame in the model's colour, as its curve above
            spine.set_edgecolor(styles[model].colour)
            spine.set_linewidth(2.5)
        confusion_axes.append(ax)
    for ax in panels[len(shown) :]:
        ax.set_visible(False)
    if image is not None:
        bottom.colorbar(image, ax=confusion_axes, shrink=0.6, aspect=30, label="share of the true class (%)")
    figure.suptitle(
        _wrap(
            f"Transfer learning compared on {_datasets_text(groups)}: {', '.join(shown)}\n"
            f"top: validation accuracy per epoch ({_seed_counts_text(groups)}); "
            "below: test confusion, counts pooled over seeds, row-normalised, % (diagonal = recall)",
            WIDTH,
        )
    )
    return figure


def plot_comparison_transfer(history_csvs, summary_jsons, confusion_csvs, metrics_jsons, models, out_png):
    return _save(
        draw_comparison_transfer(history_csvs, summary_jsons, confusion_csvs, metrics_jsons, models), out_png
    )
