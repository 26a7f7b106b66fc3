"""What the HTML report says about the run itself: its configuration, and a landing page written from the
run's own outputs (summaries and metrics), so the report describes the run that produced its numbers
and not whatever config ``snakemake --report`` happens to be called with.
"""

import html
from collections import Counter

import pandas as pd
import yaml

from cnnstudy.files import write_text
from cnnstudy.rendering import STYLE
from cnnstudy.tables import comparable_with_study, read_json, runs_by_model


def write_config(config, yaml_path, html_path):
    """The merged configuration (config.yaml and every override) as YAML, and as a page for the report."""
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=110)
    write_text(yaml_path, text)
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Configuration</title>'
        f"<style>{STYLE} pre {{ font-size: 0.85em; }}</style></head><body><h1>Configuration of this run</h1>"
        '<p class="note">config.yaml merged with every --configfiles override, as the workflow read it; '
        "config.yaml's comments explain each key.</p>"
        f"<pre>{html.escape(text)}</pre></body></html>\n"
    )
    write_text(html_path, page)


def _pretrained_words(summaries):
    states = {summary["pretrained"] for summary in summaries if summary["pretrained"] is not None}
    if not states:
        return "no ResNet-18 in this run"
    if states == {True}:
        return "ResNet-18 starts from ImageNet weights (pretrained)"
    return "ResNet-18 is **not pretrained** (random init): its rows say nothing about transfer learning"


def _epochs_words(summaries):
    configured = Counter(summary["epochs_configured"] for summary in summaries)
    stopped = [
        f"{s['model']} seed {s['seed']} at {s['stopped_epoch']}" for s in summaries if s["stopped_early"]
    ]
    words = ", ".join(f"{epochs} ({count} runs)" for epochs, count in sorted(configured.items()))
    return words + (f"; stopped early: {', '.join(stopped)}" if stopped else "; none stopped early")


def landing_text(summaries, metrics, conv_stub, models, study):
    """reStructuredText for the report's landing page, from the run's outputs."""
    first = metrics[0]
    origin = summaries[0]["provenance"]
    comparable = comparable_with_study(metrics, study)
    grouped = runs_by_model(metrics, models)
    seeds = sorted({record["seed"] for record in metrics})
    passed = int(conv_stub["passed"].sum())
    dirty = {True: " with uncommitted changes", False: "", None: ""}[origin.get("git_dirty")]
    data_words = (
        "the study's data"
        if comparable
        else "**not the study's data**: the study's numbers are for reference only"
    )
    lines = [
        "This report reproduces a convolutional-network study on Imagenette: a convolution written from scratch "
        "and checked against PyTorch's, a custom CNN in several configurations, and ResNet-18 transfer learning "
        "with BatchNorm frozen and unfrozen. Every number below comes from this run's own outputs.",
        "",
        f"- **Dataset**: {first['dataset']} (archive md5 ``{first.get('archive_md5')}``), {first['image_size']} px, "
        f"{first['n_images']} test images: {data_words}.",
        f"- **Models**: {len(grouped)} ({', '.join(grouped)}); {_pretrained_words(summaries)}.",
        f"- **Epochs configured**: {_epochs_words(summaries)}.",
        f"- **Seeds**: {', '.join(map(str, seeds))} ({len(seeds)} per model).",
        f"- **Device**: {origin.get('device')} (torch {origin.get('torch')}), precision {summaries[0].get('precision')}.",
        f"- **Code**: commit ``{origin.get('git_commit', 'unknown')[:12]}``{dirty}.",
        f"- **Convolution from scratch**: {passed} of {len(conv_stub)} check cases pass.",
        "",
        "Where to look first: the results table (5. Comparison), then the study's claims checked with "
        "confidence intervals and tests (6. Claims), the learning curves (2. Training) and the confusion "
        "matrices (4. Evaluation). The configuration is under 8. Configuration.",
    ]
    title = "Results of this run"
    text = "\n".join(lines)
    return f"{title}\n{'=' * len(title)}\n\n{{% raw %}}\n{text}\n{{% endraw %}}\n"


def write_landing_page(summary_paths, metrics_paths, conv_stub_csv, models, study, out_rst):
    summaries = [read_json(path) for path in summary_paths]
    metrics = [read_json(path) for path in metrics_paths]
    conv_stub = pd.read_csv(conv_stub_csv)
    write_text(out_rst, landing_text(summaries, metrics, conv_stub, models, study))
