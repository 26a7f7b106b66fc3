"""What the HTML report shows besides figures: tables as HTML, the configuration, the landing page."""

import pandas as pd
from docutils.core import publish_parts
from jinja2 import Environment

from cnnstudy.rendering import html_page, write_table
from cnnstudy.run_description import landing_text, write_config

STUDY = {"dataset_md5": "e793b78cc4c9e9a4ccc0c1155377a412", "image_size": 160}


def summary(model, seed=0, pretrained=None, stopped_early=False):
    return {
        "model": model, "seed": seed, "pretrained": pretrained, "epochs_configured": 20, "stopped_early": stopped_early,
        "stopped_epoch": 9 if stopped_early else 20, "precision": "fp32",
        "provenance": {"device": "cpu", "torch": "2.14.1", "git_commit": "a" * 40, "git_dirty": True},
    }  # fmt: skip


def metrics(model, seed=0, md5="c6223938247848886b5dec84001953ed", size=32):
    return {"model": model, "seed": seed, "dataset": "imagenette-demo", "archive_md5": md5, "image_size": size,
            "n_images": 300}  # fmt: skip


def render(rst):
    """As Snakemake's report renders its landing page: Jinja first, then reStructuredText."""
    return publish_parts(Environment().from_string(rst).render(), writer="html")["html_body"]


def test_landing_page_describes_the_run_from_its_own_outputs():
    summaries = [summary("baseline", stopped_early=True), summary("resnet18_bn_frozen", pretrained=False)]
    conv = pd.DataFrame({"passed": [True] * 41 + [False]})
    text = landing_text(
        summaries,
        [metrics("baseline"), metrics("resnet18_bn_frozen")],
        conv,
        ["baseline", "resnet18_bn_frozen"],
        STUDY,
    )
    page = render(text)
    assert "imagenette-demo" in page and "c6223938247848886b5dec84001953ed" in page and "32 px" in page
    assert "not the study" in page and "not pretrained" in page and "baseline seed 0 at 9" in page
    assert "41 of 42" in page and "with uncommitted changes" in page and "aaaaaaaaaaaa" in page


def test_landing_page_survives_jinja_even_with_braces_in_the_data():
    odd = metrics("baseline") | {"dataset": "{{ weird }}"}
    text = landing_text([summary("baseline")], [odd], pd.DataFrame({"passed": [True]}), ["baseline"], STUDY)
    assert "{{ weird }}" in render(text)


def test_study_data_is_named_as_such():
    study_run = metrics("baseline", md5=STUDY["dataset_md5"], size=160)
    text = landing_text(
        [summary("baseline")], [study_run], pd.DataFrame({"passed": [True]}), ["baseline"], STUDY
    )
    assert "the study's data" in render(text) and "not the study" not in render(text)


def test_tables_are_written_as_markdown_and_as_an_escaped_html_page(tmp_path):
    display = pd.DataFrame({"model": ["a<b>"], "accuracy": ["50.00%"]})
    write_table(display, tmp_path / "t.md", tmp_path / "t.html", "Title", "*intro*", ["**bold** note `code`"])
    page = (tmp_path / "t.html").read_text()
    assert "<td>a&lt;b&gt;</td>" in page and "<em>intro</em>" in page
    assert "<strong>bold</strong>" in page and "<code>code</code>" in page
    assert (tmp_path / "t.md").read_text().startswith("# Title\n\n*intro*\n\n| model")
    assert "<table" in html_page(display, "T")


def test_config_page_shows_the_merged_config(tmp_path):
    write_config({"seeds": [0, 1], "dataset": {"name": "x<y"}}, tmp_path / "c.yaml", tmp_path / "c.html")
    assert "seeds:\n- 0\n- 1" in (tmp_path / "c.yaml").read_text()
    assert "x&lt;y" in (tmp_path / "c.html").read_text()
