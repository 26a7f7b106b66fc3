"""Grad-CAM (Selvaraju et al. 2017): where in an image a trained model found the evidence for a class.

The map of a class is the ReLU of the block's activation maps weighted by the mean gradient of the class
score over each map, upsampled to the image. It is computed from the last conv block whose map is at
least ``MIN_SIDE`` × ``MIN_SIDE`` (``gradcam_layer``): ResNet-18's layer4 is 1×1 at 32 px, so a smaller
image is explained by an earlier block, which is what the figure's title says.

Only the activation is differentiated: a forward hook replaces the block's output by a leaf that
requires a gradient, and every parameter is set not to, so ``torch.autograd.grad`` allocates no parameter
gradients (the study's FC1 alone has 205 M weights) and nothing before the block keeps a graph.
"""

import contextlib
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..base.memory import saliency_chunk_size
from ..data.tensors import to_model_input
from ..train.models import TransferResNet18

MIN_SIDE = 4  # a coarser map says little more than "the object is somewhere"


class GradCamLayer(NamedTuple):
    name: str
    module: torch.nn.Module
    map_shape: tuple  # (height, width) of the activation explained


class Saliency(NamedTuple):
    maps: torch.Tensor  # float32, N × image height × image width, each map scaled to [0, 1]
    probabilities: torch.Tensor  # N × classes, the model's softmax output
    layer: str
    map_shape: tuple


def conv_blocks(model):
    """(name, module) of every conv block's output, first to last: ResNet-18's layer1–4, or each
    ``relu<k>`` of the custom CNN (its block's activation, before pooling)."""
    if isinstance(model, TransferResNet18):
        return [(name, getattr(model.net, name)) for name in ("layer1", "layer2", "layer3", "layer4")]
    blocks = [
        (name, module)
        for name, module in model.named_children()
        if name.startswith("relu") and name.removeprefix("relu").isdigit()
    ]
    if not blocks:
        raise ValueError(f"no conv blocks found in {type(model).__name__}")
    return blocks


@torch.no_grad()
def gradcam_layer(model, image_shape, device="cpu"):
    """The last conv block whose map is at least MIN_SIDE on both sides (else the first block)."""
    blocks = conv_blocks(model)
    shapes = {}

    def record_shape(name):
        def hook(_module, _inputs, output):
            shapes[name] = tuple(output.shape)  # returns None: the output is left as it is

        return hook

    handles = [module.register_forward_hook(record_shape(name)) for name, module in blocks]
    try:
        model.eval()
        model(torch.zeros((1, *image_shape), device=device))
    finally:
        for handle in handles:
            handle.remove()
    chosen = next(
        ((name, module) for name, module in reversed(blocks) if min(shapes[name][-2:]) >= MIN_SIDE),
        blocks[0],
    )
    return GradCamLayer(*chosen, tuple(shapes[chosen[0]][-2:]))


@contextlib.contextmanager
def _frozen(model):
    """Parameters that require no gradient for the block's duration; their flags are put back after."""
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def _class_maps(model, layer, batch, class_sets):
    """(one N×h×w map per list of target classes, logits): one forward pass, one gradient per list."""
    captured = {}

    def as_leaf(_module, _inputs, output):
        captured["activation"] = output.detach().requires_grad_(True)
        return captured["activation"]

    handle = layer.register_forward_hook(as_leaf)
    try:
        with torch.enable_grad():
            logits = model(batch)
    finally:
        handle.remove()
    activation = captured["activation"]
    maps = []
    for index, classes in enumerate(class_sets):
        score = logits.gather(1, classes[:, None]).sum()  # eval mode: each image's score is its own
        (gradient,) = torch.autograd.grad(score, activation, retain_graph=index < len(class_sets) - 1)
        weights = gradient.mean(dim=(2, 3), keepdim=True)
        maps.append(F.relu((weights * activation.detach()).sum(dim=1)))
    return maps, logits.detach()


def _upsampled(maps, size):
    """Each map bilinearly resized to the image and scaled to [0, 1] (an all-zero map stays zero)."""
    resized = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    peaks = resized.flatten(1).amax(dim=1).clamp_min(torch.finfo(resized.dtype).tiny)
    return (resized / peaks[:, None, None]).float().cpu()


def gradcam(model, images, mean, std, targets=None, chunk_size=None, device="cpu"):
    """Grad-CAM of uint8 ``images`` for each image's predicted class, and for ``targets`` (a class per
    image, e.g. the true one) when given: (Saliency for the predicted class, Saliency for targets or
    None). Memory-bounded chunks; the model is left in eval mode with its ``requires_grad`` flags."""
    model.eval()
    image_shape = tuple(images.shape[1:])
    layer = gradcam_layer(model, image_shape, device)
    if chunk_size is None:
        chunk_size = saliency_chunk_size(model, image_shape, len(images), device)
    predicted_maps, target_maps, probabilities = [], [], []
    with _frozen(model):
        for start in range(0, len(images), chunk_size):
            batch = to_model_input(images[start : start + chunk_size].to(device), mean, std)
            with torch.no_grad():
                predicted = model(batch).argmax(dim=1)
            class_sets = [predicted]
            if targets is not None:
                class_sets.append(targets[start : start + chunk_size].to(device))
            maps, logits = _class_maps(model, layer.module, batch, class_sets)
            predicted_maps.append(_upsampled(maps[0], image_shape[1:]))
            if targets is not None:
                target_maps.append(_upsampled(maps[1], image_shape[1:]))
            probabilities.append(logits.float().softmax(dim=1).cpu())
    probabilities = torch.cat(probabilities)

    def saliency(maps):
        return Saliency(torch.cat(maps), probabilities, layer.name, layer.map_shape)

    return saliency(predicted_maps), (saliency(target_maps) if targets is not None else None)


def stratified_images(labels, files, per_class=1, classes=None):
    """Indices of a fixed test-image set: the first ``per_class`` images of each class in file-name order
    (of the first ``classes`` classes), class by class. The same for every model, and for every run on
    the same data, since it depends on the files only."""
    order = sorted(range(len(files)), key=lambda index: files[index])
    chosen = []
    for label in range(int(labels.max()) + 1 if len(labels) else 0)[:classes]:
        chosen += [index for index in order if int(labels[index]) == label][:per_class]
    return chosen
