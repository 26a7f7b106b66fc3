"""The one training loop, used for every model: the five CNN variants and the ResNet-18 modes."""

import contextlib
import json
import logging
import math
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .data import seeded_generator, to_model_input
from .devices import environment
from .files import atomic_path
from .models import tracked_layers

log = logging.getLogger(__name__)


def learning_rate(hp, step, total_steps, steps_per_epoch):
    """Constant, or linear warm-up then cosine decay to zero; ``step`` counts from 0."""
    if hp["schedule"] == "constant":
        return hp["lr"]
    warmup = hp["warmup_epochs"] * steps_per_epoch
    if step < warmup:
        return hp["lr"] * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return hp["lr"] * 0.5 * (1 + math.cos(math.pi * progress))


def autocast(device):
    """bf16 autocast on CUDA; full precision on CPU, where it keeps runs bit-for-bit repeatable."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict(model, split, mean, std, batch_size, device):
    """Logits for every image of ``split``, in order, with the model in eval mode."""
    model.eval()
    outputs = []
    for start in range(0, len(split), batch_size):
        images = to_model_input(split.images[start : start + batch_size], mean, std)
        with autocast(device):
            outputs.append(model(images).float())
    return torch.cat(outputs)


def evaluate(model, split, mean, std, batch_size, device):
    """(mean cross-entropy, accuracy) of ``model`` on ``split``."""
    logits = predict(model, split, mean, std, batch_size, device)
    loss = F.cross_entropy(logits, split.labels).item()  # .item(): one sync per evaluation
    accuracy = (logits.argmax(dim=1) == split.labels).float().mean().item()
    return loss, accuracy


@torch.no_grad()
def dead_unit_fractions(model, probe_images):
    """Per ReLU layer of the CNN, the share of units that are zero for every probe image."""
    relus = {name: module for name, module in model.named_modules() if isinstance(module, nn.ReLU)}
    outputs, hooks = {}, []
    for name, module in relus.items():
        layer = name.removeprefix("relu_").replace("relu", "conv")  # relu2 → conv2, relu_fc1 → fc1
        hooks.append(
            module.register_forward_hook(lambda _m, _i, out, layer=layer: outputs.__setitem__(layer, out))
        )
    model.eval()
    try:
        model(probe_images)
    finally:
        for hook in hooks:
            hook.remove()
    return {f"dead_{layer}": (out == 0).all(dim=0).float().mean().item() for layer, out in outputs.items()}


def gradient_histograms(model, epoch, bins):
    """Histogram rows (epoch, layer, kind, bin_left, bin_right, count) of each layer's weight gradient."""
    rows = []
    for layer, kind, module in tracked_layers(model):
        gradient = module.weight.grad.detach().float().flatten()
        low, high = gradient.min().item(), gradient.max().item()
        if low == high:
            low, high = low - 1e-12, high + 1e-12
        counts = torch.histc(gradient, bins=bins, min=low, max=high).tolist()
        edges = torch.linspace(low, high, bins + 1).tolist()
        rows += [
            {"epoch": epoch, "layer": layer, "kind": kind, "bin_left": edges[i], "bin_right": edges[i + 1],
             "count": int(counts[i])}
            for i in range(bins)
        ]  # fmt: skip
    return rows


def _progress(iterable, total, description):
    """A progress bar when a person watches a terminal; plain iteration in a job's log file."""
    if not sys.stderr.isatty():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, leave=False)


def _save(payload, path):
    with atomic_path(path) as partial:
        torch.save(payload, partial)


def train(model, hp, train_split, val_split, device, outputs, resume_dir, normalization, pretrained=None):
    """Train ``model`` with hyper-parameters ``hp``; write the best checkpoint, history and gradients.

    ``normalization`` is the per-channel (mean, std); ``pretrained`` is recorded for ResNet-18 (None
    for the CNN). ``outputs`` maps checkpoint / history / gradients / summary to paths. A resume
    checkpoint is kept in ``resume_dir`` after every epoch and removed at the end; a rerun with the
    same ``hp`` continues from the last finished epoch. Every epoch reseeds from (seed, epoch), so a
    resumed run on the CPU replays exactly what an uninterrupted one would have done.
    """
    resume_dir = Path(resume_dir)
    on_cuda = device.type == "cuda"
    mean, std = (statistic.to(device) for statistic in normalization)
    model.to(device, memory_format=torch.channels_last)
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    else:
        torch.use_deterministic_algorithms(True)
    forward = torch.compile(model) if hp["compile"] and on_cuda else model
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(
        trainable, lr=hp["lr"], betas=tuple(hp["betas"]), weight_decay=hp["weight_decay"]
    )

    steps_per_epoch = len(train_split) // hp["batch_size"]
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {hp['batch_size']} exceeds the {len(train_split)} training images")
    total_steps = steps_per_epoch * hp["epochs"]
    probe = to_model_input(val_split.images[: hp["probe_size"]], mean, std)

    state = {"epoch": 0, "history": [], "gradients": [], "best_accuracy": -1.0, "best_epoch": 0}
    resume_file, best_file = resume_dir / "last.pt", resume_dir / "best.pt"
    if resume_file.exists():
        saved = torch.load(resume_file, weights_only=False, map_location=device)
        if saved["hyperparameters"] == hp:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            state = saved["state"]
            log.info("resuming after epoch %d from %s", state["epoch"], resume_file)
        else:
            log.info("ignoring %s: it was trained with other hyper-parameters", resume_file)

    epochs_without_improvement = state["epoch"] - state["best_epoch"]
    for epoch in range(state["epoch"] + 1, hp["epochs"] + 1):
        if hp["early_stopping_patience"] and epochs_without_improvement >= hp["early_stopping_patience"]:
            break
        torch.manual_seed(hp["seed"] * 10_000 + epoch)  # dropout masks
        order_generator = seeded_generator(device, hp["seed"], epoch, 0)
        augmentation = {
            "generator": seeded_generator(device, hp["seed"], epoch, 1),
            "jitter": hp["jitter"],
            "augmentation": hp["augmentation"],
        }
        order = torch.randperm(len(train_split), generator=order_generator, device=device)
        record_gradients = epoch in hp["gradient_epochs"]

        model.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for step in _progress(range(steps_per_epoch), steps_per_epoch, f"epoch {epoch}"):
            lr = learning_rate(hp, (epoch - 1) * steps_per_epoch + step, total_steps, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = order[step * hp["batch_size"] : (step + 1) * hp["batch_size"]]
            images = to_model_input(train_split.images[batch], mean, std, **augmentation)
            labels = train_split.labels[batch]
            with autocast(device):
                logits = forward(images)
                loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if record_gradients and step == steps_per_epoch - 1:
                state["gradients"] += gradient_histograms(model, epoch, hp["gradient_bins"])
            optimizer.step()
            loss_sum += loss.detach() * len(batch)  # accumulated on the device: no sync per step
            correct += (logits.argmax(dim=1) == labels).sum()
        if on_cuda:
            torch.cuda.synchronize()  # the clock must see the GPU's work, not just its queue
        train_seconds = time.perf_counter() - started
        seen = steps_per_epoch * hp["batch_size"]

        val_loss, val_accuracy = evaluate(model, val_split, mean, std, hp["eval_batch_size"], device)
        row = {
            "epoch": epoch,
            "train_loss": loss_sum.item() / seen,
            "train_accuracy": correct.item() / seen,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "lr": lr,
            **(dead_unit_fractions(model, probe) if hp["architecture"] == "cnn" else {}),
            "epoch_seconds": time.perf_counter() - started,
            "images_per_second": seen / train_seconds,
        }
        state["history"].append(row)
        if val_accuracy > state["best_accuracy"]:
            state.update(best_accuracy=val_accuracy, best_epoch=epoch)
            _save(model.state_dict(), best_file)
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
        state["epoch"] = epoch
        _save({"hyperparameters": hp, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
               "state": state}, resume_file)  # fmt: skip
        log.info(
            "%s epoch %d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f  lr %.2e  %.1f s  %.0f img/s%s",
            hp["model"], epoch, hp["epochs"], row["train_loss"], row["train_accuracy"], val_loss, val_accuracy,
            lr, row["epoch_seconds"], row["images_per_second"], "  (best)" if state["best_epoch"] == epoch else "",
        )  # fmt: skip

    stopped_early = state["epoch"] < hp["epochs"]
    if stopped_early:
        log.info("early stopping after epoch %d: no better validation accuracy for %d epochs",
                 state["epoch"], hp["early_stopping_patience"])  # fmt: skip
    history = pd.DataFrame(state["history"])
    best = history.loc[history["epoch"] == state["best_epoch"]].iloc[0].to_dict()
    summary = {
        "model": hp["model"],
        "dataset": hp["dataset"],
        "pretrained": pretrained,
        "best_epoch": state["best_epoch"],
        "stopped_epoch": state["epoch"],
        "stopped_early": stopped_early,
        "epochs_configured": hp["epochs"],
        "early_stopping_patience": hp["early_stopping_patience"],
        "best_val_accuracy": state["best_accuracy"],
        "train_seconds": float(history["epoch_seconds"].sum()),
        "environment": environment(device),
        "hyperparameters": hp,
    }
    checkpoint = {
        "model_state": torch.load(best_file, weights_only=True, map_location="cpu"),
        "hyperparameters": hp,
        "epoch": state["best_epoch"],
        "metrics": best,
        "classes": train_split.classes,
        "normalization": {"mean": mean.tolist(), "std": std.tolist()},
        "pretrained": pretrained,
        "environment": summary["environment"],
    }
    _save(checkpoint, outputs["checkpoint"])
    with atomic_path(outputs["history"]) as partial:
        history.to_csv(partial, index=False)
    with atomic_path(outputs["gradients"]) as partial:
        columns = ["epoch", "layer", "kind", "bin_left", "bin_right", "count"]
        pd.DataFrame(state["gradients"], columns=columns).to_csv(partial, index=False)
    with atomic_path(outputs["summary"]) as partial:
        partial.write_text(json.dumps(summary, indent=2) + "\n")
    resume_file.unlink()
    best_file.unlink()
    return history, summary
