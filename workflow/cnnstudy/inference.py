"""A trained model back from its checkpoint, and its predictions on the test split."""

import pandas as pd
import torch

from .evaluation import classification_metrics
from .models import build_model
from .training import predict


def load_trained_model(checkpoint_path, device):
    """The model a checkpoint describes (its hyper-parameters rebuild it), with the best weights."""
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)  # our own file
    model = build_model(checkpoint["hyperparameters"], len(checkpoint["classes"]))
    model.load_state_dict(checkpoint["model_state"])
    model.to(device, memory_format=torch.channels_last)
    return model, checkpoint


def evaluate_checkpoint(checkpoint_path, test_split, device, batch_size):
    """(metrics dict, predictions frame, descriptive fields) of a checkpoint on ``test_split``."""
    model, checkpoint = load_trained_model(checkpoint_path, device)
    if checkpoint["classes"] != test_split.classes:
        raise ValueError(
            f"{checkpoint_path} was trained on classes {checkpoint['classes']}, "
            f"but the test split has {test_split.classes}"
        )
    mean, std = (torch.tensor(checkpoint["normalization"][key], device=device) for key in ("mean", "std"))
    probabilities = predict(model, test_split, mean, std, batch_size, device).softmax(dim=1).cpu()
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
    hp = checkpoint["hyperparameters"]
    description = {
        "model": hp["model"],
        "seed": hp["seed"],
        "dataset": hp["dataset"],
        "pretrained": checkpoint["pretrained"],
        "checkpoint_epoch": checkpoint["epoch"],
    }
    return metrics, predictions, description
