import copy
import re
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config

from cnnstudy.settings import hyperparameters, model_names, validate_config

REPO = Path(__file__).resolve().parent.parent


def load(path):
    return yaml.safe_load((REPO / path).read_text())


@pytest.fixture()
def config():
    return load("config.yaml")


def test_default_and_demo_configs_are_valid(config):
    validate_config(config)
    demo = copy.deepcopy(config)
    update_config(demo, load("profiles/demo/demo-config.yaml"))
    validate_config(demo)
    assert demo["cnn"]["variants"]["combined"]["batchnorm"] is True  # merged key by key, not replaced


def test_study_numbers_are_the_reports(config):
    assert config["training"]["epochs"] == 50 and config["training"]["batch_size"] == 128
    assert config["training"]["lr"] == 1e-3 and config["training"]["betas"] == [0.9, 0.999]
    assert config["cnn"]["width"] == 128 and config["cnn"]["fc_hidden"] == 1024
    assert config["dataset"]["md5"] == "e793b78cc4c9e9a4ccc0c1155377a412"
    assert model_names(config) == [
        "baseline", "batchnorm", "dropout", "augmentation", "combined",
        "resnet18_bn_frozen", "resnet18_bn_unfrozen",
    ]  # fmt: skip


def test_hyperparameters_merge_training_defaults_with_the_variant(config):
    combined = hyperparameters(config, "combined", seed=7)
    assert combined["lr"] == 1e-4 and combined["early_stopping_patience"] == 10 and combined["seed"] == 7
    assert combined["batchnorm"] and combined["augmentation"] and combined["dropout_fc"] == 0.5
    baseline = hyperparameters(config, "baseline", seed=0)
    assert baseline["lr"] == 1e-3 and not baseline["batchnorm"] and baseline["dropout_conv"] == 0
    resnet = hyperparameters(config, "resnet18_bn_unfrozen", seed=0)
    assert resnet["mode"] == "bn_unfrozen" and resnet["schedule"] == "warmup_cosine"
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        hyperparameters(config, "vgg", seed=0)


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda c: c["training"].update(learning_rate=0.1), "learning_rate"),
        (lambda c: c.update(epochs=3), "epochs"),
        (lambda c: c["training"].update(epochs="fifty"), "fifty"),
        (lambda c: c["cnn"]["variants"].update(resnet50={}), "resnet50"),
        (lambda c: c["transfer"].update(modes=["bn_frozen", "bn_thawed"]), "bn_thawed"),
        (lambda c: c["dataset"].update(md5="not-an-md5"), "not-an-md5"),
        (lambda c: c["cnn"]["variants"]["dropout"].update(dropout_fc=1.5), "1.5"),
        (lambda c: c.update(device="tpu"), "tpu"),
    ],
    ids=[
        "unknown-key",
        "unknown-top-level-key",
        "wrong-type",
        "unknown-model",
        "unknown-mode",
        "bad-md5",
        "out-of-range",
        "unknown-device",
    ],  # fmt: skip
)
def test_bad_config_stops_with_the_key_named(config, change, named):
    change(config)
    with pytest.raises(WorkflowError, match=re.escape(named)):
        validate_config(config)


def test_every_config_key_is_commented():
    """config.yaml reads like a methods section: every scalar setting carries a comment.

    Block headers (``key:`` followed by an indented block) and inline-mapping rows of a commented
    table (``baseline: {test_accuracy: …}``) are exempt."""
    lines = (REPO / "config.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^\s*[a-z_0-9]+:", line) and "#" not in line:
            following = lines[number + 1] if number + 1 < len(lines) else ""
            block_key = line.rstrip().endswith(":") and following.strip()
            inline_row = line.strip().endswith("}")
            assert block_key or inline_row, f"config.yaml line {number + 1} has no comment: {line}"
