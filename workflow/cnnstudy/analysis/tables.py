"""The results tables: one row per model beside the study's numbers, and precision/recall per class.

Runs are grouped by the model and seed recorded inside their files, never by the order of the inputs.
Every table of a run not on the study's data opens with the same banner (``data_banner``).
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from cnnstudy.base.files import atomic_path
from cnnstudy.base.rendering import percent, percent_interval, write_table

NOT_PRETRAINED = "not pretrained"
# What trains in each ResNet-18 mode (the rest of the network keeps its starting weights)
TRAINS = {"bn_frozen": "head only", "bn_unfrozen": "head + BatchNorm", "full": "every layer"}
COLUMNS = [
    "configuration",
    "model",
    "seeds",
    "test_accuracy",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
    "test_accuracy_std",
    "train_minutes",
    "job_minutes",
    "best_epoch",
    "epochs_run",
    "gflop_per_image",
    "peak_rss_mb",
    "reported_test_accuracy",
    "reported_minutes",
    "comparable_with_study",
    "meets_target",
]
PER_CLASS_COLUMNS = ["model", "class", "precision", "recall", "f1", "support", "seeds", "predicted"]


def read_json(path):
    return json.loads(Path(path).read_text())


def runs_by_model(records, models):
    """model → its records sorted by seed, models in ``models`` order; a repeated (model, seed) is an error."""
    grouped = {}
    for record in records:
        seeds = grouped.setdefault(record["model"], {})
        if record["seed"] in seeds:
            raise ValueError(f"two results for {record['model']} seed {record['seed']}")
        seeds[record["seed"]] = record
    return {
        model: [grouped[model][seed] for seed in sorted(grouped[model])]
        for model in models
        if model in grouped
    }


def on_study_data(record, study):
    """Whether a run (its metrics or summary) used the study's archive (by md5, not by name) and image size."""
    return (
        record.get("archive_md5") == study["dataset_md5"] and record.get("image_size") == study["image_size"]
    )


def comparable_with_study(records, study):
    """True when every run used the study's data."""
    return all(on_study_data(record, study) for record in records)


def test_data(records):
    """The distinct test sets of ``records`` (metrics): dataset, archive md5, image size, number of images."""
    keys = ("dataset", "archive_md5", "image_size", "n_images")
    distinct = {tuple(record.get(key) for key in keys) for record in records}
    return [dict(zip(keys, values, strict=True)) for values in sorted(distinct, key=str)]


def _data_words(record):
    return f"{record.get('dataset')} (archive md5 {str(record.get('archive_md5'))[:8]}…) at {record.get('image_size')} px"


def data_banner(records, study):
    """The sentence every table and page of a run not on the study's data opens with; "" on its data."""
    foreign = [record for record in records if not on_study_data(record, study)]
    if not foreign:
        return ""
    used = "; ".join(_data_words(record) for record in test_data(foreign))
    return (
        f"**Not the study's data.** This run used {used}, not the study's archive (md5 "
        f"{study['dataset_md5'][:8]}…) at {study['image_size']} px: its numbers are not the study's, and the "
        "study's numbers, target and claims are shown for reference only."
    )


def _test_set_words(data, comparable):
    """'the test set (Imagenette's val folder, 3,925 images)' on the study's data, else the other data's."""
    counts = ", ".join(
        f"{n:,}" for n in sorted({record["n_images"] for record in data if record.get("n_images")})
    )
    images = f", {counts} images" if counts else ""
    if comparable:
        return f"the test set (Imagenette's val folder{images})"
    names = ", ".join(dict.fromkeys(str(record.get("dataset")) for record in data)) or "this run's data"
    return f"the test split of {names}" + (f" ({counts} images)" if counts else "")


def _configuration(model, records):
    # pretrained is None for the CNNs; only an explicit False marks a ResNet trained from a random start
    random_init = any(record.get("pretrained") is False for record in records)
    return f"{model} ({NOT_PRETRAINED})" if random_init else model


def summary_table(metrics_paths, summary_paths, history_paths, models, study):
    """One row per model: test accuracy (mean over seeds, the Wilson interval, the spread across seeds),
    training time (the loop alone, and the whole job), epochs, cost, and the study's numbers.

    ``frame.attrs`` carry what the table's page says around the rows: ``test_data`` (see ``test_data``) and
    ``trains`` (model → what trains in it, for the ResNet-18 modes)."""
    metrics = runs_by_model([read_json(path) for path in metrics_paths], models)
    summaries = [read_json(path) for path in summary_paths]
    for summary, path in zip(summaries, history_paths, strict=True):
        summary["epochs_run"] = int(pd.read_csv(path)["epoch"].max())
    summaries = runs_by_model(summaries, models)
    every_run = [run for runs in metrics.values() for run in runs]
    comparable = comparable_with_study(every_run, study)
    rows = []
    for model, runs in metrics.items():
        accuracies = [run["accuracy"] for run in runs]
        trained = summaries[model]
        mean = float(np.mean(accuracies))
        reported = study["reported"].get(model, {})
        rows.append(
            {
                "configuration": _configuration(model, [*runs, *trained]),
                "model": model,
                "seeds": len(runs),
                "test_accuracy": mean,
                # one seed: its Wilson interval; several: the mean of theirs (the test set's own uncertainty)
                "test_accuracy_ci_low": float(np.mean([run["accuracy_ci95"][0] for run in runs])),
                "test_accuracy_ci_high": float(np.mean([run["accuracy_ci95"][1] for run in runs])),
                "test_accuracy_std": float(np.std(accuracies, ddof=1)) if len(runs) > 1 else math.nan,
                "train_minutes": float(np.mean([run["train_seconds"] for run in trained])) / 60,
                "job_minutes": float(np.mean([run["wall_seconds"] for run in trained])) / 60,
                "best_epoch": int(trained[0]["best_epoch"]),
                "epochs_run": int(trained[0]["epochs_run"]),
                "gflop_per_image": trained[0].get("train_gflop_per_image", math.nan),
                "peak_rss_mb": max(run.get("peak_rss_mb", math.nan) for run in trained),
                "reported_test_accuracy": reported.get("test_accuracy", math.nan),
                "reported_minutes": reported.get("minutes", math.nan),
                "comparable_with_study": comparable,
                # a mean of exact fractions can land a hair under an exactly-met target
                "meets_target": bool(mean >= study["target_accuracy"] - 1e-9),
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.attrs["test_data"] = test_data(every_run)
    frame.attrs["trains"] = {
        model: TRAINS[mode]
        for model, runs in summaries.items()
        if (mode := runs[0].get("hyperparameters", {}).get("mode")) in TRAINS
    }
    return frame


def _minutes(value):
    return "—" if pd.isna(value) else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _study_cell(accuracy, minutes):
    if pd.isna(accuracy) and pd.isna(minutes):
        return "—"
    parts = [percent(accuracy)] if not pd.isna(accuracy) else []
    return ", ".join(parts + ([f"{minutes:g} min"] if not pd.isna(minutes) else []))


def _display(frame, target):
    """The table as people read it: one format for every share (``percent``), the rarely needed columns
    (job minutes, cost) left to the CSV, and the spread across seeds only when there are several."""
    comparable = frame["comparable_with_study"].all()
    columns = {
        "model": frame["configuration"],
        "test accuracy (95 % CI)": [
            f"{percent(row.test_accuracy)} ({percent_interval(row.test_accuracy_ci_low, row.test_accuracy_ci_high)})"
            for row in frame.itertuples()
        ],
    }
    if (frame["seeds"] > 1).any():
        columns["sd over seeds"] = [
            "—" if pd.isna(std) else f"± {std * 100:.1f} pp ({seeds})"
            for std, seeds in zip(frame["test_accuracy_std"], frame["seeds"], strict=True)
        ]
    columns |= {
        "train min": frame["train_minutes"].map(_minutes),
        "epochs: best / run": [
            f"{b} / {r}" for b, r in zip(frame["best_epoch"], frame["epochs_run"], strict=True)
        ],
        "study" if comparable else "study (not comparable)": [
            _study_cell(a, m)
            for a, m in zip(frame["reported_test_accuracy"], frame["reported_minutes"], strict=True)
        ],
        f"≥ {percent(target, 0)}": ["yes" if met else "no" for met in frame["meets_target"]],
    }
    return pd.DataFrame(columns)


def _summary_banner(frame, study):
    if "test_data" in frame.attrs:
        return data_banner(frame.attrs["test_data"], study)
    if frame["comparable_with_study"].all():  # a frame read back from the CSV: no data names to give
        return ""
    return (
        f"**Not the study's data.** This run did not use the study's archive (md5 {study['dataset_md5'][:8]}…) "
        f"at {study['image_size']} px: its numbers are not the study's, and the study's numbers, target and "
        "claims are shown for reference only."
    )


def write_summary(frame, csv_path, md_path, html_path, study):
    """The table as CSV (full precision), and as Markdown and HTML for people and the report."""
    with atomic_path(csv_path) as partial:
        frame.to_csv(partial, index=False)
    target = study["target_accuracy"]
    comparable = bool(frame["comparable_with_study"].all())
    seeds = int(frame["seeds"].max()) if len(frame) else 0
    over = "one seed per model" if seeds == 1 else f"the mean over {seeds} seeds"
    test_set = _test_set_words(frame.attrs.get("test_data", []), comparable)
    intro = (
        f"Test accuracy on {test_set}, never used for model selection; {over}. "
        f"The assignment's target is ≥ {percent(target, 0)}"
        + ("." if comparable else ", set for the study's data.")
    )
    notes = [
        "*test accuracy (95 % CI)*: the share of test images classified correctly, with its Wilson score "
        "interval over the test images (with several seeds, the mean of the seeds' intervals)"
        + (
            "; *sd over seeds*: the sample standard deviation of the seeds' accuracies." if seeds > 1 else "."
        ),
        "*train min*: minutes spent in the training steps (after a GPU synchronise), summed over epochs: what "
        "the study's minutes measure. summary.csv also holds the whole job's wall time (job_minutes: "
        "validation, dead-unit probing, checkpoints and start-up included), GFLOP per image and peak memory.",
        "*epochs: best / run*: the epoch whose checkpoint was kept (highest validation accuracy) / the epochs "
        "trained before early stopping or the configured end (both for the lowest seed).",
        "*study*: the source study's test accuracy and minutes, from 50 epochs on Imagenette-160 at 160 px on "
        "its own hardware; it gives none for ResNet-18, only that it was the best overall.",
        f"*≥ {percent(target, 0)}*: whether the test accuracy meets the assignment's target"
        + (
            "."
            if comparable
            else "; the target is for the study's data and 50 epochs, so on this run's data a *no* says "
            "nothing about the code."
        ),
    ]
    trains = frame.attrs.get("trains", {})
    if trains:
        notes.append(
            "What trains in each ResNet-18 mode (the rest keeps its starting weights): "
            + "; ".join(f"*{model}*: {part}" for model, part in trains.items())
            + "."
        )
    if not comparable:
        notes.append(
            "*not comparable*: this run did not use the study's dataset (judged by the archive's md5) "
            "at its image size, so the study's numbers are shown for reference only."
        )
    if frame["configuration"].str.endswith(f"({NOT_PRETRAINED})").any():
        notes.append(
            f"*({NOT_PRETRAINED})*: ResNet-18 trained from a random start, not from ImageNet weights, as "
            "in the offline demo; those rows say nothing about transfer learning."
        )
    write_table(
        _display(frame, target),
        md_path,
        html_path,
        "Results",
        intro,
        notes,
        banner=_summary_banner(frame, study),
        wrap=["model"],
    )


def _predicted_counts(metrics_path, confusion_path):
    """Class → how many test images the run predicted as it (the confusion matrix's column sums), or None
    when no matrix is at hand. Without it, "never predicted" and "predicted, never right" look alike: both
    have precision 0 in metrics.json (scikit-learn's zero_division=0)."""
    path = Path(confusion_path) if confusion_path else Path(metrics_path).with_name("confusion.csv")
    if not path.is_file():  # evaluate writes confusion.csv beside metrics.json
        return None
    return pd.read_csv(path, index_col=0).sum(axis=0).to_dict()


def per_class_table(metrics_paths, models, confusion_paths=None):
    """Long format: model, class, precision, recall, f1, support (means over seeds), seeds, predicted.

    ``predicted`` is the mean number of test images predicted as the class; where a seed never predicted
    it, precision is undefined (NaN), and the mean is over the seeds that did. ``confusion_paths`` default
    to the confusion.csv beside each metrics.json."""
    confusion_paths = confusion_paths or [None] * len(metrics_paths)
    records = []
    for metrics_path, confusion_path in zip(metrics_paths, confusion_paths, strict=True):
        record = read_json(metrics_path)
        record["predicted"] = _predicted_counts(metrics_path, confusion_path)
        records.append(record)
    grouped = runs_by_model(records, models)
    rows = []
    for model, runs in grouped.items():
        for name in runs[0]["classes"]:
            scores = [run["per_class"][name] for run in runs]
            predicted = [run["predicted"].get(name) if run["predicted"] else None for run in runs]
            precisions = [
                math.nan if count == 0 else score["precision"]
                for score, count in zip(scores, predicted, strict=True)
            ]
            rows.append(
                {
                    "model": model,
                    "class": name,
                    "precision": float(np.mean(kept))
                    if (kept := [p for p in precisions if not math.isnan(p)])
                    else math.nan,
                    **{key: float(np.mean([score[key] for score in scores])) for key in ("recall", "f1")},
                    "support": scores[0]["support"],
                    "seeds": len(runs),
                    "predicted": math.nan if None in predicted else float(np.mean(predicted)),
                }
            )
    frame = pd.DataFrame(rows, columns=PER_CLASS_COLUMNS)
    frame.attrs["test_data"] = test_data(records)
    return frame


def _share(value):
    return "—" if pd.isna(value) else f"{value:.2f}"


def write_per_class(frame, csv_path, md_path, html_path, study=None):
    """CSV (long, all digits), and for people a long table: one row per model and class, no empty column,
    precision "—" where the model never predicted the class. With ``study``, the data banner on other data."""
    with atomic_path(csv_path) as partial:
        frame.to_csv(partial, index=False)
    display = pd.DataFrame(
        {
            "model": frame["model"],
            "class (test images)": [
                f"{c} ({int(n):,})" for c, n in zip(frame["class"], frame["support"], strict=True)
            ],
            "precision": frame["precision"].map(_share),
            "recall": frame["recall"].map(_share),
            "F1": frame["f1"].map(_share),
        }
    )
    data = frame.attrs.get("test_data", [])
    seeds = int(frame["seeds"].max()) if len(frame) else 0
    over = "one seed per model" if seeds <= 1 else f"means over {seeds} seeds"
    comparable = bool(study) and comparable_with_study(data, study)
    intro = (
        f"Precision, recall and F1 of every class on {_test_set_words(data, comparable)}, per model; {over}."
    )
    notes = [
        "*precision*: the share of the images predicted as the class that belong to it; *recall*: the share "
        "of the class's images predicted as it (the diagonal of the row-normalised confusion matrix); *F1*: "
        "their harmonic mean.",
    ]
    if frame["precision"].isna().any():
        notes.append(
            "*—* (precision): the model never predicted the class, so its precision is undefined (metrics.json "
            "records 0 there). With several seeds, a seed that never predicted the class is left out of the mean."
        )
    banner = data_banner(data, study) if study else ""
    write_table(
        display, md_path, html_path, "Precision and recall per class", intro, notes, banner=banner, wrap=[]
    )
