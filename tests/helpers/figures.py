"""What every figure must be on the report's page: at most WIDTH wide at DPI, no text under MIN_FONT pt,
nothing outside the canvas."""

from matplotlib.text import Text
from PIL import Image

from cnnstudy.figures.per_model import _save
from cnnstudy.figures.style import DPI, MIN_FONT, WIDTH


def legends(figure):
    """The legends of the figure and of its subfigures."""
    return figure.legends + [legend for subfigure in figure.subfigs for legend in legends(subfigure)]


def assert_nothing_clipped(figure):
    """Every axes (with its titles, labels, ticks and legend) and every figure-level text and legend lie
    inside the figure."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    inside = figure.bbox.padded(1)
    artists = [ax for ax in figure.axes if ax.get_visible()] + legends(figure) + figure.texts
    artists += [text for text in (figure._suptitle, figure._supxlabel, figure._supylabel) if text]
    for artist in artists:
        extent = artist.get_tightbbox(renderer) if hasattr(artist, "axes") else artist.get_window_extent()
        assert inside.containsx(extent.x0) and inside.containsx(extent.x1), artist
        assert inside.containsy(extent.y0) and inside.containsy(extent.y1), artist


def assert_fits_the_column(figure, png):
    """Saved at DPI with the dpi in the file, at most WIDTH inches wide, no text under MIN_FONT points,
    nothing clipped."""
    _save(figure, png)
    with Image.open(png) as image:
        width, _ = image.size
        dpi_x, dpi_y = image.info["dpi"]
    assert round(dpi_x) == DPI == round(dpi_y) and DPI >= 100, png
    assert width / dpi_x <= WIDTH + 0.01, f"{png}: {width / dpi_x:.2f} in wide"
    small = [
        (text.get_text(), text.get_fontsize())
        for text in figure.findobj(Text)
        if text.get_text().strip() and text.get_fontsize() < MIN_FONT
    ]
    assert not small, f"{png}: text under {MIN_FONT} pt: {small[:5]}"
    assert_nothing_clipped(figure)
