"""Tables for people: one table written as Markdown and as a small standalone HTML page.

Markdown reads well in a terminal and on a code host; Snakemake's HTML report only offers a
Markdown file for download, but shows an HTML file inline, so every table in the report is both.
"""

import html
import math
import re

from cnnstudy.base.files import write_text

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
p.note { max-width: 60em; font-size: 0.9em; color: #444; }
p.banner { max-width: 60em; padding: 0.5em 0.8em; border-left: 4px solid #c05a00; background: #fff3e0; }
"""


def percent(value, decimals=1):
    """A share as people read it: ``50.7 %``; one decimal suits test sets of a few hundred to a few thousand
    images, whose 95 % intervals are several points wide (one image in 300 is 0.3 points)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:.{decimals}f} %"


def percent_interval(low, high, decimals=1):
    """An interval of shares in the same format as ``percent``: ``45.0–56.3 %``."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (low, high)):
        return "—"
    return f"{100 * low:.{decimals}f}–{100 * high:.{decimals}f} %"


def _inline_markup(text):
    """HTML-escaped text with Markdown's **strong**, *emphasis* and `code` spans kept as such."""
    text = html.escape(text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def markdown_table(display):
    # tabulate ships with Snakemake; disable_numparse keeps every cell exactly as formatted
    return display.to_markdown(index=False, disable_numparse=True)


NUMBER = re.compile(r"^\s*(?:[-+−<>≈±~]\s*)*(?:\d|—$)")


def _column_style(display, wrap):
    """CSS that keeps every cell on one line except those of the ``wrap`` columns (long texts), and sets
    the columns of words (names, verdicts) flush left, those of numbers flush right."""
    rules = ["td { white-space: nowrap; }"]
    for position, column in enumerate(display.columns, start=1):
        cells = [str(cell) for cell in display[column]]
        if not all(NUMBER.match(cell) for cell in cells):
            rules.append(f"td:nth-child({position}), th:nth-child({position}) {{ text-align: left; }}")
        if column in wrap:
            rules.append(f"td:nth-child({position}) {{ white-space: normal; min-width: 10em; }}")
    return " ".join(rules)


def html_page(display, title, intro="", notes=(), *, banner="", wrap=None):
    """A self-contained HTML page: title, banner, intro, the table (cells escaped, with the Markdown spans of
    ``_inline_markup``) and notes. With ``wrap`` (column names), only those columns' cells may wrap."""
    style = STYLE + (_column_style(display, wrap) if wrap is not None else "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if banner:
        parts.append(f'<p class="banner">{_inline_markup(banner)}</p>')
    if intro:
        parts.append(f'<p class="note">{_inline_markup(intro)}</p>')
    # a no-break space keeps "%" beside its number when a header or a long text wraps
    cells = display.map(
        lambda cell: _inline_markup(cell).replace(" %", "\u00a0%") if isinstance(cell, str) else cell
    )
    cells.columns = [html.escape(str(column)).replace(" %", "\u00a0%") for column in display.columns]
    parts.append(cells.to_html(index=False, escape=False, border=0, na_rep="—"))
    parts += [f'<p class="note">{_inline_markup(note)}</p>' for note in notes]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_table(display, md_path, html_path, title, intro="", notes=(), *, banner="", wrap=None):
    """Write ``display`` (a frame of already formatted strings) as Markdown and as HTML, atomically.

    ``banner``: a sentence set apart above everything else (a quoted block in Markdown), for what a
    reader must know before reading any number, such as a run not on the study's data."""
    quoted = f"> {banner}" if banner else ""
    sections = [f"# {title}", quoted, intro, markdown_table(display), *notes]
    write_text(md_path, "\n\n".join(section for section in sections if section) + "\n")
    if html_path is not None:
        write_text(html_path, html_page(display, title, intro, notes, banner=banner, wrap=wrap))
