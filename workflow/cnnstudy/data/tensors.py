"""Prepared tensors kept on the training device, sliced into batches and augmented there.

The airbench recipe: decode once (``prepare.py``), hold uint8 images where the compute is, and do
flips and colour jitter as batched tensor operations. No DataLoader, no per-epoch JPEG decoding.
"""

import hashlib
from dataclasses import dataclass, field

import torch

from ..base.jobs import StudyError


@dataclass
class Split:
    images: torch.Tensor  # uint8, N×3×S×S, on the training device
    labels: torch.Tensor  # int64, N
    files: list
    classes: list
    sha256: str = ""  # of the tensor file: which data a result came from
    source: dict = field(default_factory=dict)  # the archive it was decoded from: name, md5, image size

    def __len__(self):
        return len(self.labels)


def file_sha256(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def load_split(path, device):
    """A prepared split on ``device``, with the hash of its file (results record which data they used)."""
    try:
        stored = torch.load(path, weights_only=True, mmap=True)
    except Exception as error:  # a truncated or foreign file: torch raises several types
        raise StudyError(
            f"cannot read the prepared tensors {path}: {error}. Delete the file and rerun; Snakemake "
            "prepares it again."
        ) from error
    return Split(
        stored["images"].to(device),
        stored["labels"].to(device),
        stored["files"],
        stored["classes"],
        sha256=file_sha256(path),
        source=stored.get("source", {}),
    )


def seeded_generator(device, *seed_parts):
    """A generator that depends only on ``seed_parts``, so a resumed epoch replays exactly."""
    seed = 0
    for part in seed_parts:
        seed = seed * 1_000_003 + int(part)
    return torch.Generator(device=device).manual_seed(seed % 2**63)


def _blend(images, other, factor):
    return (factor * images + (1 - factor) * other).clamp_(0, 1)


def _grayscale(images):
    red, green, blue = images.unbind(dim=1)
    return (0.299 * red + 0.587 * green + 0.114 * blue).unsqueeze(1)


def augment(images, generator, jitter):
    """Per-image random horizontal flip, then brightness, contrast and saturation jitter in random order.

    ``images`` are floats in [0, 1]; each factor is drawn per image from [1 - jitter, 1 + jitter], the
    order once per batch (torchvision's ColorJitter draws it once per call).
    """
    count, device = images.shape[0], images.device
    flip = torch.rand(count, generator=generator, device=device) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if jitter <= 0:
        return images
    factors = 1 + jitter * (2 * torch.rand(3, count, 1, 1, 1, generator=generator, device=device) - 1)
    for transform in torch.randperm(3, generator=generator, device=device).tolist():
        if transform == 0:  # brightness: blend with black
            images = (images * factors[0]).clamp_(0, 1)
        elif transform == 1:  # contrast: blend with the image's mean grey level
            images = _blend(images, _grayscale(images).mean(dim=(1, 2, 3), keepdim=True), factors[1])
        else:  # saturation: blend with the image's grey version
            images = _blend(images, _grayscale(images), factors[2])
    return images


def to_model_input(images, mean, std, generator=None, jitter=0.0, augmentation=False):
    """uint8 images → normalised float input; augmentation (training batches only) happens before normalising.

    The result is channels-last, the layout the models are kept in: oneDNN's and cuDNN's convolutions
    run faster on it (measured on 2 CPU cores: about 1.5× for the demo's CNN).
    """
    images = images.float().div_(255)
    if augmentation:
        images = augment(images, generator, jitter)
    images = (images - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    return images.contiguous(memory_format=torch.channels_last)
