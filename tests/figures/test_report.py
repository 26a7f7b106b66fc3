"""What the HTML report shows besides figures: tables as HTML, the configuration, the landing page."""

import re

import pandas as pd
from docutils.core import publish_parts
from jinja2 import Environment

from cnnstudy.base.rendering import html_page, write_table
from cnnstudy.figures.landing import landing_text, write_config
from helpers import REPO

STUDY = {"dataset_md5": "e793b78cc4c9e9a4ccc0c1155377a412", "image_size": 160}


def summary(model, seed=0, pretrained=None, stopped_early=False, epochs=20):
    mode = model.removeprefix("resnet18_") if model.startswith("resnet18_") else None
    return {
        "model": model, "seed": seed, "pretrained": pretrained, "epochs_configured": epochs, "stopped_early": stopped_early,
        "stopped_epoch": 9 if stopped_early else epochs, "precision": "fp32",
        "hyperparameters": {"mode": mode} if mode else {},
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
    study_run = metrics("baseline", md5=STUDY["dataset_md5"], size=160) | {"dataset": "imagenette2-160"}
    text = landing_text(
        [summary("baseline")], [study_run], pd.DataFrame({"passed": [True]}), ["baseline"], STUDY
    )
    assert "the study's data" in render(text) and "not the study" not in render(text).lower()
    assert first_paragraph(text).startswith(
        "This run reproduces the convolutional-network study on imagenette2-160"
    )
    assert "banner" not in text and "Not the study's data" not in text


def first_paragraph(rst):
    """The landing page's first paragraph, as written (inside Jinja's raw block)."""
    return rst.split("{% raw %}\n", 1)[1].split("\n\n", 1)[0]


def demo_landing(models=("baseline", "resnet18_bn_frozen", "resnet18_bn_unfrozen")):
    summaries = [summary(m, pretrained=False if m.startswith("resnet") else None, epochs=8 if m.startswith("resnet") else 20) for m in models]  # fmt: skip
    conv = pd.DataFrame({"passed": [True]})
    return landing_text(summaries, [metrics(m) for m in models], conv, list(models), STUDY)


def test_landing_pages_first_sentence_is_true_for_a_run_on_other_data():
    text = demo_landing()
    assert first_paragraph(text).startswith(
        "**This run exercises the study's pipeline on imagenette-demo; its numbers are not the study's.**"
    )
    assert "reproduces" not in first_paragraph(text)
    page = render(text)
    assert (
        "<strong>Not the study's data.</strong> This run used imagenette-demo" in page
    )  # the tables' banner
    assert "transfer learning" in page and "no transfer learning" in page


def test_landing_page_names_the_models_of_each_epoch_count_and_what_each_resnet_mode_trains():
    page = render(demo_landing())
    assert "20 (baseline); 8 (resnet18_bn_frozen, resnet18_bn_unfrozen)" in page
    assert "bn_frozen (resnet18_bn_frozen): head only" in page
    assert "bn_unfrozen (resnet18_bn_unfrozen): head + BatchNorm" in page


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


def test_config_page_shows_every_config_file_with_its_comments(tmp_path):
    (tmp_path / "config.yaml").write_text("seeds: [0] # which seeds train each model\n")
    (tmp_path / "demo.yaml").write_text("# the offline demo\nseeds: [0, 1] # two, to show a spread\n")
    sources = [tmp_path / "config.yaml", tmp_path / "demo.yaml"]
    write_config({"seeds": [0, 1]}, tmp_path / "c.yaml", tmp_path / "c.html", sources)
    page = (tmp_path / "c.html").read_text()
    assert "# which seeds train each model" in page and "# two, to show a spread" in page
    assert page.index("Merged") < page.index("config.yaml, as written") < page.index("demo.yaml, as written")
    assert (tmp_path / "c.yaml").read_text() == "seeds:\n- 0\n- 1\n"  # the merged result, no comments


def rule_section(rule, section):
    """The lines of ``section`` (params, input, ...) of ``rule`` in workflow/rules/report.smk."""
    text = (REPO / "workflow" / "rules" / "report.smk").read_text()
    body = re.search(rf"^rule {rule}:\n((?:[ \t]+.*\n|\n)+)", text, flags=re.M).group(1)
    block = re.search(rf"^    {section}:\n((?:        .*\n)+)", body, flags=re.M)
    return block.group(1).split("\n")[:-1] if block else []


def test_write_config_passes_no_config_dict_through_params():
    # params show in the report's info panel: the merged config (kilobytes) is read by the script instead
    params = rule_section("write_config", "params")
    names = [line.split("=", 1)[0].strip() for line in params]
    assert names == ["merged", "code"]
    assert not any(re.search(r"\bconfig\b", line.split("=", 1)[1]) for line in params)  # config_digest()
    script = (REPO / "workflow" / "scripts" / "write_config.py").read_text()
    assert "snakemake.config" in script and "snakemake.params.config" not in script
    assert rule_section("write_config", "input") == ["        configfiles=config_files(),"]
