"""A model's predictions, in memory-bounded chunks: validation during training, and the test set.

Needs torch alone (no scikit-learn or SciPy), so the training loop runs on a bare GPU machine.

Callers split a batch into chunks (``memory.inference_chunk_size``) whose activations stay within a share
of the memory available to the job: at 160 px a single 512-image forward pass of the study's CNN would
need about 20 GB. Predictions do not depend on the chunk size.
"""

import contextlib

import torch
import torch.nn.functional as F

from ..base.files import UnsafeFileError, load_torch_file
from ..base.jobs import StudyError
from ..data.tensors import to_model_input
from .models import build_model


def autocast(device, precision):
    """bf16 autocast on CUDA when asked for; full precision otherwise (the CPU stays bit-for-bit repeatable)."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict(model, images, mean, std, chunk_size, device, precision="fp32"):
    """Logits (float32) for every uint8 image, in order, with the model in eval mode."""
    model.eval()
    outputs = []
    for start in range(0, len(images), chunk_size):
        batch = to_model_input(images[start : start + chunk_size], mean, std)
        with autocast(device, precision):
            outputs.append(model(batch).float())
    return torch.cat(outputs)


def loss_and_accuracy(model, split, mean, std, chunk_size, device, precision="fp32"):
    """(mean cross-entropy, accuracy) of ``model`` on ``split``."""
    logits = predict(model, split.images, mean, std, chunk_size, device, precision)
    loss = F.cross_entropy(logits, split.labels).item()  # .item(): one sync per evaluation
    accuracy = (logits.argmax(dim=1) == split.labels).float().mean().item()
    return loss, accuracy


def load_checkpoint(path):
    try:
        return load_torch_file(path)
    except UnsafeFileError:
        raise
    except Exception as error:  # a truncated file fails in several ways
        raise StudyError(
            f"cannot read the checkpoint {path}: {error}. Delete it and rerun to train that model again "
            "(or: snakemake <this target> --forcerun train_cnn)."
        ) from error


def load_trained_model(checkpoint_path, device):
    """The model a checkpoint describes (its hyper-parameters rebuild it), with the best weights."""
    checkpoint = load_checkpoint(checkpoint_path)
    model = build_model(checkpoint["hyperparameters"], len(checkpoint["classes"]))
    model.load_state_dict(checkpoint["model_state"])
    model.to(device, memory_format=torch.channels_last)
    return model, checkpoint
