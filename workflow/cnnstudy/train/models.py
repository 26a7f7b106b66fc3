"""The study's custom CNN in all five configurations, and ResNet-18 for transfer learning."""

from collections import OrderedDict

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_cnn(
    image_size,
    channels,
    kernel_size,
    fc_hidden,
    num_classes,
    batchnorm=False,
    dropout_conv=0.0,
    dropout_fc=0.0,
):
    """Conv blocks (conv · [BN] · ReLU · max-pool · [dropout]), FC1 · [BN] · ReLU · [dropout], FC2.

    With channels (128, 256, 512), 3×3 kernels and image_size 160 this is the study's 3→128→256→512
    network with a 512·20·20→1024 FC1 (211,205,386 parameters for the baseline).
    """
    pooling = 2 ** len(channels)
    if image_size % pooling:
        raise ValueError(
            f"image_size must be divisible by {pooling} ({len(channels)} 2×2 poolings), got {image_size}"
        )
    layers = []
    widths = [3, *channels]
    for block in range(1, len(channels) + 1):
        conv = nn.Conv2d(widths[block - 1], widths[block], kernel_size, padding=kernel_size // 2)
        layers.append((f"conv{block}", conv))
        if batchnorm:
            layers.append((f"bn{block}", nn.BatchNorm2d(widths[block])))
        layers.append((f"relu{block}", nn.ReLU()))
        layers.append((f"pool{block}", nn.MaxPool2d(2)))
        if dropout_conv:
            layers.append((f"dropout{block}", nn.Dropout(dropout_conv)))
    side = image_size // pooling
    layers += [("flatten", nn.Flatten()), ("fc1", nn.Linear(widths[-1] * side * side, fc_hidden))]
    if batchnorm:
        layers.append(("bn_fc1", nn.BatchNorm1d(fc_hidden)))
    layers.append(("relu_fc1", nn.ReLU()))
    if dropout_fc:
        layers.append(("dropout_fc1", nn.Dropout(dropout_fc)))
    layers.append(("fc2", nn.Linear(fc_hidden, num_classes)))
    return nn.Sequential(OrderedDict(layers))


class TransferResNet18(nn.Module):
    """torchvision's ResNet-18 with a new 512→``num_classes`` head and a fine-tuning mode.

    ``bn_frozen``: only the head learns; every BatchNorm stays in eval mode, also in ``train()``.
    ``bn_unfrozen``: convolutions frozen; BatchNorm affine parameters and running statistics learn.
    ``full``: every layer learns.
    """

    MODES = ("bn_frozen", "bn_unfrozen", "full")

    def __init__(self, mode, num_classes, state_dict=None):
        from torchvision.models import resnet18

        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"unknown fine-tuning mode {mode!r}; choose one of {self.MODES}")
        self.mode = mode
        self.net = resnet18()
        if state_dict is not None:
            self.net.load_state_dict(state_dict)
        self.net.fc = nn.Linear(self.net.fc.in_features, num_classes)
        for name, parameter in self.net.named_parameters():
            is_head = name.startswith("fc.")
            is_batchnorm = isinstance(self.net.get_submodule(name.rsplit(".", 1)[0]), nn.BatchNorm2d)
            parameter.requires_grad_(is_head or mode == "full" or (mode == "bn_unfrozen" and is_batchnorm))

    def train(self, mode=True):
        super().train(mode)
        if self.mode == "bn_frozen":
            for module in self.net.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def forward(self, images):
        return self.net(images)


def build_model(hyperparameters, num_classes, pretrained_state=None):
    """The model a hyper-parameter dict describes (checkpoints rebuild their model this way).

    Initial weights depend only on the dict's seed, whatever ran before in the process.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(hyperparameters["seed"])
        return _build(hyperparameters, num_classes, pretrained_state)


def _build(hyperparameters, num_classes, pretrained_state):
    if hyperparameters["architecture"] == "cnn":
        return build_cnn(
            hyperparameters["image_size"],
            hyperparameters["channels"],
            hyperparameters["kernel_size"],
            hyperparameters["fc_hidden"],
            num_classes,
            batchnorm=hyperparameters["batchnorm"],
            dropout_conv=hyperparameters["dropout_conv"],
            dropout_fc=hyperparameters["dropout_fc"],
        )
    return TransferResNet18(hyperparameters["mode"], num_classes, pretrained_state)


def count_parameters(model, trainable_only=False):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def tracked_layers(model):
    """(name, module) of every conv, BatchNorm and linear layer with trainable weights: the gradient figures."""
    kinds = {nn.Conv2d: "conv", nn.BatchNorm1d: "batchnorm", nn.BatchNorm2d: "batchnorm", nn.Linear: "linear"}
    for name, module in model.named_modules():
        kind = kinds.get(type(module))
        if kind and module.weight is not None and module.weight.requires_grad:
            yield name.removeprefix("net."), kind, module


def normalization(hyperparameters, train_images, chunk=1024):
    """Per-channel (mean, std) in [0, 1] units: the training split's, or ImageNet's for ResNet.

    Summed chunk by chunk in float64, so a GPU-resident dataset never needs a full float copy.
    """
    if hyperparameters["normalization"] == "imagenet":
        return torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    total = torch.zeros(3, dtype=torch.float64, device=train_images.device)
    squares = torch.zeros_like(total)
    for start in range(0, len(train_images), chunk):
        pixels = train_images[start : start + chunk].double().div_(255)
        total += pixels.sum(dim=(0, 2, 3))
        squares += pixels.square().sum(dim=(0, 2, 3))
    count = train_images.numel() / 3
    mean = total / count
    std = ((squares - count * mean.square()) / (count - 1)).sqrt()
    return mean.float().cpu(), std.float().cpu()
