"""Decode every image once into uint8 tensors: the only place JPEGs are read.

Everything that can be known from file names is checked before the first image is decoded: the class
folders, the split sizes, and what the training settings need from them.
"""

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from sklearn.model_selection import train_test_split
from torchvision.transforms import functional as TF

from ..base.files import atomic_path
from ..base.jobs import StudyError
from .classes import DATASET_FAMILIES, class_name

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
SPLIT_COUNTS = "split_counts.json"  # read when the workflow is parsed (base/settings.py): no torch there


class CorruptImageError(StudyError):
    pass


class DatasetError(StudyError):
    """The unpacked dataset or the split settings cannot give the splits the study needs."""


def _images_in(folder):
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)


def _class_folders(split_dir):
    return {path.name: path for path in split_dir.iterdir() if path.is_dir()} if split_dir.is_dir() else {}


def _expected_classes(found):
    """The known dataset (Imagenette, Imagewoof) the folders belong to, or None for another dataset."""
    family, wnids = max(DATASET_FAMILIES.items(), key=lambda item: len(found & set(item[1])))
    return (family, wnids) if found & set(wnids) else (None, sorted(found))


def check_layout(dataset_dir):
    """The class wnids, in label order, once ``train/`` and ``val/`` hold the same, non-empty classes.

    Raises one DatasetError listing every problem: a missing or unknown class folder, a class in one
    split only, a class without images.
    """
    dataset_dir = Path(dataset_dir)
    folders = {split: _class_folders(dataset_dir / split) for split in ("train", "val")}
    family, expected = _expected_classes(set(folders["train"]) | set(folders["val"]))
    problems = []
    for split, found in folders.items():
        if not (dataset_dir / split).is_dir():
            problems.append(f"no {split}/ folder")
            continue
        for wnid in expected:
            if wnid not in found:
                problems.append(f"{split}/{wnid} ({class_name(wnid)}) is missing")
            elif not _images_in(found[wnid]):
                problems.append(f"{split}/{wnid} ({class_name(wnid)}) holds no images (.jpeg, .jpg, .png)")
        unknown = sorted(set(found) - set(expected))
        problems += [f"{split}/{name} is not a class of {family}" for name in unknown]
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        what = f"the {len(expected)} classes of {family}" if family else "the same classes in train/ and val/"
        raise DatasetError(
            f"{dataset_dir} does not have the expected layout, {{train,val}}/<wnid>/ with {what}:\n{listing}\n"
            "Check dataset.url, dataset.md5 and dataset.name; delete the folder to unpack the archive again."
        )
    return list(expected)


def list_images(dataset_dir, wnids):
    """Manifest rows for every image: Imagenette's ``val`` folder is our test split."""
    dataset_dir = Path(dataset_dir)
    rows = []
    for folder, split in (("train", "train"), ("val", "test")):
        for label, wnid in enumerate(wnids):
            for path in _images_in(dataset_dir / folder / wnid):
                rows.append(
                    {
                        "file": path.relative_to(dataset_dir).as_posix(),
                        "wnid": wnid,
                        "class_name": class_name(wnid),
                        "label": label,
                        "split": split,
                    }
                )
    return pd.DataFrame(rows)


def check_split_sizes(manifest, fraction, needs):
    """Raise a DatasetError, naming the keys and the counts, when the split cannot serve ``needs``.

    ``needs`` maps a config key to the images it requires: a ``…batch_size`` key from the training split
    (``training.batch_size``: the largest any model uses), a ``…probe_size`` key from the validation
    split (``cnn.probe_size``). Once the data are prepared, the workflow checks every model's own key
    when it is parsed (``base.settings.validate_split_sizes``).
    """
    train_counts = manifest[manifest["split"] == "train"].groupby("wnid").size()
    total, classes = int(train_counts.sum()), len(train_counts)
    validation = math.ceil(fraction * total)  # how scikit-learn sizes the held-out part
    training = total - validation
    counts = (
        f"Imagenette's train/ folder holds {total} images in {classes} classes; "
        f"dataset.validation_fraction {fraction} keeps {training} for training and {validation} for validation"
    )
    problems = []
    if train_counts.min() < 2:
        problems.append(
            f"class {train_counts.idxmin()} has {train_counts.min()} training image; a split needs 2"
        )
    if validation < classes or training < classes:
        problems.append("each split needs at least one image per class: change dataset.validation_fraction")
    for key, images in needs.items():  # a batch takes training images, the dead-unit probe validation ones
        if key.endswith("batch_size") and training < images:
            problems.append(
                f"{key} {images} exceeds the {training} training images: lower dataset.validation_fraction "
                f"or {key}"
            )
        elif key.endswith("probe_size") and validation < images:
            problems.append(
                f"{key} {images} exceeds the {validation} validation images: lower {key} or raise "
                "dataset.validation_fraction"
            )
    if problems:
        raise DatasetError(counts + ":\n" + "\n".join(f"  - {problem}" for problem in problems))
    log.info("%s", counts)


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
        raise CorruptImageError(
            f"cannot decode image {path}: {error}. Replace the file, or set dataset.skip_corrupt: true "
            "to leave unreadable images out (they are listed in manifest.csv)."
        ) from error
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def _decode_all(dataset_dir, files, image_size, skip_corrupt, threads):
    def decode(file):
        try:
            return load_image(dataset_dir / file, image_size)
        except CorruptImageError:
            if not skip_corrupt:
                raise
            log.warning("skipping unreadable image %s", file)
            return None

    log.info("decoding %d images with %d threads", len(files), threads)
    images = []
    with ThreadPoolExecutor(max_workers=threads) as pool:  # PIL releases the GIL while decoding
        for image in pool.map(decode, files):
            images.append(image)
            if len(images) % 2000 == 0:
                log.info("decoded %d of %d images", len(images), len(files))
    return images


def save_tensors(tensors, path):
    """``torch.save`` through a file object: given a path, torch names the archive's records after the
    file (here a random temporary name), so the same tensors would not give the same bytes."""
    with atomic_path(path) as partial, open(partial, "wb") as handle:
        torch.save(tensors, handle)


def split_counts(manifest, wnids, dataset):
    """What the split sizes checks need, small enough to read when the workflow is parsed: images kept
    per split and per class, and the archive and settings (``dataset``) they were prepared with."""
    kept = manifest[~manifest["skipped"]]
    per_class = {
        split: {wnid: int(((kept["split"] == split) & (kept["wnid"] == wnid)).sum()) for wnid in wnids}
        for split in SPLITS
    }
    return {
        "dataset": dataset,
        "images": {split: sum(counts.values()) for split, counts in per_class.items()},
        "per_class": per_class,
        "skipped": int(manifest["skipped"].sum()),
    }


def write_split_counts(manifest, wnids, dataset, path):
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(split_counts(manifest, wnids, dataset), indent=1) + "\n")


def prepare(
    dataset_dir,
    output_dir,
    image_size,
    validation_fraction,
    seed,
    skip_corrupt,
    threads,
    source=None,
    needs=None,
):
    """Write ``{train,val,test}.pt`` (images uint8 N×3×S×S, labels), ``manifest.csv`` and
    ``split_counts.json`` (images per split and class, with ``source`` and the split's settings).

    ``source`` (archive name, md5) is stored in every split, so each result can say which data it
    came from; ``needs`` is checked against the split sizes before any image is decoded.
    """
    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    wnids = check_layout(dataset_dir)
    manifest = list_images(dataset_dir, wnids)
    check_split_sizes(manifest, validation_fraction, needs or {})
    manifest = split_validation(manifest, validation_fraction, seed)
    images = _decode_all(dataset_dir, manifest["file"], image_size, skip_corrupt, threads)
    manifest["skipped"] = [image is None for image in images]
    kept = manifest[~manifest["skipped"]].groupby(["split", "wnid"]).size()
    emptied = [f"{split}/{wnid}" for split in SPLITS for wnid in wnids if (split, wnid) not in kept.index]
    if emptied:
        raise DatasetError(f"no readable image left in {', '.join(emptied)} after skipping unreadable ones")

    for split in SPLITS:
        rows = manifest.index[(manifest["split"] == split) & ~manifest["skipped"]]
        tensors = {
            "images": torch.stack([images[i] for i in rows]),
            "labels": torch.tensor(manifest.loc[rows, "label"].to_numpy(), dtype=torch.long),
            "files": manifest.loc[rows, "file"].tolist(),
            "classes": [class_name(wnid) for wnid in wnids],
            "wnids": wnids,
            "source": {**(source or {}), "image_size": image_size},
        }
        save_tensors(tensors, output_dir / f"{split}.pt")
        log.info("%s: %d images", split, len(rows))
    with atomic_path(output_dir / "manifest.csv") as partial:
        manifest.drop(columns="label").to_csv(partial, index=False)
    settings = {
        **(source or {}),
        "skip_corrupt": skip_corrupt,
        "image_size": image_size,
        "validation_fraction": validation_fraction,
        "split_seed": seed,
    }
    write_split_counts(manifest, wnids, settings, output_dir / SPLIT_COUNTS)
    skipped = int(manifest["skipped"].sum())
    if skipped:
        log.warning("%d unreadable images skipped; listed with skipped=True in manifest.csv", skipped)
    return manifest
