"""What training measures besides loss and accuracy: dead ReLU units, weight-gradient histograms, FLOPs.

Each measurement has one definition, stated in its docstring and in the figure that shows it:

- A **dead unit** is a ReLU unit that outputs zero for every image of a fixed, class-stratified probe:
  for a conv layer the unit is a channel (zero at every position of every probe image), for FC1 a neuron.
- A **gradient histogram** counts a layer's weight gradients in fixed log-scale bins of |g|, per sign,
  shared by every epoch and every layer, plus the counts below and above the binned range, so that
  histograms of different epochs can be laid over each other. Raw gradients are never stored.
"""

import math

import numpy as np
import torch
from torch import nn

from ..data.tensors import to_model_input
from .models import tracked_layers

GRADIENT_CHUNK = 1 << 24  # elements binned at a time: FC1's 210 M gradients would need GBs in one go


def probe_indices(labels, size, seed=0):
    """``size`` indices into ``labels``, as evenly spread over the classes as their counts allow.

    Classes take turns (round robin) in a seeded order of their own images, so a small probe still
    sees every class; a fixed seed gives every model and every epoch the same probe images.
    """
    labels = torch.as_tensor(labels).cpu()
    if size > len(labels):
        raise ValueError(f"probe of {size} images asked for, but the validation split has {len(labels)}")
    generator = torch.Generator().manual_seed(seed)
    queues = []
    for label in sorted(labels.unique().tolist()):
        members = torch.nonzero(labels == label).flatten()
        queues.append(members[torch.randperm(len(members), generator=generator)].tolist())
    chosen = []
    for turn in range(max(len(queue) for queue in queues)):
        chosen += [queue[turn] for queue in queues if turn < len(queue)]
    return sorted(chosen[:size])


def _relu_layers(model):
    """ReLU module → the name of the layer it follows (relu2 → conv2, relu_fc1 → fc1)."""
    return {
        module: name.removeprefix("relu_").replace("relu", "conv")
        for name, module in model.named_modules()
        if isinstance(module, nn.ReLU)
    }


@torch.no_grad()
def dead_unit_fractions(model, probe_images, mean, std, chunk_size):
    """Per ReLU layer, the share of units (channels; neurons after FC1) silent on every probe image.

    ``probe_images`` are uint8; they go through the model ``chunk_size`` at a time, and a unit counts as
    alive once it fires anywhere, so the chunk size cannot change the answer.
    """
    fired = {}

    def record(module, _inputs, output):
        layer = layers[module]
        reduce = (0, 2, 3) if output.dim() == 4 else (0,)  # conv: any image, any position; FC: any image
        alive = (output > 0).any(dim=reduce)
        fired[layer] = alive if layer not in fired else fired[layer] | alive

    layers = _relu_layers(model)
    hooks = [module.register_forward_hook(record) for module in layers]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(probe_images), chunk_size):
            model(to_model_input(probe_images[start : start + chunk_size], mean, std))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return {f"dead_{layer}": 1.0 - alive.float().mean().item() for layer, alive in fired.items()}


def gradient_bin_edges(gradient_range, bins_per_decade):
    """log10 |g| edges of the binned range, the same for every layer and epoch."""
    low, high = (math.log10(value) for value in gradient_range)
    count = max(1, round((high - low) * bins_per_decade))
    return np.linspace(low, high, count + 1)


def bin_labels(log_edges):
    """(low, high) gradient values of every bin, most negative first: below −range, the binned negative
    bins, |g| under the range's lower end (zero included), the positive bins, above the range."""
    magnitudes = (10.0**log_edges).tolist()  # plain floats: resume states hold no numpy objects
    negative = [(-magnitudes[i + 1], -magnitudes[i]) for i in reversed(range(len(magnitudes) - 1))]
    positive = [(magnitudes[i], magnitudes[i + 1]) for i in range(len(magnitudes) - 1)]
    low, high = magnitudes[0], magnitudes[-1]
    return [(-math.inf, -high), *negative, (-low, low), *positive, (high, math.inf)]


def _bin_index(values, boundaries, bins):
    """Index into ``bin_labels`` order for each gradient value."""
    magnitude = values.abs().clamp_min(torch.finfo(values.dtype).tiny).log10()
    slot = torch.bucketize(magnitude, boundaries)  # 0: under the range, 1..bins: inside, bins+1: above
    negative = values < 0
    middle = bins + 1  # the bin of |g| under the range
    return torch.where(negative, middle - slot, middle + slot)  # zero lands in the middle bin


def gradient_histograms(model, epoch, log_edges):
    """Rows (epoch, layer, kind, bin, low, high, count) of every tracked layer's weight gradient."""
    labels = bin_labels(log_edges)
    bins = len(log_edges) - 1
    rows = []
    for layer, kind, module in tracked_layers(model):
        gradient = module.weight.grad.detach().flatten()
        boundaries = torch.as_tensor(log_edges, dtype=torch.float32, device=gradient.device)
        counts = torch.zeros(len(labels), dtype=torch.long, device=gradient.device)
        for start in range(0, gradient.numel(), GRADIENT_CHUNK):
            chunk = gradient[start : start + GRADIENT_CHUNK].float()
            counts += torch.bincount(_bin_index(chunk, boundaries, bins), minlength=len(labels))
        rows += [
            {"epoch": epoch, "layer": layer, "kind": kind, "bin": i, "low": low, "high": high, "count": count}
            for i, ((low, high), count) in enumerate(zip(labels, counts.tolist(), strict=True))
        ]
    return rows


def training_flops_per_image(build, image_size):
    """Forward + backward FLOPs of one training image, counted by torch.utils.flop_counter.

    ``build`` makes the model; it is built on the meta device, so nothing is computed or allocated.
    Two images, because BatchNorm refuses a batch of one in training mode.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build().train()
        images = torch.zeros(2, 3, image_size, image_size)
    with FlopCounterMode(display=False) as counter:
        model(images).sum().backward()
    return counter.get_total_flops() / 2
