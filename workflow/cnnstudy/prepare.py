"""Decode every image once into uint8 tensors: the only place JPEGs are read."""

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from sklearn.model_selection import train_test_split
from torchvision.transforms import functional as TF

from .classes import class_name
from .files import atomic_path

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}


class CorruptImageError(RuntimeError):
    pass


def list_images(dataset_dir):
    """Manifest rows for every image: Imagenette's ``val`` folder is our test split."""
    dataset_dir = Path(dataset_dir)
    wnids = sorted(p.name for p in (dataset_dir / "train").iterdir() if p.is_dir())
    rows = []
    for folder, split in (("train", "train"), ("val", "test")):
        for label, wnid in enumerate(wnids):
            for path in sorted((dataset_dir / folder / wnid).iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    rows.append(
                        {
                            "file": path.relative_to(dataset_dir).as_posix(),
                            "wnid": wnid,
                            "class_name": class_name(wnid),
                            "label": label,
                            "split": split,
                        }
                    )
    if not rows:
        raise FileNotFoundError(f"no images under {dataset_dir}/train/<wnid>/ and {dataset_dir}/val/<wnid>/")
    return pd.DataFrame(rows)


def split_validation(manifest, fraction, seed):
    """Move a stratified, seeded share of the training images into the validation split."""
    train = manifest.index[manifest["split"] == "train"]
    _, validation = train_test_split(
        train, test_size=fraction, stratify=manifest.loc[train, "label"], random_state=seed
    )
    manifest = manifest.copy()
    manifest.loc[validation, "split"] = "val"
    return manifest


def load_image(path, size):
    """Shorter side resized to ``size``, then centre-cropped to ``size``×``size``; CHW uint8."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image = TF.center_crop(TF.resize(image, size, antialias=True), [size, size])
    except Exception as error:  # PIL raises many types for a damaged file
        raise CorruptImageError(f"cannot decode image {path}: {error}") from error
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def prepare(dataset_dir, output_dir, image_size, validation_fraction, seed, skip_corrupt, threads):
    """Write ``{train,val,test}.pt`` (images uint8 N×3×S×S, labels) and ``manifest.csv``."""
    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    manifest = split_validation(list_images(dataset_dir), validation_fraction, seed)

    def decode(file):
        try:
            return load_image(dataset_dir / file, image_size)
        except CorruptImageError:
            if not skip_corrupt:
                raise
            log.warning("skipping unreadable image %s", file)
            return None

    log.info("decoding %d images with %d threads", len(manifest), threads)
    images = []
    with ThreadPoolExecutor(max_workers=threads) as pool:  # PIL releases the GIL while decoding
        for image in pool.map(decode, manifest["file"]):
            images.append(image)
            if len(images) % 2000 == 0:
                log.info("decoded %d of %d images", len(images), len(manifest))
    manifest["skipped"] = [image is None for image in images]

    classes = sorted(manifest["wnid"].unique())
    for split in SPLITS:
        rows = manifest.index[(manifest["split"] == split) & ~manifest["skipped"]]
        tensors = {
            "images": torch.stack([images[i] for i in rows]),
            "labels": torch.tensor(manifest.loc[rows, "label"].to_numpy(), dtype=torch.long),
            "files": manifest.loc[rows, "file"].tolist(),
            "classes": [class_name(wnid) for wnid in classes],
            "wnids": classes,
        }
        with atomic_path(output_dir / f"{split}.pt") as partial:
            torch.save(tensors, partial)
        log.info("%s: %d images", split, len(rows))
    with atomic_path(output_dir / "manifest.csv") as partial:
        manifest.drop(columns="label").to_csv(partial, index=False)
    skipped = int(manifest["skipped"].sum())
    if skipped:
        log.warning("%d unreadable images skipped; listed with skipped=True in manifest.csv", skipped)
    return manifest
