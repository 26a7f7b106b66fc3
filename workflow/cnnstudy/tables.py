"""The results tables: one row per model beside the study's numbers, and precision/recall per class.

Runs are grouped by the model and seed recorded inside their files, never by the order of the inputs.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from cnnstudy.files import atomic_path
from cnnstudy.rendering import write_table

NOT_PRETRAINED = "not pretrained"
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


def _configuration(model, records):
    # pretrained is None for the CNNs; only an explicit False marks a ResNet trained from a random start
    random_init = any(record.get("pretrained") is False for record in records)
    return f"{model} ({NOT_PRETRAINED})" if random_init else model


def summary_table(metrics_paths, summary_paths, history_paths, models, study):
    """One row per model: test accuracy (mean over seeds, the Wilson interval, the spread across seeds),
    training time (the loop alone, and the whole job), epochs, cost, and the study's numbers."""
    metrics = runs_by_model([read_json(path) for path in metrics_paths], models)
    summaries = [read_json(path) for path in summary_paths]
    for summary, path in zip(summaries, history_paths, strict=True):
        summary["epochs_run"] = int(pd.read_csv(path)["epoch"].max())
    summaries = runs_by_model(summaries, models)
    comparable = comparable_with_study([run for runs in metrics.values() for run in runs], study)
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
    return pd.DataFrame(rows, columns=COLUMNS)


def _percent(value):
    return "—" if pd.isna(value) else f"{value:.2%}"


def _minutes(value):
    return "—" if pd.isna(value) else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _accuracy_cell(row):
    interval = f"[{row.test_accuracy_ci_low * 100:.1f}, {row.test_accuracy_ci_high * 100:.1f}]"
    return f"{_percent(row.test_accuracy)} {interval}"


def _display(frame):
    comparable = frame["comparable_with_study"].all()
    reported_suffix = "" if comparable else " (not comparable)"
    return pd.DataFrame(
        {
            "configuration": frame["configuration"],
            "test accuracy [95 % CI]": [_accuracy_cell(row) for row in frame.itertuples()],
            "across seeds (sd)": [
                "—" if pd.isna(std) else f"± {std * 100:.2f} pp ({seeds})"
                for std, seeds in zip(frame["test_accuracy_std"], frame["seeds"], strict=True)
            ],
            "training minutes (loop only)": frame["train_minutes"].map(_minutes),
            "job minutes": frame["job_minutes"].map(_minutes),
            "best epoch": frame["best_epoch"].astype(str),
            "epochs run": frame["epochs_run"].astype(str),
            f"study: test accuracy{reported_suffix}": frame["reported_test_accuracy"].map(_percent),
            f"study: minutes{reported_suffix}": [
                "—" if pd.isna(v) else f"{v:g}" for v in frame["reported_minutes"]
            ],
            "meets target": ["yes" if met else "no" for met in frame["meets_target"]],
        }
    )


def write_summary(frame, csv_path, md_path, html_path, study):
    """The table as CSV (full precision), and as Markdown and HTML for people and the report."""
    with atomic_path(csv_path) as partial:
        frame.to_csv(partial, index=False)
    target = study["target_accuracy"]
    seeds = int(frame["seeds"].max()) if len(frame) else 0
    over = "one seed per model" if seeds == 1 else f"the mean over {seeds} seeds"
    intro = (
        f"Test accuracy on the test set (Imagenette's val folder, never used for model selection), {over}; "
        f"the assignment's target is ≥ {target:.0%}."
    )
    notes = [
        "*test accuracy [95 % CI]*: the share of test images classified correctly, with its Wilson score "
        "interval over the test images (with several seeds, the mean of the seeds' intervals); *across "
        "seeds*: the sample standard deviation of the seeds' accuracies.",
        "*training minutes (loop only)*: the time spent in the training steps (after a GPU synchronise), "
        "summed over epochs: what the study's minutes measure. *job minutes*: the training job's wall "
        "time, including validation, dead-unit probing, checkpoints and start-up.",
        "*best epoch*: the epoch whose checkpoint was kept (highest validation accuracy); *epochs run*: "
        "epochs trained before early stopping or the configured end (both for the lowest seed).",
        "*study*: the source study's numbers, from 50 epochs on Imagenette-160 at 160 px on its own "
        "hardware; it gives none for ResNet-18, only that it was the best overall.",
    ]
    if not frame["comparable_with_study"].all():
        notes.append(
            "*not comparable*: this run did not use the study's dataset (judged by the archive's md5) "
            "at its image size, so the study's numbers are shown for reference only."
        )
    if frame["configuration"].str.endswith(f"({NOT_PRETRAINED})").any():
        notes.append(
            f"*({NOT_PRETRAINED})*: ResNet-18 trained from a random start, not from ImageNet weights, as "
            "in the offline demo; those rows say nothing about transfer learning."
        )
    write_table(_display(frame), md_path, html_path, "Results", intro, notes)


def per_class_table(metrics_paths, models):
    """Long format: model, class, precision, recall, f1, support (means over seeds), seeds."""
    grouped = runs_by_model([read_json(path) for path in metrics_paths], models)
    rows = []
    for model, runs in grouped.items():
        for name in runs[0]["classes"]:
            scores = [run["per_class"][name] for run in runs]
            rows.append(
                {
                    "model": model,
                    "class": name,
                    **{
                        key: float(np.mean([score[key] for score in scores]))
                        for key in ("precision", "recall", "f1")
                    },
                    "support": scores[0]["support"],
                    "seeds": len(runs),
                }
            )
    return pd.DataFrame(rows, columns=["model", "class", "precision", "recall", "f1", "support", "seeds"])


def write_per_class(frame, csv_path, md_path, html_path):
    with atomic_path(csv_path) as partial:
        frame.to_csv(partial, index=False)
    cells = frame.assign(
        cell=[f"{p:.2f} / {r:.2f}" for p, r in zip(frame["precision"], frame["recall"], strict=True)]
    )
    display = cells.pivot(index="class", columns="model", values="cell")
    display = display[list(dict.fromkeys(frame["model"]))].reindex(list(dict.fromkeys(frame["class"])))
    display = display.reset_index().rename(columns={"class": "class (test images)"})
    support = frame.drop_duplicates("class").set_index("class")["support"]
    display["class (test images)"] = [f"{name} ({support[name]})" for name in display["class (test images)"]]
    notes = [
        "Each cell: *precision / recall* of the class on the test set (mean over seeds). Precision: the "
        "share of images predicted as the class that belong to it; recall: the share of the class's "
        "images predicted as it (the diagonal of the row-normalised confusion matrix)."
    ]
    write_table(display, md_path, html_path, "Precision and recall per class", notes=notes)
