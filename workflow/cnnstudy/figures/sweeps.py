"""A hyper-parameter sweep's table and figure: one row (or cell) per grid point, over its seeds.

Validation accuracy leads: it is what a sweep selects on. Test accuracy is shown beside it, labelled as
never used for selection, so a reader can see how well the choice carries over.
"""

import numpy as np
import pandas as pd
from matplotlib.ticker import NullLocator, PercentFormatter

from cnnstudy.analysis.tables import read_json, runs_by_model
from cnnstudy.base.files import atomic_path
from cnnstudy.base.rendering import write_table
from cnnstudy.figures.per_model import DEFAULT_CLASSES, _figure, _save, _wrap
from cnnstudy.figures.style import WIDTH, model_colours

TEST_LABEL = "test accuracy (never used for selection)"


def sweep_table(metrics_paths, summary_paths, sweep):
    """One row per grid point in grid order: its values (read from the runs' own hyper-parameters),
    validation and test accuracy (mean and sd over seeds), best epoch and training minutes."""
    keys = list(sweep["grid"])
    summaries = [read_json(path) for path in summary_paths]
    points = list(dict.fromkeys(summary["model"] for summary in summaries))
    trained = runs_by_model(summaries, points)
    tested = runs_by_model([read_json(path) for path in metrics_paths], points)
    rows = []
    for point in points:
        validation = [run["best_val_accuracy"] for run in trained[point]]
        test = [run["accuracy"] for run in tested[point]]
        rows.append(
            {
                "point": point,
                **{key: trained[point][0]["hyperparameters"][key] for key in keys},
                "seeds": len(validation),
                "val_accuracy": float(np.mean(validation)),
                "val_accuracy_std": float(np.std(validation, ddof=1)) if len(validation) > 1 else np.nan,
                "test_accuracy": float(np.mean(test)),
                "test_accuracy_std": float(np.std(test, ddof=1)) if len(test) > 1 else np.nan,
                "best_epoch": int(trained[point][0]["best_epoch"]),
                "train_minutes": float(np.mean([run["train_seconds"] for run in trained[point]])) / 60,
            }
        )
    grid = sweep["grid"]
    rows.sort(key=lambda row: tuple(grid[key].index(row[key]) for key in keys))  # grid order, as configured
    frame = pd.DataFrame(rows)
    frame["selected"] = frame["val_accuracy"] == frame["val_accuracy"].max()
    return frame


def base_result(metrics_paths, summary_paths, sweep):
    """The swept model as configured (outside the grid), for reference: its value of every swept key and
    its validation and test accuracy, means over its seeds."""
    summaries = [read_json(path) for path in summary_paths]
    metrics = [read_json(path) for path in metrics_paths]
    return {
        "model": sweep["model"],
        **{key: summaries[0]["hyperparameters"][key] for key in sweep["grid"]},
        "seeds": len(summaries),
        "val_accuracy": float(np.mean([run["best_val_accuracy"] for run in summaries])),
        "test_accuracy": float(np.mean([run["accuracy"] for run in metrics])),
    }


def _base_words(base, keys):
    values = ", ".join(f"{key} = {_format(base[key])}" for key in keys)
    return f"{base['model']} as configured ({values})"


def _with_spread(mean, std):
    return f"{mean:.2%}" if np.isnan(std) else f"{mean:.2%} ± {std * 100:.2f}"


def write_sweep_table(frame, name, sweep, csv_path, md_path, html_path, base=None):
    with atomic_path(csv_path) as partial:
        frame.to_csv(partial, index=False)
    keys = list(sweep["grid"])
    display = pd.DataFrame(
        {
            **{
                key: frame[key].map(lambda value: f"{value:g}" if isinstance(value, float) else str(value))
                for key in keys
            },
            "validation accuracy": [
                _with_spread(m, s) + (" ← best" if chosen else "")
                for m, s, chosen in zip(
                    frame["val_accuracy"], frame["val_accuracy_std"], frame["selected"], strict=True
                )
            ],
            TEST_LABEL: [
                _with_spread(m, s)
                for m, s in zip(frame["test_accuracy"], frame["test_accuracy_std"], strict=True)
            ],
            "seeds": frame["seeds"].astype(str),
            "best epoch": frame["best_epoch"].astype(str),
            "training minutes": frame["train_minutes"].map(lambda value: f"{value:.2f}"),
        }
    )
    intro = (
        f"Sweep *{name}*: {sweep['model']} trained at every combination of "
        + ", ".join(f"`{key}`" for key in keys)
        + "; validation accuracy is the best epoch's (what the sweep selects on)."
    )
    notes = [
        "Values are means over seeds (± sample standard deviation with several seeds). The test accuracy is "
        "reported for information only: choosing a setting by it would leak the test set into the choice."
    ]
    if base:
        notes.append(
            f"For reference, {_base_words(base, keys)}: validation accuracy {base['val_accuracy']:.2%}, "
            f"test accuracy {base['test_accuracy']:.2%}."
        )
    write_table(display, md_path, html_path, f"Sweep {name}", intro, notes)


def _format(value):
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


# A sweep key as an axis label: what it is, in words; keys not listed are shown as they are.
KEY_LABELS = {
    "lr": "Adam learning rate",
    "weight_decay": "weight decay (Adam's L2 penalty)",
    "batch_size": "batch size (images)",
    "epochs": "epochs",
    "warmup_epochs": "learning-rate warm-up (epochs)",
    "schedule": "learning-rate schedule",
    "early_stopping_patience": "early-stopping patience (epochs)",
    "augmentation": "data augmentation",
    "jitter": "colour-jitter strength (±)",
    "batchnorm": "BatchNorm",
    "dropout_conv": "dropout after each max-pool (p)",
    "dropout_fc": "dropout after FC1 (p)",
    "fc_hidden": "FC1 width (units)",
    "kernel_size": "conv kernel size (px)",
    "probe_size": "dead-unit probe (images)",
}
LOG_KEYS = {"lr", "weight_decay"}  # drawn on a log axis when every value is positive


def _on_log_axis(key, values):
    return key in LOG_KEYS and all(
        isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and value > 0
        for value in values
    )


def key_label(key, log=False):
    """``key`` in words, e.g. "Adam learning rate (log scale)" for ``lr`` on a log axis."""
    return KEY_LABELS.get(key, key) + (" (log scale)" if log else "")


def _chance(ax, classes, vertical=False):
    style = dict(color="0.35", linestyle=":", linewidth=1.2, label=f"chance ({classes} classes)")
    (ax.axvline if vertical else ax.axhline)(1 / classes, **style)


def _sweep_line(ax, frame, key, colour, classes):
    values = list(frame[key])
    log = _on_log_axis(key, values)
    x = np.asarray(values, float) if log else np.arange(len(frame))
    ax.plot(x, frame["val_accuracy"], marker="o", color=colour, label="validation accuracy (selects)")
    ax.plot(x, frame["test_accuracy"], marker="s", linestyle="--", color="0.45", label=TEST_LABEL)
    _chance(ax, classes)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(x.min() / 2, x.max() * 2)
    else:
        ax.set_xlim(-0.5, len(frame) - 0.5)
    ax.set_xticks(x, [_format(value) for value in values])
    ax.set_xlabel(key_label(key, log))
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.grid(alpha=0.3)


def _base_line(ax, base, keys, colour, vertical=False):
    """The swept model as configured, as a reference line at its validation accuracy."""
    style = dict(color=colour, linestyle="-.", linewidth=1.2)
    label = f"{_base_words(base, keys)}: validation {base['val_accuracy']:.1%}"
    (ax.axvline if vertical else ax.axhline)(base["val_accuracy"], label=label, **style)


def _sweep_heatmap(figure, ax, frame, keys):
    rows, columns = (list(dict.fromkeys(frame[key])) for key in keys)
    grid = frame.pivot_table(index=keys[0], columns=keys[1], values="val_accuracy").reindex(rows)[columns]
    test = frame.pivot_table(index=keys[0], columns=keys[1], values="test_accuracy").reindex(rows)[columns]
    image = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (row, column), value in np.ndenumerate(grid.to_numpy()):
        text = f"{value:.1%}\ntest {test.to_numpy()[row, column]:.1%}"
        ax.text(column, row, text, ha="center", va="center", color="white" if value < 0.6 else "black")
    ax.set_xticks(range(len(columns)), [_format(value) for value in columns])
    ax.set_yticks(range(len(rows)), [_format(value) for value in rows])
    ax.set_xlabel(key_label(keys[1]))
    ax.set_ylabel(key_label(keys[0]))
    figure.colorbar(image, ax=ax, label="validation accuracy", format=PercentFormatter(xmax=1))


def _sweep_bars(ax, frame, keys, colour, classes):
    ranked = frame.sort_values("val_accuracy")
    labels = [", ".join(f"{key}={_format(row[key])}" for key in keys) for _, row in ranked.iterrows()]
    y = np.arange(len(ranked))
    ax.barh(y, ranked["val_accuracy"], color=colour, label="validation accuracy (selects)")
    ax.plot(ranked["test_accuracy"], y, "o", color="black", label=TEST_LABEL)
    _chance(ax, classes, vertical=True)
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))


def draw_sweep(frame, name, sweep, classes=DEFAULT_CLASSES, base=None):
    """Line over one key, heatmap over two, ranked bars over more; validation accuracy leads, in the
    colour of the model the sweep varies. ``classes``: for the chance line; ``base``
    (``base_result``): the model as configured, a reference line (named in the title for a heatmap)."""
    keys = list(sweep["grid"])
    colour = model_colours([sweep["model"]])[sweep["model"]]
    figure = _figure(WIDTH, max(5.0, 2.2 + 0.35 * len(frame)) if len(keys) > 2 else 5.5)
    ax = figure.subplots()
    if len(keys) == 1:
        _sweep_line(ax, frame, keys[0], colour, classes)
    elif len(keys) == 2:
        _sweep_heatmap(figure, ax, frame, keys)
    else:
        _sweep_bars(ax, frame, keys, colour, classes)
    if base and len(keys) != 2:
        _base_line(ax, base, keys, colour, vertical=len(keys) > 2)
    if len(keys) != 2:
        figure.legend(loc="outside lower center", ncols=2 if base else 3)
    seeds = int(frame["seeds"].max())
    over = "one seed" if seeds == 1 else f"mean of {seeds} seeds"
    words = ", ".join(key_label(key) for key in keys)
    title = f"Sweep {name}: {sweep['model']} over {words} ({over} per point)"
    if base and len(keys) == 2:
        title += f". {_base_words(base, keys)}: validation {base['val_accuracy']:.1%}"
    figure.suptitle(_wrap(title, WIDTH))
    return figure


def plot_sweep(frame, name, sweep, out_png, classes=DEFAULT_CLASSES, base=None):
    return _save(draw_sweep(frame, name, sweep, classes, base), out_png)
