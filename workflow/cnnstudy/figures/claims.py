"""The forest plot behind "the study's claims, checked": every compared pair's effect with its interval.

It reads only the claims CSV that ``claims.write_claims`` wrote, so the figure can be redrawn without
recomputing any bootstrap. One panel per measure: their units differ (percentage points, epochs).
A row's colour is its first model's (the model whose effect it measures), the same as in every other
comparison figure (``style.model_styles``); its verdict is the marker's shape.
"""

import math
import textwrap

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from cnnstudy.analysis.claims import BOOTSTRAP_METHOD, CROSSED_METHOD, INTERVAL_ONLY, ONE_SEED, T_METHOD
from cnnstudy.figures.per_model import _figure, _save, _wrap
from cnnstudy.figures.style import SMALL, WIDTH, model_styles

# measure → (panel title, x label, scale from the stored unit to the plotted one)
PANELS = {
    "test_accuracy": ("Test accuracy", "accuracy difference (percentage points)", 100.0),
    "epochs_to_95": (
        "Epochs to reach 95 % of the best validation accuracy",
        "epochs saved by the first model",
        1.0,
    ),
    "best_epoch_gap": (
        "Train (evaluation mode) − validation accuracy gap at the best epoch",
        "gap reduction by the first model (percentage points)",
        100.0,
    ),
}
# Colour belongs to the models, so the verdict is told by shape; the diamond is the study's own number.
VERDICT_MARKERS = {
    "supported": "o",
    "not supported": "s",
    "contradicted": "X",
    "not applicable": "^",
}
UNKNOWN_VERDICT_MARKER = "*"
VERDICT_LEGEND_COLOUR = "0.45"  # the verdicts' legend entries: a shape, in no model's colour
REPORTED_STYLE = dict(marker="D", color="black", markerfacecolor="white", linestyle="none", markersize=6)


def _methods_text(methods):
    """The interval methods in one short phrase, so the title says how every line was drawn."""
    present = set(methods)
    parts = []
    if present & {BOOTSTRAP_METHOD, INTERVAL_ONLY[BOOTSTRAP_METHOD]}:
        parts.append("paired bootstrap over test images (one seed)")
    if present & {CROSSED_METHOD, INTERVAL_ONLY[CROSSED_METHOD]}:
        parts.append("accuracy over seeds × test images")
    if present & {T_METHOD, INTERVAL_ONLY[T_METHOD]}:
        parts.append("t-interval across seeds (history measures)")
    if ONE_SEED in present:
        parts.append("no interval for history measures with one seed")
    return "; ".join(parts) or "no interval"


def _draw_pair(ax, y, pair, scale, model_style):
    """One row: the effect as a point shaped by the verdict, its interval as a line, both in the first
    model's colour (and its line style, which tells models apart past the palette's seven colours)."""
    colour = model_style.colour
    if not math.isnan(pair["margin"]):
        margin = pair["margin"] * scale
        ax.fill_betweenx([y - 0.4, y + 0.4], -margin, margin, color="0.88", zorder=0)
    if math.isnan(pair["effect"]):
        ax.text(0, y, "  not measured", va="center", fontsize=8, color="0.4")
        return
    if not (math.isnan(pair["ci_low"]) or math.isnan(pair["ci_high"])):
        interval = [pair["ci_low"] * scale, pair["ci_high"] * scale]
        ax.plot(interval, [y, y], color=colour, linestyle=model_style.linestyle, linewidth=2.5,
                label=pair["model_a"])  # fmt: skip
    marker = VERDICT_MARKERS.get(pair["verdict"], UNKNOWN_VERDICT_MARKER)
    ax.plot(pair["effect"] * scale, y, marker=marker, color=colour, markeredgecolor="black",
            markeredgewidth=0.6, markersize=8, linestyle="none", zorder=3, label=pair["model_a"])  # fmt: skip
    if not math.isnan(pair["reported_difference"]):
        # slightly below the row (the y axis runs downwards) so it never hides our point
        ax.plot(pair["reported_difference"] * scale, y + 0.3, zorder=3, **REPORTED_STYLE)


def _row_label(pair):
    """The claim in its own words (shortened to two lines), then the pair the row measures."""
    words = getattr(pair, "claim_text", None)
    words = (
        pair.claim_id
        if not isinstance(words, str)
        else textwrap.shorten(words.rstrip("."), 64, placeholder="…")
    )
    return "\n".join([*textwrap.wrap(words, 34), f"{pair.model_a} vs {pair.model_b}"])


def _draw_panel(ax, pairs, measure, styles):
    title, xlabel, scale = PANELS.get(measure, (measure, "effect", 1.0))
    for y, (_, pair) in enumerate(pairs.iterrows()):
        _draw_pair(ax, y, pair, scale, styles[pair["model_a"]])
    labels = [_row_label(row) for row in pairs.itertuples()]
    ax.set_yticks(range(len(pairs)), labels, fontsize=SMALL)
    ax.set_ylim(len(pairs) - 0.4, -0.6)  # first pair on top
    ax.axvline(0, color="black", linewidth=0.8)
    ax.margins(x=0.15)
    low, high = ax.get_xlim()
    ax.set_xlim(min(low, -1.0), max(high, 1.0))  # at least ±1 pp or epoch, so a lone 0 has a readable scale
    if measure == "epochs_to_95":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    ax.set_xlabel(xlabel)


def _model_handles(pairs, styles):
    """The first models' colours (and line styles), in the order their rows come."""
    return [
        Line2D(
            [], [], color=styles[model].colour, linestyle=styles[model].linestyle, linewidth=2.5, label=model
        )
        for model in pd.unique(pairs["model_a"])
    ]


def _verdict_handles(pairs):
    """The verdicts' shapes, in no model's colour, then the study's own number and the margin."""
    verdicts = list(pd.unique(pairs["verdict"]))
    shaped = [verdict for verdict in VERDICT_MARKERS if verdict in verdicts]
    shaped += [verdict for verdict in verdicts if verdict not in VERDICT_MARKERS]
    handles = [
        Line2D(
            [],
            [],
            color=VERDICT_LEGEND_COLOUR,
            markeredgecolor="black",
            markeredgewidth=0.6,
            marker=VERDICT_MARKERS.get(verdict, UNKNOWN_VERDICT_MARKER),
            markersize=8,
            linestyle="none",
            label=verdict,
        )
        for verdict in shaped
    ]
    if pairs["reported_difference"].notna().any():
        handles.append(Line2D([], [], label="reported by the study", **REPORTED_STYLE))
    if pairs["margin"].notna().any():
        handles.append(Patch(color="0.88", label="equivalence margin"))
    return handles


def draw_comparison_effects(pairs, models=None):
    """The forest plot of ``pairs`` (rows of the claims CSV) on a new figure, not yet saved. ``models``:
    the config's models in order, which places models outside the study's own list (``style``); None
    takes the pairs' models in the order they first appear."""
    styles = model_styles([*(models or []), *pairs["model_a"], *pairs["model_b"]])
    measures = [measure for measure in PANELS if measure in set(pairs["measure"])]
    measures += [measure for measure in pd.unique(pairs["measure"]) if measure not in PANELS]
    sizes = [int((pairs["measure"] == measure).sum()) for measure in measures]
    figure = _figure(WIDTH, max(5.0, 0.5 * sum(sizes) + 1.3 * len(measures) + 2.2))
    if measures:
        axes = figure.subplots(len(measures), 1, squeeze=False, height_ratios=[n + 1.5 for n in sizes])
        for ax, measure in zip(axes[:, 0], measures, strict=True):
            _draw_panel(ax, pairs[pairs["measure"] == measure], measure, styles)
        # the verdicts' key is the figure's first legend (figure.legends[0]), the models' colours its second
        figure.legend(
            handles=_verdict_handles(pairs), loc="outside lower right", ncols=2, title="pair verdict"
        )
        figure.legend(
            handles=_model_handles(pairs, styles), loc="outside lower left", ncols=2, title="first model"
        )
        level = f"{pairs['confidence'].iloc[0]:.0%}"
    else:
        ax = figure.subplots()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no claims were checked", ha="center", va="center")
        level = "—"
    figure.suptitle(
        _wrap(
            "The study's claims: effect of each compared pair (positive = the first model is better)\n"
            f"point = measured effect, line = {level} interval: {_methods_text(pairs['method'].fillna(''))}",
            WIDTH,
        )
    )
    return figure


def plot_comparison_effects(claims_csv, out_png, models=None):
    """Forest plot of every pair the claims compare, from the claims CSV; returns the figure's titles."""
    return _save(draw_comparison_effects(pd.read_csv(claims_csv), models), out_png)
