"""What a finished training run writes: the best checkpoint, the history, the gradient histograms and
the summary, each atomically, with everything needed to say where the result came from."""

import json
import logging
import time

import pandas as pd
import torch

from ..base.files import atomic_path
from ..base.memory import peak_rss_mb
from ..base.provenance import provenance
from .measurements import training_flops_per_image
from .models import build_model

log = logging.getLogger(__name__)
GRADIENT_COLUMNS = ["epoch", "layer", "kind", "bin", "low", "high", "count"]


def _job_seconds(started):
    """Seconds since the job's process started (psutil, a Snakemake dependency), else since training did."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except ImportError:
        return time.perf_counter() - started


def _gradient_epochs(state, configured):
    recorded = sorted({row["epoch"] for row in state["gradients"]} | {state["epoch"]})
    return {
        "configured": configured,
        "recorded": recorded,
        "missing": [epoch for epoch in configured if epoch > state["epoch"]],  # never reached
    }


def write_outputs(outputs, hp, state, best_weights, train_split, val_split, device, *, normalization, pretrained,
                   settings, code_version, precision, probe_kept, started):  # fmt: skip
    """The run's four outputs, each written atomically; returns (history frame, summary dict)."""
    history = pd.DataFrame(state["history"])
    best = history.loc[history["epoch"] == state["best_epoch"]].iloc[0].to_dict()
    gradients = state["gradients"] + (
        state["latest_gradients"] if state["epoch"] not in hp["gradient_epochs"] else []
    )
    origin = provenance(device, train=train_split, val=val_split)
    flops = training_flops_per_image(lambda: build_model(hp, len(train_split.classes)), hp["image_size"])
    summary = {
        "model": hp["model"],
        "seed": hp["seed"],
        "dataset": hp["dataset"],
        "archive_md5": origin.get("archive_md5"),
        "image_size": hp["image_size"],
        "pretrained": pretrained,
        "best_epoch": state["best_epoch"],
        "stopped_epoch": state["epoch"],
        "stopped_early": state["epoch"] < hp["epochs"],
        "still_improving": state["best_epoch"] == state["epoch"],
        "epochs_configured": hp["epochs"],
        "early_stopping_patience": hp["early_stopping_patience"],
        "best_val_accuracy": state["best_accuracy"],
        "train_seconds": float(history["train_seconds"].sum()),
        "epochs_seconds": float(history["epoch_seconds"].sum()),
        "wall_seconds": _job_seconds(started),
        "train_gflop_per_image": flops / 1e9,
        "precision": precision,
        "peak_rss_mb": peak_rss_mb(),
        **({"peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 1e6} if device.type == "cuda" else {}),
        "gradient_epochs": _gradient_epochs(state, hp["gradient_epochs"]),
        "probe": {"size": len(probe_kept), "indices": probe_kept} if probe_kept else None,
        "provenance": origin,
        "code_version": code_version,
        "hyperparameters": hp,
        "run_settings": settings,
    }
    mean, std = normalization
    checkpoint = {
        "model_state": best_weights,
        "hyperparameters": hp,
        "run_settings": settings,
        "code_version": code_version,
        "epoch": state["best_epoch"],
        "metrics": best,
        "classes": train_split.classes,
        "normalization": {"mean": mean.tolist(), "std": std.tolist()},
        "pretrained": pretrained,
        "provenance": origin,
    }
    with atomic_path(outputs["checkpoint"]) as partial:
        torch.save(checkpoint, partial)
    with atomic_path(outputs["history"]) as partial:
        history.to_csv(partial, index=False)
    with atomic_path(outputs["gradients"]) as partial:
        pd.DataFrame(gradients, columns=GRADIENT_COLUMNS).to_csv(partial, index=False)
    with atomic_path(outputs["summary"]) as partial:
        partial.write_text(json.dumps(summary, indent=2) + "\n")
    if summary["stopped_early"]:
        log.info("early stopping after epoch %d: no better validation accuracy for %d epochs",
                 state["epoch"], hp["early_stopping_patience"])  # fmt: skip
    return history, summary


def read_outputs(outputs):
    with open(outputs["summary"]) as handle:
        return pd.read_csv(outputs["history"]), json.load(handle)
