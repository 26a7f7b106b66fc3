"""A small offline stand-in for Imagenette: same archive layout, generated from a seed.

Each class is a pair (shape, palette): five shapes times two palettes, so neither cue alone tells the
ten classes apart. Position, size, rotation, hue and a textured background vary per image, so a
small CNN learns the classes but not perfectly. Same seed and Pillow version, same archive bytes:
the demo profile pins its md5.
"""

import gzip
import io
import tarfile

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..base.files import atomic_path
from .classes import IMAGENETTE_WNIDS

SHAPES = ("disc", "square", "triangle", "cross", "ring")
PALETTES = ((0.02, 0.12), (0.55, 0.70))  # hue ranges: warm reds/oranges, cool blues/cyans


def _hsv_to_rgb(hue, saturation, value):
    pixel = Image.new("HSV", (1, 1), (int(hue * 255) % 256, int(saturation * 255), int(value * 255)))
    return pixel.convert("RGB").getpixel((0, 0))


def draw_image(class_index, rng, image_px=(48, 96)):
    """One RGB image of class ``class_index`` (0-9), each side a random size within ``image_px``."""
    width, height = (int(v) for v in rng.integers(image_px[0], image_px[1] + 1, size=2))
    noise = rng.normal(0.5, 0.18, size=(height // 4 + 1, width // 4 + 1, 3)).clip(0, 1)
    background = Image.fromarray((noise * 255).astype(np.uint8)).resize((width, height), Image.BILINEAR)
    background = background.filter(ImageFilter.GaussianBlur(1.0))

    shape = SHAPES[class_index % len(SHAPES)]
    low, high = PALETTES[class_index // len(SHAPES)]
    colour = _hsv_to_rgb(rng.uniform(low, high), rng.uniform(0.45, 1.0), rng.uniform(0.45, 1.0))

    size = rng.uniform(0.35, 0.65) * min(width, height)
    centre_x = rng.uniform(size / 2, width - size / 2)
    centre_y = rng.uniform(size / 2, height - size / 2)
    layer = Image.new("L", (width, height), 0)
    pen = ImageDraw.Draw(layer)
    left, top, right, bottom = (
        centre_x - size / 2,
        centre_y - size / 2,
        centre_x + size / 2,
        centre_y + size / 2,
    )
    if shape == "disc":
        pen.ellipse((left, top, right, bottom), fill=255)
    elif shape == "square":
        pen.rectangle((left, top, right, bottom), fill=255)
    elif shape == "triangle":
        pen.polygon([(centre_x, top), (right, bottom), (left, bottom)], fill=255)
    elif shape == "cross":
        bar = size / 6
        pen.rectangle((left, centre_y - bar, right, centre_y + bar), fill=255)
        pen.rectangle((centre_x - bar, top, centre_x + bar, bottom), fill=255)
    else:  # ring
        pen.ellipse((left, top, right, bottom), outline=255, width=max(2, int(size / 7)))
    layer = layer.rotate(float(rng.uniform(-40, 40)), center=(centre_x, centre_y), resample=Image.BILINEAR)
    return Image.composite(Image.new("RGB", (width, height), colour), background, layer)


def _add_bytes(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def _add_folder(tar, name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def write_demo_archive(
    path, name="imagenette-demo", seed=0, train_per_class=60, val_per_class=20, image_px=(48, 96)
):
    """Write ``name/{train,val}/<wnid>/*.JPEG`` as a gzipped tar at ``path``, byte-for-byte reproducible.

    ``image_px``: the range of each image side, px (the full-size smoke test draws 160 px and larger).
    """
    rng = np.random.default_rng(seed)
    with atomic_path(path) as partial, open(partial, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
            with tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                _add_folder(tar, name)
                for split, count in (("train", train_per_class), ("val", val_per_class)):
                    _add_folder(tar, f"{name}/{split}")
                    for class_index, wnid in enumerate(IMAGENETTE_WNIDS):
                        _add_folder(tar, f"{name}/{split}/{wnid}")
                        for number in range(count):
                            buffer = io.BytesIO()
                            draw_image(class_index, rng, image_px).save(buffer, "JPEG", quality=90)
                            _add_bytes(
                                tar, f"{name}/{split}/{wnid}/{wnid}_{number:05d}.JPEG", buffer.getvalue()
                            )
    return path
