"""The configuration: schema validation, model names and each model's hyper-parameter dict."""

import copy
from pathlib import Path

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"
CNN_VARIANTS = ("baseline", "batchnorm", "dropout", "augmentation", "combined")
TRANSFER_PREFIX = "resnet18_"


def validate_config(config):
    """Raise a WorkflowError naming the offending key when ``config`` breaks the schema."""
    from snakemake.utils import validate

    validate(config, str(SCHEMA), set_default=False)


def cnn_models(config):
    return [name for name in CNN_VARIANTS if name in config["cnn"]["variants"]]


def transfer_models(config):
    return [TRANSFER_PREFIX + mode for mode in config["transfer"]["modes"]]


def model_names(config):
    """Every model the study trains, in the order tables and figures show them."""
    return cnn_models(config) + transfer_models(config)


def hyperparameters(config, model, seed):
    """The full, flat dict that trains ``model``; it is stored inside every checkpoint."""
    params = copy.deepcopy(config["training"])
    common = {
        "model": model,
        "seed": seed,
        "image_size": config["dataset"]["image_size"],
        "dataset": config["dataset"]["name"],
    }
    if model in CNN_VARIANTS:
        params.update(config["cnn"]["variants"][model])
        params.update(
            architecture="cnn",
            width=config["cnn"]["width"],
            fc_hidden=config["cnn"]["fc_hidden"],
            normalization="dataset",
        )
    elif model.startswith(TRANSFER_PREFIX):
        params.update(config["transfer"]["training"])
        params.update(
            architecture="resnet18",
            mode=model.removeprefix(TRANSFER_PREFIX),
            weights=config["transfer"]["weights"],
            normalization="imagenet",
        )
    else:
        raise ValueError(f"unknown model {model!r}; configured: {model_names(config)}")
    params.update(common)
    return params
