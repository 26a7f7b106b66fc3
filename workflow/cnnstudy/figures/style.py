"""How every figure looks: its size for the report's column, its fonts, and one colour per model.

The HTML report's content column is about 950 px wide at a 1400 px browser window; a wider figure is
shrunk to fit, and its labels with it (on screen a label is points × column px / (72 × figure inches)
high, whatever the dpi). So every figure is at most ``WIDTH`` inches wide, drawn at ``DPI`` (9.5 in ×
100 dpi = 950 px: shown at its own size, no label shrunk), and no text is under ``MIN_FONT`` points.

Colours stand for models, the same in every figure: ``model_styles`` gives each model a place, the
study's models first in the study's order (``STUDY_MODELS``), then any further variant in the order the
figure receives them, which is the config's order. Figures that show a subset (the transfer figure's
three models) keep the colours the full comparison gives them, because a study model's place does not
depend on which other models a figure shows.
"""

import itertools
from typing import NamedTuple

import matplotlib as mpl

WIDTH = 9.5  # in: the report's content column (≈ 950 px) at DPI; no figure is wider
DPI = 100  # pixel size = figsize × DPI exactly: savefig keeps the whole canvas (no bbox_inches="tight")
MIN_FONT = 8  # pt: the smallest text any figure writes (≈ 11 px in the report's column)
SMALL = 8  # pt: tick labels, annotations inside panels, legends of busy figures
FONT = 9  # pt: axis labels, legend text
TITLE = 10  # pt: panel titles
SUPTITLE = 11  # pt: the figure's title

RC = {
    "font.size": FONT,
    "axes.titlesize": TITLE,
    "axes.labelsize": FONT,
    "xtick.labelsize": SMALL,
    "ytick.labelsize": SMALL,
    "legend.fontsize": SMALL,
    "legend.title_fontsize": FONT,
    "figure.titlesize": SUPTITLE,
    "figure.labelsize": FONT,
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
}

# Okabe & Ito's colour-blind-safe palette (Okabe and Ito 2008), without its yellow, which is too pale for
# a line on white: blue, orange, bluish green, vermillion, reddish purple, sky blue, black.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#000000")
# Past the palette's size colours repeat; the line style, marker and bar hatch change with each round.
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")
HATCHES = ("", "//", "..", "xx")


# The study's models in the study's order: ``base.settings.STUDY_MODELS`` (a test keeps the two equal).
# Written out here, not imported: importing the settings would make every figure job's code fingerprint
# depend on config validation, and redraw every figure when it changes.
STUDY_MODELS = (
    "baseline",
    "batchnorm",
    "dropout",
    "augmentation",
    "combined",
    "resnet18_bn_frozen",
    "resnet18_bn_unfrozen",
    "resnet18_full",
)


class ModelStyle(NamedTuple):
    colour: str
    linestyle: str
    marker: str
    hatch: str  # for bars: empty in the palette's first round


def apply_style():
    """Set the figures' font sizes. Called by every figure when it is made, so that text matplotlib
    creates later (tick labels are made while drawing) gets the same sizes as text made at once."""
    mpl.rcParams.update(RC)


def model_places(models):
    """model → its place: the study's models by their place in ``STUDY_MODELS``, others after them in
    the order given."""
    places = {model: STUDY_MODELS.index(model) for model in models if model in STUDY_MODELS}
    others = (model for model in dict.fromkeys(models) if model not in STUDY_MODELS)
    places.update(zip(others, itertools.count(len(STUDY_MODELS)), strict=False))
    return places


def model_styles(models):
    """model → ModelStyle, the same for a model in every figure (see the module's docstring)."""
    styles = {}
    for model, place in model_places(models).items():
        turn, index = divmod(place, len(PALETTE))
        styles[model] = ModelStyle(
            PALETTE[index],
            LINESTYLES[turn % len(LINESTYLES)],
            MARKERS[turn % len(MARKERS)],
            HATCHES[turn % len(HATCHES)],
        )
    return styles


def model_colours(models):
    """model → its colour (hex), the same in every figure."""
    return {model: style.colour for model, style in model_styles(models).items()}
