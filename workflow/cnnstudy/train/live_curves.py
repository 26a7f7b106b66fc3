"""Live training curves: TensorBoard event files written as epochs finish, so a study that takes hours
can be watched while it runs (``tensorboard --logdir results/tensorboard``).

A side output: no rule declares these files and no result depends on them (``codeversion`` leaves this
module out of the fingerprints). One folder per run, named like the run's own folder, so every model and
seed shows as its own run: ``tensorboard/<model>[-seed<N>]`` and ``tensorboard/sweeps/<sweep>/<point>/
seed<N>``. Steps are epochs. A resumed run purges the steps after its last finished epoch, so an epoch
interrupted midway never shows twice; a run that starts afresh (no state, or state of other
hyper-parameters, code or data) empties its folder first. Without the ``tensorboard`` package (a bare GPU
image's Python) training runs on with one warning.
"""

import logging
import shutil
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def run_folder(root, checkpoint):
    """The event folder of the run whose checkpoint is ``checkpoint``, under ``root`` (``…/tensorboard``):
    the run folder's path below the results folder, without the leading ``models/``."""
    run = Path(checkpoint).parent.resolve().relative_to(Path(root).parent.resolve())
    parts = run.parts[1:] if run.parts[0] == "models" else run.parts
    return Path(root).joinpath(*parts)


class LiveCurves:
    """Writes one run's curves; every method does nothing when TensorBoard is off or missing."""

    def __init__(self, folder, resumed_epoch):
        self.writer = None
        if folder is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's writer needs the tensorboard package
            log.warning("tensorboard is not installed: no live curves (pip install tensorboard)")
            return
        if not resumed_epoch:
            shutil.rmtree(folder, ignore_errors=True)  # a fresh run: the old curves were another run's
        self.writer = SummaryWriter(str(folder), purge_step=resumed_epoch + 1 if resumed_epoch else None)
        log.info("live curves in %s (tensorboard --logdir %s)", folder, Path(folder).parents[0])

    def epoch(self, row, gradients):
        """Scalars of one history row; the weight-gradient histograms when the epoch keeps them."""
        if self.writer is None:
            return
        step = row["epoch"]
        for key, value in row.items():
            if key != "epoch":
                self.writer.add_scalar(_TAGS.get(key, key.replace("dead_", "dead units/")), value, step)
        for layer, counts in _by_layer(gradients).items():
            self._histogram(f"gradients/{layer}", counts, step)
        self.writer.flush()  # the epoch is on disk when its line is in the log

    def _histogram(self, tag, rows, step):
        """A layer's binned gradients as a histogram of log10|g| (both signs together): TensorBoard draws
        bins, and ours are already counted, so they go in raw."""
        edges, counts = _log_magnitude_bins(rows)
        if counts.sum() == 0:
            return
        centres = (edges[:-1] + edges[1:]) / 2
        self.writer.add_histogram_raw(
            tag, min=float(edges[0]), max=float(edges[-1]), num=int(counts.sum()),
            sum=float(centres @ counts), sum_squares=float(centres**2 @ counts),
            bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(), global_step=step,
        )  # fmt: skip

    def close(self):
        if self.writer is not None:
            self.writer.close()


_TAGS = {
    "train_loss": "loss/training (running, training mode)",
    "val_loss": "loss/validation",
    "train_eval_loss": "loss/training (evaluation mode, fixed subset)",
    "train_accuracy": "accuracy/training (running, training mode)",
    "train_eval_accuracy": "accuracy/training (evaluation mode, fixed subset)",
    "val_accuracy": "accuracy/validation",
    "lr": "learning rate",
    "train_seconds": "seconds/training",
    "epoch_seconds": "seconds/epoch",
    "images_per_second": "speed/images per second",
}


def _by_layer(gradients):
    layers = {}
    for row in gradients:
        layers.setdefault(row["layer"], []).append(row)
    return layers


def _log_magnitude_bins(rows):
    """(edges, counts) over log10|g| from the signed bins: each finite bin folded onto its magnitude; the
    open-ended bins (under and above the range) become one bin a decade wide at either end."""
    finite = [row for row in rows if np.isfinite(row["low"]) and np.isfinite(row["high"]) and row["low"] > 0]
    edges = [np.log10(row["low"]) for row in finite] + [np.log10(finite[-1]["high"])]
    counts = {round(np.log10(row["low"]), 9): 0 for row in finite}
    under = above = 0
    for row in rows:
        low, high = abs(row["low"]), abs(row["high"])
        if row["low"] < 0 < row["high"]:
            under += row["count"]  # |g| under the range, zero included
        elif np.isinf(low) or np.isinf(high):
            above += row["count"]
        else:
            counts[round(np.log10(min(low, high)), 9)] += row["count"]
    edges = np.array([edges[0] - 1, *edges, edges[-1] + 1])
    return edges, np.array([under, *counts.values(), above], dtype=np.int64)
