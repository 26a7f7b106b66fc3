"""Per-layer weight-gradient histograms of one run: fixed log bins of |g| per sign, drawn as densities.

The histograms (``gradients.csv``, written by training) share their bins across epochs and layers, so
epochs can be laid over each other; layers with few weights are drawn as a cumulative share instead.
"""

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

from cnnstudy.plots import _epochs_text, _figure, _read_json, _save, _title, _wrap

# Below this many weights a 70-bin histogram is a barcode of single counts: such layers (all BatchNorm
# layers here) are drawn as a cumulative share instead, which stays readable with a few dozen values.
FEW_WEIGHTS = 2000

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
