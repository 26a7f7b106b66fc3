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


def test_preparing_with_half_held_out_writes_every_split_and_says_so(demo_dataset, tmp_path, caplog):
    """prepare() called here, not through the session's fixture: every record of one run, and its log."""
    import logging

    with caplog.at_level(logging.INFO, logger="cnnstudy.data.prepare"):
        manifest = prepare(demo_dataset, tmp_path, 16, 0.5, seed=1, skip_corrupt=False, threads=2)
    assert list(manifest.columns) == ["file", "wnid", "class_name", "label", "split", "skipped"]
    assert manifest.groupby("split").size().to_dict() == {"test": 40, "train": 60, "val": 60}
    assert (manifest[manifest["split"] == "val"].groupby("wnid").size() == 6).all()  # half of 12 per class
    tench = manifest[manifest["wnid"] == "n01440764"]
    assert set(tench["class_name"]) == {"tench"} and set(tench["label"]) == {0}
    for split in ("train", "val", "test"):
        stored = torch.load(tmp_path / f"{split}.pt", weights_only=True)
        rows = manifest[manifest["split"] == split]
        assert stored["files"] == rows["file"].tolist()
        assert stored["labels"].tolist() == rows["label"].tolist()
        assert stored["classes"][:2] == ["tench", "English springer"] and stored["wnids"][0] == "n01440764"
        assert stored["source"] == {"image_size": 16}
    assert stored["labels"].dtype == torch.long
    written = pd.read_csv(tmp_path / "manifest.csv")
    pd.testing.assert_frame_equal(written, manifest.drop(columns="label"))  # every row, no index column
    counts = json.loads((tmp_path / "split_counts.json").read_text())
    assert counts["dataset"] == {
        "skip_corrupt": False,
        "image_size": 16,
        "validation_fraction": 0.5,
        "split_seed": 1,
    }
    assert counts["images"] == {"train": 60, "val": 60, "test": 40}
    messages = [record.getMessage() for record in caplog.records]
    assert "decoding 160 images with 2 threads" in messages
    assert (
        "Imagenette's train/ folder holds 120 images in 10 classes; dataset.validation_fraction 0.5 keeps 60 "
        "for training and 60 for validation" in messages
    )
    assert {"train: 60 images", "val: 60 images", "test: 40 images"} <= set(messages)
    assert not [message for message in messages if message.startswith("decoded ")]  # every 2,000 images only


def test_a_skipped_image_is_named_in_the_log(dataset_copy, tmp_path, caplog):
    victim = sorted((dataset_copy / "val" / "n03888257").iterdir())[0]
    victim.write_bytes(b"not an image")
    prepare(dataset_copy, tmp_path / "out", 16, 0.25, seed=0, skip_corrupt=True, threads=1)
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert f"skipping unreadable image {victim.relative_to(dataset_copy).as_posix()}" in warnings
    assert "1 unreadable images skipped; listed with skipped=True in manifest.csv" in warnings


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK"])
def test_any_image_mode_becomes_three_channels(tmp_path, mode):
    from PIL import Image

    from cnnstudy.data.prepare import load_image

    path = tmp_path / ("image.jpg" if mode == "CMYK" else "image.png")
    Image.new("RGB", (30, 20), (200, 40, 40)).convert(mode).save(path)
    image = load_image(path, 10)
    assert image.shape == (3, 10, 10) and image.dtype == torch.uint8


def test_the_shorter_side_is_resized_then_the_centre_kept(tmp_path):
    from PIL import Image

    from cnnstudy.data.prepare import load_image

    picture = Image.new("RGB", (40, 20), (0, 0, 255))  # 40 wide, 20 high: blue
    picture.paste((0, 255, 0), (8, 0, 32, 20))  # a green middle, a little wider than half
    picture.save(tmp_path / "wide.png")
    image = load_image(tmp_path / "wide.png", 10)  # 20×10, then the middle 10 columns: all green
    assert image.shape == (3, 10, 10)
    assert image[1].min() >= 250 and image[2].max() <= 5


def test_a_damaged_image_error_says_what_to_do(tmp_path):
    from cnnstudy.data.prepare import load_image

    (tmp_path / "bad.jpg").write_bytes(b"no")
    with pytest.raises(CorruptImageError) as raised:
        load_image(tmp_path / "bad.jpg", 16)
    assert str(raised.value).endswith(
        "Replace the file, or set dataset.skip_corrupt: true to leave unreadable images out (they are listed in "
        "manifest.csv)."
    )


def test_without_a_train_folder_the_val_folder_is_still_checked(dataset_copy, tmp_path):
    from cnnstudy.data.prepare import check_layout

    shutil.rmtree(dataset_copy / "train")
    shutil.rmtree(dataset_copy / "val" / "n03888257")
    (dataset_copy / "val" / "notes.txt").write_text("a stray file is not a class")
    with pytest.raises(DatasetError) as raised:
        check_layout(dataset_copy)
    assert str(raised.value) == (
        f"{dataset_copy} does not have the expected layout, {{train,val}}/<wnid>/ with the 10 classes of "
        "Imagenette:\n  - no train/ folder\n  - val/n03888257 (parachute) is missing\n"
        "Check dataset.url, dataset.md5 and dataset.name; delete the folder to unpack the archive again."
    )


def test_a_dataset_of_other_classes_needs_the_same_ones_in_both_splits(tmp_path):
    from PIL import Image

    from cnnstudy.data.prepare import check_layout

    for split, classes in (("train", ("cats", "dogs")), ("val", ("cats", "dogs"))):
        for name in classes:
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("RGB", (4, 4)).save(tmp_path / split / name / "a.png")
    assert check_layout(tmp_path) == ["cats", "dogs"]
    shutil.rmtree(tmp_path / "val" / "dogs")
    with pytest.raises(DatasetError) as raised:
        check_layout(tmp_path)
    assert "with the same classes in train/ and val/:\n  - val/dogs (dogs) is missing\n" in str(raised.value)


def manifest_of(train_per_class):
    """A manifest of training images only: ``train_per_class`` maps a wnid to its image count."""
    rows = [{"wnid": wnid, "split": "train"} for wnid, n in train_per_class.items() for _ in range(n)]
    return pd.DataFrame(rows)


def test_split_sizes_at_their_limits(caplog):
    import logging

    from cnnstudy.data.prepare import check_split_sizes

    two_each = manifest_of({"a": 2, "b": 2})
    with caplog.at_level(logging.INFO, logger="cnnstudy.data.prepare"):
        check_split_sizes(two_each, 0.5, {"training.batch_size": 2, "cnn.probe_size": 2})  # exactly enough
    assert caplog.records[-1].getMessage() == (
        "Imagenette's train/ folder holds 4 images in 2 classes; dataset.validation_fraction 0.5 keeps 2 for "
        "training and 2 for validation"
    )
    with pytest.raises(DatasetError) as raised:
        check_split_sizes(manifest_of({"a": 1, "b": 3}), 0.5, {"training.batch_size": 3, "cnn.probe_size": 3})
    assert str(raised.value) == (
        "Imagenette's train/ folder holds 4 images in 2 classes; dataset.validation_fraction 0.5 keeps 2 for "
        "training and 2 for validation:\n"
        "  - class a has 1 training image; a split needs 2\n"
        "  - training.batch_size 3 exceeds the 2 training images: lower dataset.validation_fraction or "
        "training.batch_size\n"
        "  - cnn.probe_size 3 exceeds the 2 validation images: lower cnn.probe_size or raise "
        "dataset.validation_fraction"
    )
    with pytest.raises(DatasetError, match="each split needs at least one image per class: change "
                                           "dataset.validation_fraction$"):  # fmt: skip
        check_split_sizes(manifest_of({"a": 2, "b": 2, "c": 2}), 0.25, {})  # 2 validation images, 3 classes
    check_split_sizes(
        manifest_of({"a": 3, "b": 3}), 0.34, {"other_key": 100}
    )  # a key neither batch nor probe


def test_a_class_left_without_readable_images_stops_the_preparation(dataset_copy, tmp_path):
    for victim in (dataset_copy / "val" / "n03888257").iterdir():
        victim.write_bytes(b"not an image")
    with pytest.raises(DatasetError) as raised:
        prepare(dataset_copy, tmp_path / "out", 16, 0.25, seed=0, skip_corrupt=True, threads=2)
    assert str(raised.value) == "no readable image left in test/n03888257 after skipping unreadable ones"
