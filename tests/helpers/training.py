"""Small training runs on the test dataset, shared by the tests and the kill-and-resume runner."""

import sys
from pathlib import Path

import torch
import yaml

from cnnstudy.data import load_split
from cnnstudy.models import build_model, normalization
from cnnstudy.settings import hyperparameters
from cnnstudy.training import train
from helpers import REPO

OUTPUT_NAMES = {"checkpoint": "checkpoint.pt", "history": "history.csv", "gradients": "gradients.csv",
                "summary": "summary.json"}  # fmt: skip


def tiny_hyperparameters(model="baseline", **overrides):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["dataset"].update(image_size=16, name="imagenette-demo")
    config["cnn"].update(width=4, fc_hidden=8)
    config["training"].update(epochs=4, batch_size=16, gradient_epochs=[1, 3], gradient_bins=8, probe_size=20)
    config["transfer"].update(weights="none")
    config["transfer"]["training"].update(epochs=2, batch_size=16)
    hp = hyperparameters(config, model, seed=0)
    hp.update(overrides)
    return hp


def run_training(data_dir, output_dir, hp, state_dict=None):
    torch.set_num_threads(1)
    device = torch.device("cpu")
    train_split = load_split(Path(data_dir) / "train.pt", device)
    val_split = load_split(Path(data_dir) / "val.pt", device)
    model = build_model(hp, len(train_split.classes), state_dict)
    outputs = {key: Path(output_dir) / name for key, name in OUTPUT_NAMES.items()}
    history, summary = train(
        model, hp, train_split, val_split, device, outputs, Path(output_dir) / "resume",
        normalization(hp, train_split.images), pretrained=False if hp["architecture"] == "resnet18" else None,
    )  # fmt: skip
    return model, history, summary


if __name__ == "__main__":
    # python -m helpers.training DATA OUTPUT EPOCHS [DIE_AFTER_EPOCH]: the kill-and-resume test's job.
    data_dir, output_dir, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:
        import os
        import signal

        import cnnstudy.training as training

        die_after, real_save = int(sys.argv[4]), training._save

        def save_then_die(payload, path):
            real_save(payload, path)
            if Path(path).name == "last.pt" and payload["state"]["epoch"] == die_after:
                os.kill(os.getpid(), signal.SIGKILL)  # as abrupt as a cluster's job kill

        training._save = save_then_die
    run_training(data_dir, output_dir, tiny_hyperparameters(epochs=epochs))
