"""The results table: our test accuracy and measured training time per model, beside the study's numbers."""

import math

import numpy as np
import pandas as pd

from cnnstudy.files import atomic_path, write_text

COLUMNS = [
    "configuration",
    "test_accuracy",
    "test_accuracy_std",
    "seeds",
    "training_minutes",
    "best_epoch",
    "epochs_run",
    "reported_test_accuracy",
    "reported_minutes",
    "meets_target",
]
NOT_PRETRAINED = "not pretrained"


def _configuration(model, records):
    # pretrained is None for the CNNs; only an explicit False marks a ResNet trained from a random start
    random_init = any(record.get("pretrained") is False for record in records)
    return f"{model} ({NOT_PRETRAINED})" if random_init else model


def summary_table(models, metrics, summaries, histories, reported, target):
    """One row per model. ``metrics``, ``summaries`` and ``histories`` map a model to one entry per seed
    (first = primary seed); accuracy and minutes are means over seeds, epochs are the primary seed's."""
    rows = []
    for model in models:
        accuracies = [record["accuracy"] for record in metrics[model]]
        minutes = [history["epoch_seconds"].sum() / 60 for history in histories[model]]
        mean = float(np.mean(accuracies))
        study = reported.get(model, {})
        rows.append(
            {
                "configuration": _configuration(model, [*metrics[model], *summaries[model]]),
                "test_accuracy": mean,
                "test_accuracy_std": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else math.nan,
                "seeds": len(accuracies),
                "training_minutes": float(np.mean(minutes)),
                "best_epoch": int(summaries[model][0]["best_epoch"]),
                "epochs_run": int(histories[model][0]["epoch"].max()),
                "reported_test_accuracy": study.get("test_accuracy", math.nan),
                "reported_minutes": study.get("minutes", math.nan),
                # a mean of exact fractions can land a hair under an exactly-met target
                "meets_target": bool(mean >= target - 1e-9),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _percent(value, std=math.nan):
    if pd.isna(value):
        return "—"
    return f"{value:.2%}" if pd.isna(std) else f"{value * 100:.2f} ± {std * 100:.2f} %"


def _markdown_rows(frame):
    return pd.DataFrame(
        {
            "configuration": frame["configuration"],
            "test accuracy": [
                _percent(v, s)
                for v, s in zip(frame["test_accuracy"], frame["test_accuracy_std"], strict=True)
            ],
            "seeds": frame["seeds"].astype(str),
            "training minutes": [
                f"{value:.1f}" if value >= 1 else f"{value:.2f}" for value in frame["training_minutes"]
            ],
            "best epoch": frame["best_epoch"].astype(str),
            "epochs run": frame["epochs_run"].astype(str),
            "reported test accuracy": [_percent(value) for value in frame["reported_test_accuracy"]],
            "reported minutes": ["—" if pd.isna(v) else f"{v:g}" for v in frame["reported_minutes"]],
            "meets target": ["yes" if met else "no" for met in frame["meets_target"]],
        }
    )


def write_summary(frame, csv_path, md_path, dataset, target):
    """The table as CSV (full precision) and as a Markdown page for people and the HTML report."""
    with atomic_path(csv_path) as temporary:
        frame.to_csv(temporary, index=False)
    # tabulate ships with Snakemake; disable_numparse keeps "14" and "62.03 %" exactly as formatted
    table = _markdown_rows(frame).to_markdown(index=False, disable_numparse=True)
    footnote = (
        "*test accuracy*: on the test set, mean over seeds (± sample standard deviation with several seeds). "
        "*training minutes*: measured training time (sum of each epoch's seconds, mean over seeds). "
        "*best epoch*: the epoch whose checkpoint was kept (highest validation accuracy); *epochs run*: "
        "epochs trained before early stopping or the configured end (both for the first seed). "
        "*reported*: the source study's numbers, from 50 epochs on the full Imagenette-160 on their "
        "hardware; the study gives none for ResNet-18, only that it was the best overall. "
        f"*meets target*: test accuracy ≥ {target:.0%}."
    )
    if frame["configuration"].str.endswith(f"({NOT_PRETRAINED})").any():
        footnote += (
            f" *({NOT_PRETRAINED})*: ResNet-18 trained from a random start (random init), not from "
            "ImageNet weights, as in the offline demo; those rows say nothing about transfer learning."
        )
    text = (
        f"# Results of the CNN study on {dataset}\n\n"
        f"Test accuracy on {dataset}'s test set (never used for model selection); "
        f"the target is ≥ {target:.0%} test accuracy.\n\n"
        f"{table}\n\n{footnote}\n"
    )
    write_text(md_path, text)
