"""Per-layer weight-gradient histograms of one run: fixed log bins of |g| per sign, drawn as densities.

The histograms (``gradients.csv``, written by training) share their bins across epochs and layers, so
epochs can be laid over each other; layers with few weights are drawn as a cumulative share instead.
"""

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.ticker import NullLocator, PercentFormatter

from cnnstudy.figures.per_model import _epochs_text, _figure, _read_json, _save, _title, _wrap
from cnnstudy.figures.style import FONT, WIDTH

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


def _gradient_x_axis(ax, floor, span, columns):
    """Ticks every few decades, labelled with the gradient values they stand for (0 in the middle); fewer
    in narrow panels, always with the range's ends."""
    step = max(1, math.ceil(span / (3 if columns <= 3 else 2)))
    half = sorted({*np.arange(step, span - 0.5, step), span})
    ticks = [-t for t in reversed(half)] + [0.0] + half
    ax.set_xticks(ticks, [_power_label(math.copysign(floor * 10 ** abs(t), t) if t else 0) for t in ticks])
    ax.set_xlim(-span - 0.3, span + 0.3)


def _share_text(shares):
    """Per-epoch shares of one out-of-range bin; one value when every epoch agrees."""
    texts = ["0" if share == 0 else "<0.1%" if share < 0.001 else f"{share:.1%}" for share in shares]
    return texts[:1] if len(set(texts)) == 1 else texts


def _outside_shares_text(histograms, floor, ceiling, characters):
    """The shares outside the log bins (< −H, |g| < L, > H) as lines of at most about ``characters``:
    one value each when every epoch agrees, else one per recorded epoch, in epoch order."""
    parts = [
        (f"< −{_power_label(ceiling)}", [h.below for h in histograms]),
        (f"|g| < {_power_label(floor)}", [h.middle for h in histograms]),
        (f"> {_power_label(ceiling)}", [h.above for h in histograms]),
    ]
    lines = [""]
    for header, shares in parts:
        part = f"{header}: {', '.join(_share_text(shares))}"
        joined = f"{lines[-1]}  {part}" if lines[-1] else part
        if lines[-1] and len(_plain(joined)) > characters:
            lines.append(part)
        else:
            lines[-1] = joined
    return "\n".join(lines)


def _plain(text):
    """Text as it reads, without mathtext's markup: for estimating its width."""
    return text.replace("$", "").replace("^", "").replace("{", "").replace("}", "")


def _cumulative(histogram):
    """(x, cumulative share) through the log bins' edges, with the middle bin's jump at x = 0."""
    mass = np.cumsum(histogram.density * np.diff(histogram.edges))
    values = histogram.below + np.concatenate([[0.0], mass])
    values[histogram.edges > 0] += histogram.middle  # right of x = 0 the middle bin is already passed
    zero = np.flatnonzero(np.isclose(histogram.edges, 0.0))[0]
    x = np.insert(histogram.edges, zero, 0.0)
    y = np.insert(values, zero + 1, values[zero] + histogram.middle)
    return x, y


class Panel(NamedTuple):
    """One layer's panel: its recorded epochs' histograms and its title."""

    histograms: list
    title: str

    @property
    def cumulative(self):
        return self.histograms[0].weights < FEW_WEIGHTS


def _panel(layer_rows, epochs, floor, ceiling, characters):
    histograms = [gradient_histogram(layer_rows[layer_rows["epoch"] == epoch]) for epoch in epochs]
    weights = histograms[0].weights
    name = f"{layer_rows['layer'].iloc[0]} ({layer_rows['kind'].iloc[0]}, {weights:,} weights)"
    if len(name) > characters:  # long ResNet names in narrow panels: what the layer is on a line of its own
        name = name.replace(" (", "\n(", 1)
    shares = _outside_shares_text(histograms, floor, ceiling, characters)
    return Panel(histograms, f"{name}\n{shares}")


def _draw_panel(ax, panel, colours, first_in_row):
    for histogram, colour in zip(panel.histograms, colours, strict=True):
        if panel.cumulative:
            x, y = _cumulative(histogram)
            ax.plot(x, y, color=colour, linewidth=1.4)
        else:
            ax.stairs(histogram.density, histogram.edges, color=colour, linewidth=1.4)
    if panel.cumulative:
        ax.set_ylim(-0.02, 1.04)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
        label = "cumulative share"
    else:
        top = max(float(h.density.max()) for h in panel.histograms) or 1.0
        ax.set_ylim(0, top * 1.05)
        label = "share per decade"
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    if first_in_row:
        ax.set_ylabel(label)
    ax.grid(alpha=0.25)
    ax.set_title(panel.title, fontsize=FONT)


# One colour scale for every model's gradient figure: an epoch has the same colour in all of them.
# Viridis without its palest yellow, which vanishes on white.
EPOCH_MAP = ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.88, 256)), name="epochs")


def _epoch_norm(summary, epochs):
    """Epoch 1 to the configured number of epochs (or the last recorded, if later), on a log scale: the
    early epochs, where gradients change most and which are recorded most densely, stay apart."""
    last = max([int(summary.get("epochs_configured") or 1), *epochs, 2])
    return LogNorm(vmin=1, vmax=last)


GRID_COLUMNS = 12  # divisible by every row length (1 to 4 panels)


def _rows(layers, cumulative, columns):
    """Layers in rows of at most ``columns``, one kind of panel per row (histograms first, then
    cumulative shares), each kind in training's layer order; a short last row spreads over the width."""
    rows = []
    for kind in (False, True):
        members = [layer for layer in layers if bool(cumulative[layer]) is kind]
        rows += [members[start : start + columns] for start in range(0, len(members), columns)]
    return rows


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
        f"decade of |g| from {low} to {high} for each sign; |g| < {low} (zeros included), g < −{high} "
        f"and g > {high} are counted apart and written under each panel's title (one value per recorded "
        f"epoch, in order, where epochs differ). Histogram panels: share of the layer's weights per decade "
        f"(area + written shares = 100%). Layers under {FEW_WEIGHTS:,} weights: cumulative share from the most "
        "negative gradient."
    )


def draw_gradients(gradients_csv, summary_json):
    """One run's weight-gradient distribution per layer, one line per recorded epoch, coloured by the
    epoch's number on a scale shared by every model."""
    gradients = pd.read_csv(gradients_csv)
    summary = _read_json(summary_json)
    layers = list(pd.unique(gradients["layer"]))  # the order training recorded them: input to output
    epochs = sorted(int(epoch) for epoch in gradients["epoch"].unique())
    if not layers:
        figure = _figure(WIDTH, 5.0)
        ax = figure.subplots()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no gradient histograms recorded", ha="center", transform=ax.transAxes)
        figure.suptitle(_wrap(_gradient_title(summary, layers, epochs), WIDTH))
        return figure
    floor, ceiling, per_decade = _binning(gradients)
    first = gradients[gradients["epoch"] == epochs[0]].groupby("layer")["count"].sum()
    rows = _rows(
        layers, {layer: first[layer] < FEW_WEIGHTS for layer in layers}, 3 if len(layers) <= 12 else 4
    )
    panels = [
        [
            _panel(gradients[gradients["layer"] == layer], epochs, floor, ceiling, _characters(len(row)))
            for layer in row
        ]
        for row in rows
    ]
    title_lines = [max(panel.title.count("\n") + 1 for panel in row) for row in panels]
    footnote = _wrap(_gradient_footnote(floor, ceiling, per_decade), WIDTH, FONT)
    title = _wrap(_gradient_title(summary, layers, epochs), WIDTH)
    # per row: the panel and its title lines; above and below: title, colour bar and footnote
    text_in = (title.count("\n") + footnote.count("\n") + 2) * 0.2 + 1.1
    figure = _figure(WIDTH, max(5.0, sum(2.0 + 0.16 * lines for lines in title_lines) + text_in))
    norm = _epoch_norm(summary, epochs)
    colours = [EPOCH_MAP(norm(epoch)) for epoch in epochs]
    span = math.log10(ceiling / floor)
    grid = figure.add_gridspec(len(rows), GRID_COLUMNS)  # 12: a row of 1, 2, 3 or 4 panels fills it
    axes = []
    for index, row in enumerate(panels):
        cells = GRID_COLUMNS // len(row)
        for column, panel in enumerate(row):
            ax = figure.add_subplot(grid[index, column * cells : (column + 1) * cells])
            _draw_panel(ax, panel, colours, column == 0)
            _gradient_x_axis(ax, floor, span, len(row))
            axes.append(ax)
    colourbar = figure.colorbar(
        ScalarMappable(norm=norm, cmap=EPOCH_MAP),
        ax=axes,
        location="top",
        shrink=0.5,
        aspect=40,
        pad=0.15 / figure.get_figheight(),  # a fraction of the panels' height: keep it small when tall
    )
    stopped = summary.get("stopped_epoch")
    colourbar.set_ticks(epochs, labels=[f"{e} (last)" if e == stopped else str(e) for e in epochs])
    colourbar.ax.xaxis.set_minor_locator(NullLocator())  # a log axis would label 2×10⁰ and the like
    colourbar.set_label(f"recorded epoch (log colour scale: epoch 1 to {norm.vmax:.0f}, as in every model)")
    figure.supxlabel(footnote, fontsize=FONT)
    figure.suptitle(title)
    return figure


def _characters(panels_in_row):
    """About how many characters of a panel's title fit on one line (a character ≈ 0.6 em)."""
    return int((WIDTH - 0.6) / panels_in_row * 72 / (0.6 * FONT))


def plot_gradients(gradients_csv, summary_json, out_png):
    return _save(draw_gradients(gradients_csv, summary_json), out_png)
