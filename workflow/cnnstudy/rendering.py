"""Tables for people: one table written as Markdown and as a small standalone HTML page.

Markdown reads well in a terminal and on a code host; Snakemake's HTML report only offers a
Markdown file for download, but shows an HTML file inline, so every table in the report is both.
"""

import html
import re

from cnnstudy.files import write_text

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
p.note { max-width: 60em; font-size: 0.9em; color: #444; }
"""


def _inline_markup(text):
    """HTML-escaped text with Markdown's **strong**, *emphasis* and `code` spans kept as such."""
    text = html.escape(text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def markdown_table(display):
    # tabulate ships with Snakemake; disable_numparse keeps every cell exactly as formatted
    return display.to_markdown(index=False, disable_numparse=True)


def html_page(display, title, intro="", notes=()):
    """A self-contained HTML page: title, intro, the table (cells escaped) and notes."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(f'<p class="note">{_inline_markup(intro)}</p>')
    parts.append(display.to_html(index=False, escape=True, border=0, na_rep="—"))
    parts += [f'<p class="note">{_inline_markup(note)}</p>' for note in notes]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_table(display, md_path, html_path, title, intro="", notes=()):
    """Write ``display`` (a frame of already formatted strings) as Markdown and as HTML, atomically."""
    sections = [f"# {title}", intro, markdown_table(display), *notes]
    write_text(md_path, "\n\n".join(section for section in sections if section) + "\n")
    if html_path is not None:
        write_text(html_path, html_page(display, title, intro, notes))
