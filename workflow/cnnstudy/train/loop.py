"""The one training loop, used for every model: the CNN variants, sweep points and the ResNet-18 modes.

``train`` reads top to bottom: set up, resume, then per epoch the training steps (``run_epoch``:
schedule, forward, loss, backward, step), validation, the training accuracy in evaluation mode,
measurements, the resume state and the live curves; then the outputs. Bookkeeping lives in small
functions below it, in ``resume.py`` (the state kept between epochs) and ``run_outputs.py`` (the files a
finished run writes); the measurements in ``measurements.py``, the TensorBoard curves in
``live_curves.py``.
"""

import contextlib
import logging
import math
import signal
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..base.devices import DEFAULT_GPU_WAIT_MINUTES, select_device
from ..base.jobs import StudyError
from ..base.locks import run_folder_lock
from ..base.memory import inference_chunk_size
from ..data.tensors import Split, load_split, seeded_generator, to_model_input
from .inference import autocast, loss_and_accuracy
from .live_curves import LiveCurves, run_folder
from .measurements import (
    dead_unit_fractions,
    gradient_bin_edges,
    gradient_histograms,
    probe_indices,
)
from .models import build_model, normalization
from .resume import ResumeFolder, run_key
from .run_outputs import read_outputs, write_outputs
from .weights import load_weights

log = logging.getLogger(__name__)
DEFAULT_RUN_SETTINGS = {
    "device": "cpu", "eval_batch_size": 512, "compile": False, "tensorboard": None,
    "gpu_wait_minutes": DEFAULT_GPU_WAIT_MINUTES,
}  # fmt: skip


class StopRequested(StudyError):
    pass


def learning_rate(hp, step, total_steps, steps_per_epoch):
    """Constant, or linear warm-up then cosine decay to zero; ``step`` counts from 0."""
    if hp["schedule"] == "constant":
        return hp["lr"]
    warmup = hp["warmup_epochs"] * steps_per_epoch
    if step < warmup:
        return hp["lr"] * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return hp["lr"] * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class Loop:
    """What every epoch of one run needs: the model, how it steps, and the batches it steps through."""

    model: torch.nn.Module
    forward: object  # the model, or its torch.compile'd version
    optimizer: torch.optim.Optimizer
    hp: dict
    split: object  # the training split, on the device
    mean: torch.Tensor
    std: torch.Tensor
    device: torch.device
    precision: str  # what autocast uses: the configured precision on CUDA, fp32 on the CPU
    steps_per_epoch: int
    log_edges: object  # the gradient histograms' bins


def make_loop(model, hp, train_split, device, normalization, settings):
    """Put the model on the device and build its optimizer: shared by training and the GPU benchmark."""
    on_cuda = device.type == "cuda"
    mean, std = (statistic.to(device) for statistic in normalization)
    model.to(device, memory_format=torch.channels_last)
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    else:
        torch.use_deterministic_algorithms(True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    return Loop(
        model=model,
        forward=torch.compile(model) if settings["compile"] and on_cuda else model,
        optimizer=torch.optim.Adam(
            trainable, lr=hp["lr"], betas=tuple(hp["betas"]), weight_decay=hp["weight_decay"]
        ),
        hp=hp,
        split=train_split,
        mean=mean,
        std=std,
        device=device,
        precision=hp["precision"] if on_cuda else "fp32",
        steps_per_epoch=_steps_per_epoch(hp, train_split),
        log_edges=gradient_bin_edges(hp["gradient_range"], hp["gradient_bins_per_decade"]),
    )


def run_epoch(loop, epoch, stop=None, steps=None):
    """One epoch of the training loop: learning rate, batch, forward, loss, backward, step, every batch.

    ``stop`` (set by a signal) ends it early with StopRequested; ``steps`` runs fewer batches (benchmarks).
    Returns the epoch's mean loss and accuracy, its seconds of training alone, images seen, last learning
    rate, and the weight-gradient histograms of its last batch.
    """
    hp, split, device = loop.hp, loop.split, loop.device
    steps = steps or loop.steps_per_epoch
    total_steps = loop.steps_per_epoch * hp["epochs"]
    torch.manual_seed(hp["seed"] * 10_000 + epoch)  # dropout masks
    order = torch.randperm(
        len(split), generator=seeded_generator(device, hp["seed"], epoch, 0), device=device
    )
    augmentation = {
        "generator": seeded_generator(device, hp["seed"], epoch, 1),
        "jitter": hp["jitter"],
        "augmentation": hp["augmentation"],
    }
    loop.model.train()
    started = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for step in _progress(range(steps), f"{hp['model']} epoch {epoch}"):
        if stop:
            raise StopRequested(f"stopped by {stop['signal']} during epoch {epoch}")
        lr = learning_rate(hp, (epoch - 1) * loop.steps_per_epoch + step, total_steps, loop.steps_per_epoch)
        for group in loop.optimizer.param_groups:
            group["lr"] = lr
        batch = order[step * hp["batch_size"] : (step + 1) * hp["batch_size"]]
        images = to_model_input(split.images[batch], loop.mean, loop.std, **augmentation)
        labels = split.labels[batch]
        with autocast(device, loop.precision):
            logits = loop.forward(images)
            loss = F.cross_entropy(logits.float(), labels)
        loop.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if step == steps - 1:  # the epoch's last batch: its gradients, before the step changes them
            gradients = gradient_histograms(loop.model, epoch, loop.log_edges)
        loop.optimizer.step()
        loss_sum += loss.detach() * len(batch)  # accumulated on the device: no sync per step
        correct += (logits.argmax(dim=1) == labels).sum()
    if device.type == "cuda":
        torch.cuda.synchronize()  # the clock must see the GPU's work, not just its queue
    seconds = time.perf_counter() - started
    seen = steps * hp["batch_size"]
    return {"loss": loss_sum.item() / seen, "accuracy": correct.item() / seen, "seconds": seconds,
            "images": seen, "lr": lr, "gradients": gradients}  # fmt: skip


def train(model, hp, train_split, val_split, device, outputs, resume_dir, normalization, pretrained=None,
          code_version="", settings=None):  # fmt: skip
    """Train ``model`` with hyper-parameters ``hp``; write the best checkpoint, history, gradients, summary.

    ``normalization`` is the per-channel (mean, std); ``pretrained`` is recorded for ResNet-18 (None for
    the CNN); ``outputs`` maps checkpoint / history / gradients / summary to paths; ``settings`` says how
    the job runs (device, eval_batch_size, compile). The state after every epoch is kept in
    ``resume_dir``: a rerun of the same run (``resume.run_key``) continues from the last finished epoch.
    Every epoch reseeds from (seed, epoch), so a resumed run on the CPU replays exactly what an
    uninterrupted one would have done. SIGTERM or SIGINT stops training at the next step.
    """
    started = time.perf_counter()
    settings = {**DEFAULT_RUN_SETTINGS, **(settings or {})}
    loop = make_loop(model, hp, train_split, device, normalization, settings)
    probe, probe_kept = _probe(hp, val_split)
    train_subset = _training_subset(hp, train_split, val_split)
    image_shape = tuple(val_split.images.shape[1:])
    eval_chunk = inference_chunk_size(model, image_shape, settings["eval_batch_size"], device)

    with run_folder_lock(resume_dir), _stop_on_signals() as stop:
        store = ResumeFolder(resume_dir, run_key(hp, code_version, train_split, val_split))
        if store.restore_finished(outputs):
            return read_outputs(outputs)
        state = {"epoch": 0, "history": [], "gradients": [], "latest_gradients": [], "best_accuracy": -1.0,
                 "best_epoch": 0}  # fmt: skip
        saved = store.restore()
        if saved:
            model.load_state_dict(saved["model"])
            loop.optimizer.load_state_dict(saved["optimizer"])
            state = saved["state"]
        tensorboard = settings["tensorboard"]
        curves = LiveCurves(tensorboard and run_folder(tensorboard, outputs["checkpoint"]), state["epoch"])

        for epoch in range(state["epoch"] + 1, hp["epochs"] + 1):
            if (
                hp["early_stopping_patience"]
                and epoch - 1 - state["best_epoch"] >= hp["early_stopping_patience"]
            ):
                break
            epoch_started = time.perf_counter()
            try:
                trained = run_epoch(loop, epoch, stop)
            except StopRequested as stopped:
                raise StopRequested(f"{stopped}: the {epoch - 1} finished epochs are kept in {resume_dir}; "
                                    "rerun the same command to continue from there") from None  # fmt: skip
            val_loss, val_accuracy = loss_and_accuracy(
                model, val_split, loop.mean, loop.std, eval_chunk, device, loop.precision
            )
            # dropout off, no augmentation, weights fixed: the training accuracy to set against validation
            train_eval_loss, train_eval_accuracy = loss_and_accuracy(
                model, train_subset, loop.mean, loop.std, eval_chunk, device, loop.precision
            )
            row = {
                "epoch": epoch,
                "train_loss": trained["loss"],  # running mean over the epoch, in training mode
                "train_accuracy": trained["accuracy"],
                "train_eval_loss": train_eval_loss,
                "train_eval_accuracy": train_eval_accuracy,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
                "lr": trained["lr"],
                **(
                    dead_unit_fractions(model, probe, loop.mean, loop.std, eval_chunk)
                    if probe is not None
                    else {}
                ),
                "train_seconds": trained["seconds"],
                "epoch_seconds": time.perf_counter() - epoch_started,
                "images_per_second": trained["images"] / trained["seconds"],
            }
            _record_epoch(state, row, trained["gradients"], hp["gradient_epochs"])
            # curves first: an epoch drawn but not saved is drawn again, over itself, by the resumed run
            curves.epoch(row, trained["gradients"] if epoch in hp["gradient_epochs"] else [])
            store.save(
                {"model": model.state_dict(), "optimizer": loop.optimizer.state_dict(), "state": state}
            )
            _log_epoch(hp, row, state)

        curves.close()
        best_weights = store.best_weights(state, model)
        history, summary = write_outputs(
            outputs, hp, state, best_weights, train_split, val_split, device, normalization=(loop.mean, loop.std),
            pretrained=pretrained, settings=settings, code_version=code_version, precision=loop.precision,
            probe_kept=probe_kept, started=started,
        )  # fmt: skip
        store.finish(outputs)
    return history, summary


def train_job(
    hp, train_path, val_path, outputs, resume_dir, code_version, settings, weights=(), weights_sha256=None
):
    """A training rule's whole job: load the data on the device, build the model, train it."""
    device = select_device(settings["device"], settings["gpu_wait_minutes"])
    train_split = load_split(train_path, device)
    val_split = load_split(val_path, device)
    pretrained, state_dict = None, None  # the custom CNN always starts from scratch
    if hp["architecture"] == "resnet18":
        pretrained = hp["weights"] != "none"
        if pretrained:
            state_dict = load_weights(weights[0], weights_sha256)
    model = build_model(hp, len(train_split.classes), state_dict)
    return train(
        model, hp, train_split, val_split, device, outputs, resume_dir, normalization(hp, train_split.images),
        pretrained=pretrained, code_version=code_version, settings=settings,
    )  # fmt: skip


def _steps_per_epoch(hp, train_split):
    steps = len(train_split) // hp["batch_size"]
    if steps == 0:
        raise StudyError(
            f"training.batch_size {hp['batch_size']} exceeds the {len(train_split)} training images: lower "
            "training.batch_size (or the model's own batch_size), or dataset.validation_fraction"
        )
    return steps


def _probe(hp, val_split):
    """The fixed, class-stratified validation images on which dead ReLU units are counted (CNN only)."""
    if hp["architecture"] != "cnn":
        return None, None
    if hp["probe_size"] > len(val_split):
        raise StudyError(
            f"cnn.probe_size {hp['probe_size']} exceeds the {len(val_split)} validation images: lower "
            "cnn.probe_size or raise dataset.validation_fraction"
        )
    indices = probe_indices(val_split.labels, hp["probe_size"])
    return val_split.images[torch.as_tensor(indices, device=val_split.images.device)], indices


def _training_subset(hp, train_split, val_split):
    """The fixed, class-stratified training images scored in evaluation mode after every epoch: as many as
    the dead-unit probe (CNN), or as the validation split (ResNet-18, which has no probe)."""
    size = min(hp.get("probe_size", len(val_split)), len(train_split))
    indices = torch.as_tensor(probe_indices(train_split.labels, size), device=train_split.images.device)
    return Split(train_split.images[indices], train_split.labels[indices], [], train_split.classes)


@contextlib.contextmanager
def _stop_on_signals():
    """SIGTERM or SIGINT asks the loop to stop at the next step (a second one stops at once).

    A scheduler's grace period before SIGKILL is short (30 s on SLURM by default): the last finished
    epoch is already on disk, so stopping loses at most the epoch in progress.
    """
    stop = {}

    def request_stop(number, _frame):
        if stop:
            raise KeyboardInterrupt
        stop["signal"] = signal.Signals(number).name
        log.warning("%s received: stopping at the next step; finished epochs are kept", stop["signal"])

    try:
        previous = {number: signal.signal(number, request_stop) for number in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: leave the signals as they are
        previous = {}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _record_epoch(state, row, gradients, gradient_epochs):
    """Add an epoch to ``state``: its row, the best epoch so far, and the gradient histograms to keep
    (the configured epochs, and the latest epoch until a later one replaces it)."""
    state["history"].append(row)
    if row["val_accuracy"] > state["best_accuracy"]:
        state.update(best_accuracy=row["val_accuracy"], best_epoch=row["epoch"])
    if row["epoch"] in gradient_epochs:
        state["gradients"] += gradients
    state["latest_gradients"] = gradients
    state["epoch"] = row["epoch"]


def _log_epoch(hp, row, state):
    log.info(
        "%s epoch %d/%d  train loss %.4f acc %.4f (eval mode %.4f)  val loss %.4f acc %.4f  lr %.2e  %.1f s  "
        "%.3g img/s%s",
        hp["model"], row["epoch"], hp["epochs"], row["train_loss"], row["train_accuracy"],
        row["train_eval_accuracy"], row["val_loss"], row["val_accuracy"], row["lr"], row["epoch_seconds"],
        row["images_per_second"],
        "  (best)" if state["best_epoch"] == row["epoch"] else "",
    )  # fmt: skip


def _progress(steps, description):
    """A progress bar when a person watches a terminal; plain iteration in a job's log file."""
    try:
        from tqdm import tqdm
    except ImportError:  # a bare GPU machine's Python
        return steps
    return tqdm(steps, desc=description, leave=False) if sys.stderr.isatty() else steps
