"""What the HTML report says about the run itself: its configuration, and a landing page written from the
run's own outputs (summaries and metrics), so the report describes the run that produced its numbers
and not whatever config ``snakemake --report`` happens to be called with.
"""

import html
from pathlib import Path

import pandas as pd
import yaml

from cnnstudy.analysis.tables import TRAINS, comparable_with_study, data_banner, read_json, runs_by_model
from cnnstudy.base.files import write_text
from cnnstudy.base.rendering import STYLE


def write_config(config, yaml_path, html_path, sources=()):
    """The merged configuration (config.yaml and every override) as YAML, and as a page for the report that
    shows the merged result first, then each config file read (``sources``, in the order applied) as
    written, comments included: the comments say what each key means and where its value comes from."""
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=110)
    write_text(yaml_path, text)
    files = [Path(source) for source in sources]
    read = ", then ".join(f"<code>{html.escape(str(path))}</code>" for path in files) or "the config files"
    sections = [
        "<h2>Merged: what the workflow read</h2>",
        '<p class="note">Every file below merged key by key, in order, plus any <code>--config</code> '
        "values given on the command line (only this merged text shows those).</p>",
        f"<pre>{html.escape(text)}</pre>",
    ]
    for path in files:
        sections += [
            f"<h2>{html.escape(str(path))}, as written</h2>",
            f"<pre>{html.escape(path.read_text(encoding='utf-8'))}</pre>",
        ]
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Configuration</title>'
        f"<style>{STYLE} pre {{ font-size: 0.85em; background: #f7f7f7; padding: 0.6em; }}</style></head><body>"
        '<h1>Configuration of this run</h1><p class="note">This run read '
        f"{read}. Below: the merged configuration, then each file with its comments, which explain each key "
        "and where its value comes from.</p>" + "".join(sections) + "</body></html>\n"
    )
    write_text(html_path, page)


def _pretrained_words(summaries):
    states = {summary["pretrained"] for summary in summaries if summary["pretrained"] is not None}
    if not states:
        return "no ResNet-18 in this run"
    if states == {True}:
        return "ResNet-18 starts from ImageNet weights (pretrained)"
    return "ResNet-18 is **not pretrained** (random init): its rows say nothing about transfer learning"


def _modes(summaries, models):
    """Model → its ResNet-18 mode (a key of ``TRAINS``), for this run's ResNet-18 models in ``models`` order."""
    modes = {}
    for summary in summaries:
        mode = summary.get("hyperparameters", {}).get("mode")
        if mode in TRAINS:
            modes[summary["model"]] = mode
    return {model: modes[model] for model in models if model in modes}


def _epochs_words(summaries, models):
    """'20 (baseline, batchnorm); 8 (resnet18_bn_frozen)': each configured number of epochs with its models."""
    by_epochs = {}
    for summary in summaries:
        by_epochs.setdefault(summary["epochs_configured"], set()).add(summary["model"])
    order = {model: index for index, model in enumerate(models)}
    words = "; ".join(
        f"{epochs} ({', '.join(sorted(named, key=lambda m: (order.get(m, len(order)), m)))})"
        for epochs, named in sorted(by_epochs.items(), key=lambda item: -item[0])
    )
    stopped = [
        f"{s['model']} seed {s['seed']} at {s['stopped_epoch']}" for s in summaries if s["stopped_early"]
    ]
    return words + (f"; stopped early: {', '.join(stopped)}" if stopped else "; none stopped early")


def _first_paragraph(first, comparable, grouped, modes, pretrained):
    """What the run is, true for this run: the study reproduced on its data, or its pipeline exercised."""
    cnns = [model for model in grouped if model not in modes]
    parts = ["a convolution written from scratch and checked against PyTorch's"]
    if cnns:
        parts.append(f"a custom CNN in {len(cnns)} configuration{'s' if len(cnns) != 1 else ''}")
    if modes:
        how = "transfer learning" if pretrained else "from a random start (so no transfer learning)"
        parts.append(f"ResNet-18 {how} in {len(modes)} mode{'s' if len(modes) != 1 else ''}")
    contents = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    if comparable:
        opening = f"This run reproduces the convolutional-network study on {first['dataset']}: {contents}."
    else:
        opening = (
            f"**This run exercises the study's pipeline on {first['dataset']}; its numbers are not the study's.** "
            f"It runs {contents}."
        )
    return opening + " Every number below comes from this run's own outputs."


def landing_text(summaries, metrics, conv_stub, models, study):
    """reStructuredText for the report's landing page, from the run's outputs."""
    first = metrics[0]
    origin = summaries[0]["provenance"]
    comparable = comparable_with_study(metrics, study)
    grouped = runs_by_model(metrics, models)
    modes = _modes(summaries, models)
    pretrained = all(summary["pretrained"] is not False for summary in summaries)
    seeds = sorted({record["seed"] for record in metrics})
    passed = int(conv_stub["passed"].sum())
    dirty = {True: " with uncommitted changes", False: "", None: ""}[origin.get("git_dirty")]
    data_words = "the study's data" if comparable else "**not the study's data**"
    modes_words = "; ".join(f"{mode} ({model}): {TRAINS[mode]}" for model, mode in modes.items())
    modes_line = (
        f"- **What trains in each ResNet-18 mode** (the rest keeps its starting weights): {modes_words}."
    )
    banner = data_banner(metrics, study)
    lines = [
        _first_paragraph(first, comparable, grouped, modes, pretrained),
        "",
        *([banner, ""] if banner else []),
        f"- **Dataset**: {first['dataset']} (archive md5 ``{first.get('archive_md5')}``), {first['image_size']} px, "
        f"{first['n_images']} test images: {data_words}.",
        f"- **Models**: {len(grouped)} ({', '.join(grouped)}); {_pretrained_words(summaries)}.",
        *([modes_line] if modes else []),
        f"- **Epochs configured**: {_epochs_words(summaries, models)}.",
        f"- **Seeds**: {', '.join(map(str, seeds))} ({len(seeds)} per model).",
        f"- **Device**: {origin.get('device')} (torch {origin.get('torch')}), precision {summaries[0].get('precision')}.",
        f"- **Code**: commit ``{origin.get('git_commit', 'unknown')[:12]}``{dirty}.",
        f"- **Convolution from scratch**: {passed} of {len(conv_stub)} check cases pass.",
        "",
        "Where to look first: the results table (5. Comparison), then the study's claims checked with "
        "confidence intervals and tests (7. Claims), the learning curves (2. Training) and the confusion "
        "matrices (4. Evaluation); what each model got wrong, its first-layer filters and where it looks "
        "are under 6. Inside the models. The configuration is under 9. Configuration.",
    ]
    title = "Results of this run"
    text = "\n".join(lines)
    return f"{title}\n{'=' * len(title)}\n\n{{% raw %}}\n{text}\n{{% endraw %}}\n"


def write_landing_page(summary_paths, metrics_paths, conv_stub_csv, models, study, out_rst):
    summaries = [read_json(path) for path in summary_paths]
    metrics = [read_json(path) for path in metrics_paths]
    conv_stub = pd.read_csv(conv_stub_csv)
    write_text(out_rst, landing_text(summaries, metrics, conv_stub, models, study))
