"""A trained model scored on the test split: the evaluate rule's job."""

import pandas as pd
import torch

from ..base.devices import select_device
from ..base.jobs import StudyError
from ..base.memory import inference_chunk_size, peak_rss_mb
from ..base.provenance import provenance
from ..data.tensors import load_split
from ..train.inference import load_trained_model, predict
from .evaluation import classification_metrics, write_evaluation


def evaluate_checkpoint(checkpoint_path, test_split, device, batch_size):
    """(metrics dict, predictions frame, descriptive fields) of a checkpoint on ``test_split``."""
    model, checkpoint = load_trained_model(checkpoint_path, device)
    if checkpoint["classes"] != test_split.classes:
        raise StudyError(
            f"{checkpoint_path} was trained on classes {checkpoint['classes']}, "
            f"but the test split has {test_split.classes}"
        )
    hp = checkpoint["hyperparameters"]
    mean, std = (torch.tensor(checkpoint["normalization"][key], device=device) for key in ("mean", "std"))
    chunk = inference_chunk_size(model, tuple(test_split.images.shape[1:]), batch_size, device)
    logits = predict(model, test_split.images, mean, std, chunk, device, hp.get("precision", "fp32"))
    probabilities = logits.softmax(dim=1).cpu()
    confidence, predicted = probabilities.max(dim=1)
    labels = test_split.labels.cpu()
    metrics = classification_metrics(
        labels.numpy(), predicted.numpy(), probabilities.numpy(), test_split.classes
    )
    predictions = pd.DataFrame(
        {
            "file": test_split.files,
            "true": [test_split.classes[i] for i in labels.tolist()],
            "predicted": [test_split.classes[i] for i in predicted.tolist()],
            "confidence": confidence.numpy(),
        }
    )
    description = {
        "model": hp["model"],
        "seed": hp["seed"],
        "dataset": hp["dataset"],
        "image_size": hp["image_size"],
        "pretrained": checkpoint["pretrained"],
        "checkpoint_epoch": checkpoint["epoch"],
        "eval_chunk_size": chunk,
        "training_provenance": checkpoint.get("provenance", {}),
    }
    return metrics, predictions, description


def evaluate_job(checkpoint_path, test_path, outputs, settings):
    """An evaluation rule's whole job: the checkpoint on the test split, written to ``outputs``."""
    device = select_device(settings["device"], settings["gpu_wait_minutes"])
    test_split = load_split(test_path, device)
    metrics, predictions, description = evaluate_checkpoint(
        checkpoint_path, test_split, device, settings["eval_batch_size"]
    )
    training_origin = description.pop("training_provenance")
    record = {
        **description,
        "archive_md5": test_split.source.get("archive_md5"),
        "peak_rss_mb": peak_rss_mb(),
        "provenance": {**provenance(device, test=test_split), "training": training_origin},
    }
    write_evaluation(
        record, metrics, predictions, outputs["metrics"], outputs["confusion"], outputs["predictions"]
    )
