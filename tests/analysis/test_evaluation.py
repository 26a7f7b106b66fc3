import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cnnstudy.analysis.evaluation import classification_metrics, write_evaluation

CLASSES = ["tench", "church", "parachute"]
# three classes, six images, checked by hand below
TRUE = [0, 0, 0, 1, 1, 2]
PREDICTED = [0, 0, 1, 1, 2, 2]


def probabilities_for(predicted, n_classes, confidence=0.8):
    rows = np.full((len(predicted), n_classes), (1 - confidence) / (n_classes - 1))
    rows[np.arange(len(predicted)), predicted] = confidence
    return rows


def test_metrics_match_a_hand_computation():
    metrics = classification_metrics(TRUE, PREDICTED, probabilities_for(PREDICTED, 3), CLASSES)

    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["n_images"] == 6
    assert metrics["classes"] == CLASSES
    tench, church, parachute = (metrics["per_class"][name] for name in CLASSES)
    # tench: 2 of 3 found, both tench predictions right
    assert (tench["precision"], tench["recall"], tench["support"]) == (
        pytest.approx(1.0),
        pytest.approx(2 / 3),
        3,
    )
    assert tench["f1"] == pytest.approx(0.8)
    # church: one of two predictions right, one of two found
    assert (church["precision"], church["recall"], church["support"]) == (0.5, 0.5, 2)
    # parachute: found its only image, but one of its two predictions was a church
    assert (parachute["precision"], parachute["recall"]) == (0.5, 1.0)
    assert parachute["f1"] == pytest.approx(2 / 3)
    assert metrics["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_confusion_matrix_counts_and_labels():
    confusion = classification_metrics(TRUE, PREDICTED, probabilities_for(PREDICTED, 3), CLASSES)["confusion"]

    assert confusion.index.name == "true"
    assert list(confusion.index) == CLASSES and list(confusion.columns) == CLASSES
    assert confusion.to_numpy().tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_loss_is_the_mean_negative_log_probability_of_the_true_class():
    probabilities = probabilities_for(PREDICTED, 3)
    expected = -np.mean(np.log(probabilities[np.arange(6), TRUE]))

    metrics = classification_metrics(TRUE, PREDICTED, probabilities, CLASSES)

    assert metrics["loss"] == pytest.approx(expected)


def test_a_class_missing_from_the_test_set_still_gets_a_row_and_column():
    classes = [*CLASSES, "golf ball"]
    probabilities = probabilities_for(PREDICTED, 4).astype(np.float32)  # as a softmax on the GPU returns

    metrics = classification_metrics(TRUE, PREDICTED, probabilities, classes)

    assert metrics["confusion"].shape == (4, 4)
    assert metrics["per_class"]["golf ball"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 4)


def test_write_evaluation_writes_three_readable_files(tmp_path):
    metrics = classification_metrics(TRUE, PREDICTED, probabilities_for(PREDICTED, 3), CLASSES)
    extras = {"model": "combined", "dataset": "demo", "pretrained": None, "checkpoint_epoch": 7}
    predictions = pd.DataFrame(
        {
            "confidence": [0.8] * 6,
            "file": [f"img{i}.JPEG" for i in range(6)],
            "true": [CLASSES[i] for i in TRUE],
            "predicted": [CLASSES[i] for i in PREDICTED],
        }
    )
    paths = [tmp_path / "eval" / name for name in ("metrics.json", "confusion.csv", "predictions.csv")]

    write_evaluation(extras, metrics, predictions, *paths)

    record = json.loads(paths[0].read_text())
    assert list(record)[:4] == ["model", "dataset", "pretrained", "checkpoint_epoch"]
    assert "confusion" not in record
    assert record["accuracy"] == pytest.approx(4 / 6) and record["per_class"]["tench"]["support"] == 3
    confusion = pd.read_csv(paths[1], index_col=0)
    assert confusion.index.name == "true"
    assert confusion.loc["tench", "church"] == 1 and confusion.to_numpy().sum() == 6
    assert list(pd.read_csv(paths[2]).columns) == ["file", "true", "predicted", "confidence"]
    assert not list(tmp_path.rglob("*.part"))


def test_a_damaged_checkpoint_is_named(tmp_path):
    from cnnstudy.base.jobs import StudyError
    from cnnstudy.train.inference import load_checkpoint

    damaged = tmp_path / "checkpoint.pt"
    damaged.write_bytes(b"PK\x03\x04 not a whole checkpoint")
    with pytest.raises(StudyError, match=f"cannot read the checkpoint {damaged}.*Delete it and rerun"):
        load_checkpoint(damaged)


def test_metrics_carry_a_wilson_interval_around_the_accuracy():
    metrics = classification_metrics(TRUE, PREDICTED, probabilities_for(PREDICTED, 3), CLASSES)
    low, high = metrics["accuracy_ci95"]
    assert low < 4 / 6 < high and (low, high) == pytest.approx((0.3000, 0.9032), abs=1e-4)
    assert "Wilson" in metrics["accuracy_ci_method"]


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory):
    """A tiny CNN trained for two epochs on the prepared demo data: its run folder."""
    from helpers.training import run_training, tiny_hyperparameters

    folder = tmp_path_factory.mktemp("trained")
    run_training(prepared, folder, tiny_hyperparameters(epochs=2, channels=[4, 8, 8]))
    return folder


def forward_by_hand(checkpoint_path, test):
    """The reference: the model rebuilt from the checkpoint's own dict, the images normalised by hand with
    the stored mean and std; (probability of the predicted class, predicted class) per image."""
    from cnnstudy.train.models import build_model

    checkpoint = torch.load(checkpoint_path, weights_only=True)
    model = build_model(checkpoint["hyperparameters"], len(checkpoint["classes"])).eval()
    model.load_state_dict(checkpoint["model_state"])
    mean, std = (torch.tensor(checkpoint["normalization"][k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        probabilities = model((test.images.float() / 255 - mean) / std).softmax(dim=1)
    return probabilities.max(dim=1)


def test_a_checkpoint_scores_as_an_independent_forward_pass_over_its_weights(prepared, trained):
    from cnnstudy.analysis.scoring import evaluate_checkpoint
    from cnnstudy.data.tensors import load_split

    test = load_split(prepared / "test.pt", torch.device("cpu"))
    metrics, predictions, description = evaluate_checkpoint(
        trained / "checkpoint.pt", test, torch.device("cpu"), 7
    )

    confidence, predicted = forward_by_hand(trained / "checkpoint.pt", test)
    assert predictions.columns.tolist() == ["file", "true", "predicted", "confidence"]
    assert predictions["file"].tolist() == test.files
    assert predictions["true"].tolist() == [test.classes[i] for i in test.labels.tolist()]
    assert predictions["predicted"].tolist() == [test.classes[i] for i in predicted.tolist()]
    assert predictions["confidence"].to_numpy() == pytest.approx(confidence.numpy(), abs=1e-5)
    assert metrics["accuracy"] == pytest.approx((predicted == test.labels).float().mean().item())
    assert metrics["classes"] == test.classes and metrics["n_images"] == len(test)
    checkpoint = torch.load(trained / "checkpoint.pt", weights_only=True)
    assert description == {
        "model": "baseline",
        "seed": 0,
        "dataset": "imagenette-demo",
        "image_size": 16,
        "pretrained": None,
        "checkpoint_epoch": checkpoint["epoch"],
        "eval_chunk_size": 7,
        "training_provenance": checkpoint["provenance"],
    }


def test_a_checkpoint_of_other_classes_is_refused(prepared, trained):
    from dataclasses import replace

    from cnnstudy.analysis.scoring import evaluate_checkpoint
    from cnnstudy.base.jobs import StudyError
    from cnnstudy.data.tensors import load_split

    test = load_split(prepared / "test.pt", torch.device("cpu"))
    reordered = replace(test, classes=[*test.classes[1:], test.classes[0]])
    with pytest.raises(
        StudyError, match=r"checkpoint.pt was trained on classes \['tench', .*test split has \['English"
    ):
        evaluate_checkpoint(trained / "checkpoint.pt", reordered, torch.device("cpu"), 7)


def current_rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_an_evaluation_job_writes_the_scores_and_where_they_came_from(prepared, trained, tmp_path):
    """evaluate_job, as the evaluate rule runs it: the three files, their numbers against the reference
    forward pass, and the record of which checkpoint, data and chunking produced them."""
    from cnnstudy.analysis.scoring import evaluate_job
    from cnnstudy.data.tensors import file_sha256, load_split

    outputs = {
        "metrics": tmp_path / "metrics.json",
        "confusion": tmp_path / "confusion.csv",
        "predictions": tmp_path / "predictions.csv",
    }
    settings = {"device": "cpu", "gpu_wait_minutes": 0, "eval_batch_size": 16}
    evaluate_job(trained / "checkpoint.pt", prepared / "test.pt", outputs, settings)

    test = load_split(prepared / "test.pt", torch.device("cpu"))
    checkpoint = torch.load(trained / "checkpoint.pt", weights_only=True)
    confidence, predicted = forward_by_hand(trained / "checkpoint.pt", test)
    record = json.loads(outputs["metrics"].read_text())
    described = [
        "model",
        "seed",
        "dataset",
        "image_size",
        "pretrained",
        "checkpoint_epoch",
        "eval_chunk_size",
    ]
    assert list(record)[: len(described) + 1] == [*described, "archive_md5"]
    assert {key: record[key] for key in described} == {
        "model": "baseline",
        "seed": 0,
        "dataset": "imagenette-demo",
        "image_size": 16,
        "pretrained": None,
        "checkpoint_epoch": checkpoint["epoch"],
        "eval_chunk_size": 16,
    }
    assert record["archive_md5"] == "test-archive-md5"  # the test split's own, as prepare stored it
    assert record["provenance"]["training"] == checkpoint["provenance"]
    assert record["provenance"]["data_sha256"] == {"test": file_sha256(prepared / "test.pt")}
    assert current_rss_mb() - 1 <= record["peak_rss_mb"] < 100_000  # in MB: at least what is resident now
    assert record["accuracy"] == pytest.approx((predicted == test.labels).float().mean().item())
    assert record["n_images"] == len(test) == 40
    predictions = pd.read_csv(outputs["predictions"])
    assert predictions["predicted"].tolist() == [test.classes[i] for i in predicted.tolist()]
    assert predictions["confidence"].to_numpy() == pytest.approx(confidence.numpy(), abs=1e-5)
    confusion = pd.read_csv(outputs["confusion"], index_col=0)
    assert list(confusion.index) == list(confusion.columns) == test.classes
    assert confusion.to_numpy().sum() == 40
    assert confusion.to_numpy().trace() == int((predicted == test.labels).sum())


def test_probabilities_are_renormalised_in_double_precision():
    """Rows that drift off 1 (float32 softmax, or scores not yet normalised) are divided by their sum; the
    loss is the mean negative log of the true class's share, to double precision."""
    rows = probabilities_for(PREDICTED, 3).astype(np.float32) * np.float32(1.0000003)
    shares = rows.astype(np.float64) / rows.astype(np.float64).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(shares[np.arange(6), TRUE]))
    assert classification_metrics(TRUE, PREDICTED, rows, CLASSES)["loss"] == pytest.approx(
        expected, rel=1e-12
    )
    doubled = probabilities_for(PREDICTED, 3) * 2  # any positive scale
    assert classification_metrics(TRUE, PREDICTED, doubled, CLASSES)["loss"] == pytest.approx(
        -np.mean(np.log(probabilities_for(PREDICTED, 3)[np.arange(6), TRUE])), rel=1e-12
    )


def test_metrics_of_a_class_never_predicted_raise_no_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = classification_metrics(TRUE, [0] * 6, probabilities_for([0] * 6, 3), CLASSES)
    assert metrics["per_class"]["church"]["precision"] == 0.0


def test_the_confusion_matrix_names_both_axes_and_the_interval_its_method():
    metrics = classification_metrics(TRUE, PREDICTED, probabilities_for(PREDICTED, 3), CLASSES)
    assert (metrics["confusion"].index.name, metrics["confusion"].columns.name) == ("true", "predicted")
    assert metrics["accuracy_ci_method"] == "Wilson score interval over the test images"
