"""The study's per-model figures (confusion, curves, gradients) and the helpers every figure shares.

Each ``draw_*`` function reads the files earlier stages wrote and returns a Figure on its own Agg canvas
(no pyplot, so no global figure state and nothing to close); each ``plot_*`` function draws and writes
one PNG atomically, and returns the figure's title strings so callers and tests can check what a figure
claims without reading pixels. The gradient figure lives in ``gradients``, the cross-model figures in
``comparison``; sizes, fonts and model colours in ``style``.

Inputs come as lists of paths, one entry per run (model × seed), in any order: runs are always grouped by
the ``model`` and ``seed`` written inside summary.json / metrics.json, never by list position.
"""

import json
import os
import textwrap
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from cnnstudy.base.files import atomic_path
from cnnstudy.figures.style import DPI, SMALL, WIDTH, apply_style

NOT_PRETRAINED = "not pretrained (random init)"
DEAD_PREFIX = "dead_"
DEFAULT_CLASSES = 10  # Imagenette's; used for the chance line when a summary does not say
BAND_NOTE = "band: min–max over seeds"
# ---- names and text -------------------------------------------------------------------------------------


def _title(model, dataset, pretrained):
    """Model and dataset; a random-init ResNet says so plainly (``pretrained`` is None for the CNNs)."""
    title = f"{model} on {dataset}"
    return f"{title} — {NOT_PRETRAINED}" if pretrained is False else title


def _label(model, pretrained, separator=" — "):
    return f"{model}{separator}{NOT_PRETRAINED}" if pretrained is False else model


def _wrap(text, width_in, fontsize=11):
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
    """A new figure in the figures' font sizes, at most the report's column (``WIDTH``) wide: a wider
    one would be shrunk on the page, and its labels with it."""
    if width_in > WIDTH:
        raise ValueError(f"a figure is at most {WIDTH} in wide (the report's column); asked {width_in}")
    apply_style()
    height_in = round(height_in * DPI) / DPI  # whole pixels: the PNG is exactly figsize × DPI
    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, out_png):
    """Write the PNG with its dpi in the file (so its size in inches can be read back)."""
    apply_style()
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


def _row_percent(counts):
    """Row-normalised shares in per cent: whole numbers fit the cells of a matrix in a narrow panel."""
    return _row_normalised(counts).to_numpy() * 100


def _heatmap(ax, values, class_names, text_format, vmax=None, fontsize=SMALL, row_names=True):
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


def _draw_spread(ax, runs, column, label, offset=0.0, **style):
    """One seed: its line. Several: the mean line and a min–max band in the same colour. ``offset``
    shifts the line along the epoch axis, so lines on the same values stay visible side by side."""
    spread = _across_seeds(runs, column)
    style = {"marker": "o", "markersize": 3, **style}
    (line,) = ax.plot(spread["epoch"] + offset, spread["mean"], label=label, **style)
    if len(runs) > 1:
        ax.fill_between(
            spread["epoch"] + offset,
            spread["min"],
            spread["max"],
            color=line.get_color(),
            alpha=0.18,
            linewidth=0,
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
    figure = _figure(WIDTH, 5.2)  # two square matrices side by side, their class names and titles
    left, right = figure.subplots(1, 2)
    image = _heatmap(left, counts.to_numpy(), names, "{:.0f}")
    figure.colorbar(image, ax=left, shrink=0.7, aspect=30, label="test images")
    image = _heatmap(right, _row_percent(counts), names, "{:.0f}", vmax=100, row_names=False)
    figure.colorbar(image, ax=right, shrink=0.7, aspect=30, label="share of the true class (%)")
    seeds = len(evaluations)
    left.set_title(f"Counts (summed over {seeds} seeds)" if seeds > 1 else "Counts")
    right.set_title("Row-normalised, % (diagonal = recall)")
    title = _title(model, metrics["dataset"], metrics.get("pretrained"))
    pooled = f" — pooled over {seeds} seeds" if seeds > 1 else ""
    figure.suptitle(
        _wrap(
            f"Test-set confusion matrix: {title}{pooled}\n"
            f"{_accuracy_text(evaluations)}; {_test_images_text(evaluations)} per seed",
            WIDTH,
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


# "Still improving", the one rule wherever a figure says so: a run that trained every configured epoch
# (early stopping did not end it) and whose best validation epoch came in the last tenth of its training
# (18, 19 or 20 of 20; 45 or later of 50; only the last of 8): its validation accuracy had not yet
# levelled off, so more epochs might have helped. A share of the epochs run, not early stopping's
# patience: the study trains with patience 0 (off), where patience would say nothing.
STILL_IMPROVING_LAST_PERCENT = 10
# a no-break space keeps "10 %" on one line where a title wraps
_LAST_SHARE = f"the last {STILL_IMPROVING_LAST_PERCENT}\N{NO-BREAK SPACE}% of training"
STILL_IMPROVING_RULE = f"best epoch in {_LAST_SHARE}"


def still_improving(best_epoch, epochs_run, stopped_early):
    """Whether a run was still improving when it ended (the rule above; in whole numbers, so 18 of 20 is
    exactly 90 % and counts)."""
    if stopped_early:
        return False  # early stopping judged that it had stopped improving
    return 100 * best_epoch >= (100 - STILL_IMPROVING_LAST_PERCENT) * epochs_run


def _run_still_improving(run):
    """``still_improving`` for a run, from its summary (not its ``still_improving`` key: training wrote
    that by an older rule, best epoch = last epoch)."""
    summary = run.summary
    return still_improving(summary["best_epoch"], summary["stopped_epoch"], summary["stopped_early"])


def _still_improving_text(runs):
    """The title's note on runs still improving when they ended: more epochs might still have helped."""
    improving = [run for run in runs if _run_still_improving(run)]
    if not improving:
        return ""
    if len(runs) == 1:
        summary = runs[0].summary
        return (
            f" — still improving: best epoch {summary['best_epoch']} of {summary['stopped_epoch']}, "
            f"in {_LAST_SHARE}"
        )
    seeds = _joined(run.seed for run in improving)
    return f" — still improving ({STILL_IMPROVING_RULE}): seed(s) {seeds}"


# Which curve is which, told apart by line style (colours stand for models in the comparison figures).
CURVES = (
    ("val", "validation", "-"),
    ("train_eval", "training, evaluation mode (fixed subset)", "--"),
    ("train", "training, running mean in training mode (with its dropout and augmentation)", ":"),
)


def draw_curves(history_csvs, summary_jsons):
    """One model's training and validation accuracy and loss per epoch, over all its seeds."""
    model, runs = _one_model(load_runs(history_csvs, summary_jsons), "training curves")
    summary = runs[0].summary
    figure = _figure(WIDTH, 6.2)
    accuracy_ax, loss_ax = figure.subplots(1, 2, sharex=True)
    for ax, metric in ((accuracy_ax, "accuracy"), (loss_ax, "loss")):
        for prefix, label, linestyle in CURVES:
            if f"{prefix}_{metric}" in runs[0].history:  # histories before 0.2 have no evaluation-mode curve
                _draw_spread(ax, runs, f"{prefix}_{metric}", label, color="0.2", linestyle=linestyle)
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
        handles,
        [_fill(label, 48) for label in labels],
        loc="outside lower center",
        ncols=2,
        title=legend_title,
    )
    title = _title(model, summary["dataset"], summary.get("pretrained"))
    figure.suptitle(_wrap(f"Training curves: {title}{_still_improving_text(runs)}", WIDTH))
    return figure


def plot_curves(history_csvs, summary_jsons, out_png):
    return _save(draw_curves(history_csvs, summary_jsons), out_png)
