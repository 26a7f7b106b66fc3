"""The study's cross-model figures: dead units, test accuracy, validation curves, transfer learning.

Same conventions as ``plots``: lists of paths in any order, grouped by the model and seed written inside
the files; models drawn in the order the caller's ``models`` gives; several seeds shown as a mean with
its spread. ``draw_*`` returns the Figure, ``plot_*`` writes it and returns its titles.
"""

import numpy as np
from matplotlib import colormaps
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from cnnstudy.plots import (
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
    _row_normalised,
    _save,
    _test_images_text,
    _wrap,
    load_evaluations,
    load_runs,
    pooled_confusion,
)
from cnnstudy.tables import comparable_with_study


def _in_order(groups, models):
    """The groups of ``models`` that have runs, in ``models`` order; runs of other models are left out."""
    return {model: groups[model] for model in models if model in groups}


def _colours(count):
    return [colormaps["tab10"](index % 10) for index in range(count)]


def _is_resnet(runs):
    return runs[0].summary.get("pretrained") is not None  # the CNNs record None


def _seed_counts_text(groups, spread=BAND_NOTE):
    counts = sorted({len(runs) for runs in groups.values()})
    if counts in ([], [1]):
        return "1 seed per model"
    return f"mean of {'–'.join(map(str, counts))} seeds per model" + (f"; {spread}" if spread else "")


# ---- dead units -----------------------------------------------------------------------------------------


def _probe_text(runs):
    sizes = sorted({run.summary["probe"]["size"] for run in runs if run.summary.get("probe")})
    return "/".join(map(str, sizes)) if sizes else "the"


def draw_dead_units(history_csvs, summary_jsons, models):
    """Share of dead ReLU units per layer and epoch, one panel per custom CNN in ``models``."""
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
    colours = dict(zip(layers, _colours(len(layers)), strict=True))  # a layer has one colour in every panel
    columns = min(3, max(1, len(panels)))
    rows = max(1, -(-len(panels) // columns))
    figure = _figure(max(9.0, 4.3 * columns + 2.0), max(5.0, 3.4 * rows + 1.5))
    axes = figure.subplots(rows, columns, squeeze=False, sharey=True).ravel()
    top = 0.0
    for ax, (model, runs) in zip(axes, panels.items(), strict=False):
        for layer in layers:
            if DEAD_PREFIX + layer in runs[0].history.columns:
                _draw_spread(ax, runs, DEAD_PREFIX + layer, layer, color=colours[layer])
                top = max(top, max(run.history[DEAD_PREFIX + layer].max() for run in runs))
        ax.set_title(model)
        _epoch_axis(ax)
    # from just below 0, so a layer with no dead units shows as a line on the floor, not hidden under it
    axes[0].set_ylim(-0.02, min(1.02, max(0.1, top * 1.1)))
    axes[0].yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    all_runs = [run for runs in panels.values() for run in runs]
    if panels:
        handles = [Line2D([], [], color=colours[layer], marker="o", markersize=3) for layer in layers]
        labels = list(layers)
        _add_band_entry(handles, labels, panels.values())
        labels = [_fill(label, 30) for label in labels]
        figure.legend(handles, labels, loc="outside right center", title="layer")
        figure.supylabel("dead ReLU units (share of the layer's units)")
    else:
        axes[0].set_visible(True)
        axes[0].set_axis_off()
        axes[0].text(0.5, 0.5, "no history has dead-unit columns", ha="center", transform=axes[0].transAxes)
    seeds = "; lines: mean over seeds" if len(all_runs) > len(panels) else ""
    figure.suptitle(
        _wrap(
            "Dead ReLU units per layer and epoch\n"
            f"dead = zero for all {_probe_text(all_runs)} probe images (stratified by class); "
            f"conv unit = channel, FC unit = neuron{seeds}",
            figure.get_figwidth(),
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


def _draw_ours(ax, x, evaluations, width):
    """Mean bar; one seed: its Wilson 95% interval; several: each seed as a dot and the min–max range."""
    accuracies = np.array([e.metrics["accuracy"] for e in evaluations])
    mean = accuracies.mean()
    ax.bar(x, mean, width, color="tab:blue")
    if len(accuracies) == 1:
        low, high = evaluations[0].metrics["accuracy_ci95"]
        style = dict(color="black", capsize=4, linewidth=1.2)
    else:
        low, high = accuracies.min(), accuracies.max()
        style = dict(color="tab:red", capsize=4, linewidth=1.2)
        offsets = np.linspace(-width / 4, width / 4, len(accuracies))
        ax.plot(x + offsets, accuracies, "o", color="black", markersize=3.5, zorder=3)
    ax.errorbar(x, mean, yerr=[[mean - low], [high - mean]], fmt="none", **style)
    _value_inside(ax, x, mean, "white")


def _draw_study(ax, x, value, width, comparable):
    if comparable:
        ax.bar(x, value, width, color="0.45")
    else:  # faded and hatched: a number from another dataset or size, not a reference for ours
        ax.bar(x, value, width, facecolor="0.93", edgecolor="0.6", hatch="//")
    _value_inside(ax, x, value, "white" if comparable else "0.2", None if comparable else "0.93")


def _value_inside(ax, x, value, colour, background=None):
    """The bar's value written inside it at the foot, clear of error bars and seed dots."""
    box = dict(facecolor=background, edgecolor="none", pad=1) if background else None
    ax.text(x, 0.02, f"{value:.1%}", ha="center", va="bottom", fontsize=8, color=colour, bbox=box)


def _accuracy_legend(groups, study_label, comparable, show_study, target):
    handles = [Patch(color="tab:blue", label="ours: test accuracy (mean over seeds)")]
    if any(len(evaluations) == 1 for evaluations in groups.values()):
        handles.append(Line2D([], [], color="black", label="95% Wilson CI (one seed)"))
    if any(len(evaluations) > 1 for evaluations in groups.values()):
        handles.append(Line2D([], [], color="tab:red", label="min–max over seeds"))
        handles.append(Line2D([], [], color="black", marker="o", linestyle="none", label="each seed"))
    if show_study:
        style = dict(color="0.45") if comparable else dict(facecolor="0.93", edgecolor="0.6", hatch="//")
        handles.append(Patch(label=study_label, **style))
    handles.append(Line2D([], [], color="tab:red", linestyle="--", label=f"target {target:.0%}"))
    for handle in handles:
        handle.set_label(_fill(handle.get_label(), 34))
    return handles


def draw_comparison_accuracy(metrics_jsons, models, study):
    """Test accuracy of every model in ``models``, beside the study's reported value where it has one."""
    groups = _in_order(load_evaluations(None, metrics_jsons), models)
    comparable, study_label = study_comparability(groups, study)
    reported = study.get("reported") or {}
    shown = [model for model in groups if model in reported]
    width = 0.38 if shown else 0.6
    figure = _figure(max(10.0, 1.5 * len(groups) + 5.0), 6.5)
    ax = figure.subplots()
    for x, (model, evaluations) in enumerate(groups.items()):
        _draw_ours(ax, x - width / 2 if shown else x, evaluations, width)
        if model in reported:
            _draw_study(ax, x + width / 2, reported[model]["test_accuracy"], width, comparable)
    target = study["target_accuracy"]
    ax.axhline(target, color="tab:red", linestyle="--", linewidth=1.2)
    labels = [_label(model, runs[0].metrics.get("pretrained"), "\n") for model, runs in groups.items()]
    ax.set_xticks(range(len(groups)), labels, rotation=20, ha="right", rotation_mode="anchor")
    ax.set_ylim(0, 1.08)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_ylabel("test accuracy")
    ax.grid(axis="y", alpha=0.3)
    figure.legend(
        handles=_accuracy_legend(groups, study_label, comparable, bool(shown), target),
        loc="outside right center",
    )
    evaluations = [e for runs in groups.values() for e in runs]
    datasets = _joined(e.metrics["dataset"] for e in evaluations)
    sizes = _joined(e.metrics["image_size"] for e in evaluations)
    figure.suptitle(
        f"Test accuracy per model on {datasets} at {sizes} px\n"
        f"{_test_images_text(evaluations) if evaluations else 'no test images'}; {_seed_counts_text(groups, spread=None)}"
    )
    return figure


def plot_comparison_accuracy(metrics_jsons, models, study, out_png):
    return _save(draw_comparison_accuracy(metrics_jsons, models, study), out_png)


# ---- validation curves ----------------------------------------------------------------------------------


def _validation_curves(ax, groups, classes):
    """Every model's validation accuracy (mean over its seeds, min–max band), ResNet-18 modes dashed."""
    for (model, runs), colour in zip(groups.items(), _colours(len(groups)), strict=True):
        label = _label(model, runs[0].summary.get("pretrained"))
        style = dict(color=colour, linestyle="--" if _is_resnet(runs) else "-")
        _draw_spread(ax, runs, "val_accuracy", _fill(label, 34), **style)
    _accuracy_axis(ax, classes, "validation accuracy")
    _epoch_axis(ax)


def _datasets_text(groups):
    return _joined(run.summary["dataset"] for runs in groups.values() for run in runs)


def _classes(groups):
    return _class_count(next(iter(groups.values()))[0].summary) if groups else 10


def draw_comparison_curves(history_csvs, summary_jsons, models):
    groups = _in_order(load_runs(history_csvs, summary_jsons), models)
    figure = _figure(12, 6.5)
    ax = figure.subplots()
    _validation_curves(ax, groups, _classes(groups))
    handles, labels = ax.get_legend_handles_labels()
    _add_band_entry(handles, labels, groups.values())
    labels = [_fill(label, 34) for label in labels]
    figure.legend(handles, labels, loc="outside right center", title="model (ResNet-18 dashed)")
    figure.suptitle(
        _wrap(
            f"Validation accuracy per epoch, all models on {_datasets_text(groups)}\n{_seed_counts_text(groups)}",
            12,
        )
    )
    return figure


def plot_comparison_curves(history_csvs, summary_jsons, models, out_png):
    return _save(draw_comparison_curves(history_csvs, summary_jsons, models), out_png)


# ---- transfer learning ----------------------------------------------------------------------------------


def draw_comparison_transfer(history_csvs, summary_jsons, confusion_csvs, metrics_jsons, models):
    """Validation curves (top) and pooled, row-normalised test confusion matrices (below), one per model."""
    groups = _in_order(load_runs(history_csvs, summary_jsons), models)
    evaluations = _in_order(load_evaluations(confusion_csvs, metrics_jsons), models)
    shown = [model for model in groups if model in evaluations]
    figure = _figure(max(13.0, 5.2 * len(shown) + 2.5), 12)
    # two subfigures lay out apart: the curves' legend on the right does not shift the confusion row
    top, bottom = figure.subfigures(2, 1, height_ratios=[1, 1.5])
    curves = top.subplots()
    _validation_curves(curves, groups, _classes(groups))
    curves.set_title("Validation accuracy per epoch")
    handles, labels = curves.get_legend_handles_labels()
    _add_band_entry(handles, labels, groups.values())
    labels = [_fill(label, 34) for label in labels]
    top.legend(handles, labels, loc="outside right center", fontsize=9)
    image, confusion_axes = None, []
    panels = bottom.subplots(1, max(1, len(shown)), squeeze=False)[0]
    for ax in panels[len(shown) :]:
        ax.set_visible(False)
    for column, (model, ax) in enumerate(zip(shown, panels, strict=False)):
        counts = pooled_confusion(evaluations[model])
        rates = _row_normalised(counts).to_numpy()
        image = _heatmap(
            ax, rates, list(counts.index), "{:.2f}", vmax=1.0, fontsize=6.5, row_names=column == 0
        )
        seeds = len(evaluations[model])
        pooled = f", pooled over {seeds} seeds" if seeds > 1 else ""
        name = _label(model, evaluations[model][0].metrics.get("pretrained"), "\n")
        accuracy = _accuracy_text(evaluations[model]).replace(" (", "\n(", 1)
        ax.set_title(f"{name}\n{accuracy}{pooled}", fontsize=9)
        confusion_axes.append(ax)
    if image is not None:
        bottom.colorbar(image, ax=confusion_axes, shrink=0.8, label="share of the true class")
    figure.suptitle(
        _wrap(
            f"Transfer learning compared on {_datasets_text(groups)}: {', '.join(shown)}\n"
            f"top: validation accuracy per epoch ({_seed_counts_text(groups)}); "
            "below: test confusion, counts pooled over seeds, row-normalised (diagonal = recall)",
            figure.get_figwidth(),
        )
    )
    return figure


def plot_comparison_transfer(history_csvs, summary_jsons, confusion_csvs, metrics_jsons, models, out_png):
    return _save(
        draw_comparison_transfer(history_csvs, summary_jsons, confusion_csvs, metrics_jsons, models), out_png
    )
