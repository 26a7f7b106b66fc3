"""How long a plan's training would take on this machine's CPU, said before any job runs.

On a machine without a GPU, ``device: auto`` falls back to the CPU, where the study's 160 px CNN trains at
about half an image per second on 2 cores: some 250 hours per variant. The main Snakemake process calls
``cpu_training_estimate`` (from the Snakefile's ``onstart``) with the hyper-parameters of every training
job it is about to run. The rate is measured, not assumed: one training step (forward and backward) of
each planned architecture on a small batch, timed after a warm-up step, takes a few seconds for the
study's CNN. It is a floor: full batches (more activation memory traffic) and the optimizer step (Adam
over 211 M weights) make a real epoch slower per image, so the message says "at least". A small benchmark kernel would not do: it runs near the CPU's peak, while the CNN's 205 M
FC1 weights make its step memory-bound, ten times slower per FLOP. The counted FLOPs say what the rate
means (GFLOP/s).
"""

import json
import time

import torch

from .measurements import training_flops_per_image
from .models import build_model

IMAGENETTE_TRAINING_IMAGES = 9469  # Imagenette's train folder, before the validation split
STOP_ABOVE_HOURS = 1.0  # longer plans stop and ask for `device: cpu`; shorter ones go ahead


def _architecture(hp):
    """What decides a training step's speed: runs that differ only in these share one measurement."""
    keys = ("architecture", "mode", "image_size", "channels", "kernel_size", "fc_hidden", "batchnorm")
    return json.dumps({key: hp.get(key) for key in keys}, sort_keys=True)


def images_per_second(hp, batch=4):
    """Training images per second of the model ``hp`` describes, measured on this CPU: one forward and
    backward step on ``batch`` random images, after one warm-up step (allocations, kernel choices)."""
    model = build_model(hp, 10).train()
    images = torch.randn(batch, 3, hp["image_size"], hp["image_size"])
    model(images).sum().backward()  # warm-up
    started = time.perf_counter()
    model(images).sum().backward()
    return batch / (time.perf_counter() - started)


def cpu_training_estimate(hyperparameters, training_images=None, rates=None):
    """(hours, message) for training ``hyperparameters`` (one dict per job) on this CPU.

    ``training_images``: the prepared training split's size when known, else Imagenette's. ``rates``:
    images per second by ``_architecture`` (measured here when not given).
    """
    assumed = training_images is None
    training_images = training_images or round(IMAGENETTE_TRAINING_IMAGES * 0.8)
    rates = dict(rates or {})
    for hp in hyperparameters:
        if _architecture(hp) not in rates:
            rates[_architecture(hp)] = images_per_second(hp)
    hours = sum(hp["epochs"] * training_images / rates[_architecture(hp)] / 3600 for hp in hyperparameters)
    slowest = min(hyperparameters, key=lambda hp: rates[_architecture(hp)])
    flops = training_flops_per_image(lambda: build_model(slowest, 10), slowest["image_size"])
    rate = rates[_architecture(slowest)]
    sizes = sorted({hp["image_size"] for hp in hyperparameters})
    source = " (Imagenette's, less the validation split)" if assumed else ""
    message = (
        f"this plan trains {len(hyperparameters)} model(s) at {'/'.join(map(str, sizes))} px on the CPU (no "
        f"CUDA device is visible, and `device: auto` falls back to the CPU): at least {hours:,.0f} hours "
        f"({hours / 24:,.1f} days) for {training_images:,} training images{source} × epochs, at the rates one "
        f"small-batch training step of each model took here just now (a floor: full batches and the optimizer "
        f"step are slower per image on a CPU; the slowest, {slowest['model']}: {rate:.2g} "
        f"images/s, {rate * flops / 1e9:.0f} GFLOP/s of its counted {flops / 1e9:.1f} GFLOP per image). To go "
        "ahead on the CPU anyway, set `device: cpu` in the config; to use GPUs, run on a GPU machine or a "
        "cluster (`--profile profiles/slurm`); to see the whole study work in minutes, `make demo`."
    )
    return hours, message
