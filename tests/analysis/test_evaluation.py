import json

import numpy as np
import pandas as pd
import pytest

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


def test_a_checkpoint_scores_as_an_independent_forward_pass_over_its_weights(prepared, tmp_path):
    """evaluate_checkpoint against a hand-written reference: the model rebuilt from the checkpoint's own
    dict, the images normalised by hand with the stored mean and std, the argmax and its probability."""
    import torch

    from cnnstudy.analysis.scoring import evaluate_checkpoint
    from cnnstudy.data.tensors import load_split
    from cnnstudy.train.models import build_model
    from helpers.training import run_training, tiny_hyperparameters

    run_training(prepared, tmp_path, tiny_hyperparameters(epochs=2, channels=[4, 8, 8]))
    test = load_split(prepared / "test.pt", torch.device("cpu"))
    metrics, predictions, _ = evaluate_checkpoint(tmp_path / "checkpoint.pt", test, torch.device("cpu"), 7)

    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    model = build_model(checkpoint["hyperparameters"], len(checkpoint["classes"])).eval()
    model.load_state_dict(checkpoint["model_state"])
    mean, std = (torch.tensor(checkpoint["normalization"][k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        probabilities = model((test.images.float() / 255 - mean) / std).softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    assert predictions["predicted"].tolist() == [test.classes[i] for i in predicted.tolist()]
    assert predictions["confidence"].to_numpy() == pytest.approx(confidence.numpy(), abs=1e-5)
    assert metrics["accuracy"] == pytest.approx((predicted == test.labels).float().mean().item())
