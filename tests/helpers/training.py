"""Small training runs on the test dataset, shared by the tests and the kill-and-resume runner."""

import sys
from pathlib import Path

import torch
import yaml

from cnnstudy.base.layout import TRAINING_OUTPUTS
from cnnstudy.base.settings import hyperparameters
from cnnstudy.data.tensors import load_split
from cnnstudy.train.loop import train
from cnnstudy.train.models import build_model, normalization
from helpers import REPO


def tiny_config():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["dataset"].update(image_size=16, name="imagenette-demo")
    config["cnn"].update(channels=[4, 8, 16], fc_hidden=8, probe_size=20)
    config["training"].update(epochs=4, batch_size=16, gradient_epochs=[1, 3])
    config["transfer"].update(weights="none")
    config["transfer"]["training"].update(epochs=2, batch_size=16)
    return config


def tiny_hyperparameters(model="baseline", **overrides):
    hp = hyperparameters(tiny_config(), model, seed=0)
    hp.update(overrides)
    return hp


def run_training(data_dir, output_dir, hp, state_dict=None, code_version="test", settings=None):
    torch.set_num_threads(1)
    device = torch.device("cpu")
    train_split = load_split(Path(data_dir) / "train.pt", device)
    val_split = load_split(Path(data_dir) / "val.pt", device)
    model = build_model(hp, len(train_split.classes), state_dict)
    outputs = {key: Path(output_dir) / name for key, name in TRAINING_OUTPUTS.items()}
    history, summary = train(
        model, hp, train_split, val_split, device, outputs, Path(output_dir) / "resume",
        normalization(hp, train_split.images), pretrained=False if hp["architecture"] == "resnet18" else None,
        code_version=code_version, settings=settings,
    )  # fmt: skip
    return model, history, summary


if __name__ == "__main__":
    # python -m helpers.training DATA OUTPUT EPOCHS [DIE_AFTER_EPOCH]: the kill-and-resume test's job.
    import logging

    logging.basicConfig(level=logging.INFO)  # as a job's log: the tests read what it says
    data_dir, output_dir, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:
        import os
        import signal

        import cnnstudy.train.resume as resume

        die_after, real_save = int(sys.argv[4]), resume.ResumeFolder.save

        def save_then_die(self, payload):
            real_save(self, payload)
            if payload["state"]["epoch"] == die_after:
                os.kill(os.getpid(), signal.SIGKILL)  # as abrupt as a cluster's job kill

        resume.ResumeFolder.save = save_then_die
    run_training(data_dir, output_dir, tiny_hyperparameters(epochs=epochs))
