import json
import shutil

import pandas as pd
import pytest
import torch

from cnnstudy.data.prepare import CorruptImageError, DatasetError, prepare


def test_prepared_tensors_and_manifest(prepared):
    manifest = pd.read_csv(prepared / "manifest.csv")
    assert list(manifest.columns) == ["file", "wnid", "class_name", "split", "skipped"]
    assert manifest["split"].value_counts().to_dict() == {"train": 90, "test": 40, "val": 30}
    for split, count in (("train", 90), ("val", 30), ("test", 40)):
        tensors = torch.load(prepared / f"{split}.pt", weights_only=True)
        assert tensors["images"].shape == (count, 3, 16, 16) and tensors["images"].dtype == torch.uint8
        assert len(tensors["labels"]) == len(tensors["files"]) == count
        assert tensors["classes"][0] == "tench" and len(tensors["classes"]) == 10
    # Imagenette's val folder is the test split, untouched by the train/validation split
    assert (manifest.loc[manifest["split"] == "test", "file"].str.startswith("val/")).all()
    assert (manifest.loc[manifest["split"] != "test", "file"].str.startswith("train/")).all()


def test_split_is_stratified_and_seeded(demo_dataset, tmp_path):
    first = prepare(demo_dataset, tmp_path / "a", 16, 0.25, seed=3, skip_corrupt=False, threads=2)
    again = prepare(demo_dataset, tmp_path / "b", 16, 0.25, seed=3, skip_corrupt=False, threads=1)
    other = prepare(demo_dataset, tmp_path / "c", 16, 0.25, seed=4, skip_corrupt=False, threads=2)
    pd.testing.assert_frame_equal(first, again)
    assert not first["split"].equals(other["split"])
    validation_per_class = first[first["split"] == "val"].groupby("wnid").size()
    assert (validation_per_class == 3).all() and len(validation_per_class) == 10  # 25 % of 12 per class
    a, b = (torch.load(tmp_path / name / "train.pt", weights_only=True) for name in ("a", "b"))
    assert torch.equal(a["images"], b["images"])


def test_corrupt_image_is_named_in_the_error(dataset_copy, tmp_path):
    victim = sorted((dataset_copy / "train" / "n03000684").iterdir())[2]
    victim.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(CorruptImageError, match=f"cannot decode image .*{victim.name}"):
        prepare(dataset_copy, tmp_path / "out", 16, 0.25, seed=0, skip_corrupt=False, threads=2)
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_corrupt_image_can_be_skipped_and_counted(dataset_copy, tmp_path):
    victim = sorted((dataset_copy / "val" / "n03888257").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:100])
    manifest = prepare(dataset_copy, tmp_path / "out", 16, 0.25, seed=0, skip_corrupt=True, threads=2)
    skipped = manifest[manifest["skipped"]]
    assert skipped["file"].tolist() == [victim.relative_to(dataset_copy).as_posix()]
    assert len(torch.load(tmp_path / "out" / "test.pt", weights_only=True)["labels"]) == 39


def prepare_into(dataset, tmp_path, fraction=0.25, needs=None):
    return prepare(
        dataset, tmp_path / "out", 16, fraction, seed=0, skip_corrupt=False, threads=2, needs=needs
    )


def test_corrupt_image_error_says_how_to_skip_it(dataset_copy, tmp_path):
    victim = sorted((dataset_copy / "train" / "n03000684").iterdir())[2]
    victim.write_bytes(b"not an image")
    with pytest.raises(CorruptImageError, match="dataset.skip_corrupt: true"):
        prepare_into(dataset_copy, tmp_path)


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda d: shutil.rmtree(d / "val" / "n03888257"), ["val/n03888257 (parachute) is missing"]),
        (
            lambda d: shutil.move(d / "val" / "n03888257", d / "val_parachute"),
            ["val/n03888257 (parachute) is missing"],
        ),
        (lambda d: (d / "val" / "misc").mkdir(), ["val/misc is not a class of Imagenette"]),
        (
            lambda d: [(d / split / "n99999999").mkdir() for split in ("train", "val")],
            ["train/n99999999 is not a class of Imagenette", "val/n99999999 is not a class of Imagenette"],
        ),
        (
            lambda d: [path.unlink() for path in (d / "val" / "n01440764").iterdir()],
            ["val/n01440764 (tench) holds no images"],
        ),
    ],
    ids=["class-missing-from-val", "class-in-train-only", "unknown-folder", "eleventh-class", "empty-class"],
)
def test_layout_problems_are_all_named_before_any_image_is_decoded(
    dataset_copy, tmp_path, monkeypatch, damage, named
):
    damage(dataset_copy)
    monkeypatch.setattr("cnnstudy.data.prepare.load_image", lambda *a: pytest.fail("decoded an image first"))
    with pytest.raises(DatasetError) as raised:
        prepare_into(dataset_copy, tmp_path)
    for text in named:
        assert text in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_several_layout_problems_come_in_one_message(dataset_copy, tmp_path):
    shutil.rmtree(dataset_copy / "val" / "n03888257")
    (dataset_copy / "train" / "extra").mkdir()
    with pytest.raises(DatasetError, match=r"(?s)train/extra.*val/n03888257"):
        prepare_into(dataset_copy, tmp_path)


@pytest.mark.parametrize(
    "fraction, needs, named",
    [
        (0.999, {}, r"dataset.validation_fraction 0.999 keeps 0 for training and 120 for validation"),
        (0.9, {"training.batch_size": 16}, r"training.batch_size 16 exceeds the 12 training images"),
        (0.05, {"cnn.probe_size": 20}, r"cnn.probe_size 20 exceeds the 6 validation images"),
    ],
    ids=["no-training-images", "batch-larger-than-training", "probe-larger-than-validation"],
)
def test_split_sizes_are_checked_with_the_counts(demo_dataset, tmp_path, monkeypatch, fraction, needs, named):
    monkeypatch.setattr("cnnstudy.data.prepare.load_image", lambda *a: pytest.fail("decoded an image first"))
    with pytest.raises(DatasetError, match=named):
        prepare_into(demo_dataset, tmp_path, fraction, needs)


def test_preparing_the_same_images_twice_gives_identical_bytes(demo_dataset, tmp_path):
    """torch.save names its records after the file it writes: never the random temporary name."""
    for folder, threads in (("a", 2), ("b", 1)):
        prepare(demo_dataset, tmp_path / folder, 16, 0.25, seed=3, skip_corrupt=False, threads=threads)
    for name in ("train.pt", "val.pt", "test.pt", "manifest.csv", "split_counts.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_split_counts_record_the_images_per_split_and_class_and_what_made_them(prepared):
    counts = json.loads((prepared / "split_counts.json").read_text())
    assert counts["dataset"] == {
        "name": "imagenette-demo", "archive_md5": "test-archive-md5", "skip_corrupt": False, "image_size": 16,
        "validation_fraction": 0.25, "split_seed": 0,
    }  # fmt: skip
    assert counts["images"] == {"train": 90, "val": 30, "test": 40} and counts["skipped"] == 0
    assert counts["per_class"]["val"]["n01440764"] == 3 and len(counts["per_class"]["test"]) == 10
    for split, per_class in counts["per_class"].items():
        assert sum(per_class.values()) == counts["images"][split]


def test_split_counts_leave_skipped_images_out(dataset_copy, tmp_path):
    victim = sorted((dataset_copy / "val" / "n03888257").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:100])
    prepare(dataset_copy, tmp_path / "out", 16, 0.25, seed=0, skip_corrupt=True, threads=2)
    counts = json.loads((tmp_path / "out" / "split_counts.json").read_text())
    assert counts["images"]["test"] == 39 and counts["per_class"]["test"]["n03888257"] == 3
    assert counts["skipped"] == 1 and counts["dataset"]["skip_corrupt"] is True
