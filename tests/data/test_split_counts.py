"""The split sizes checked when the workflow is parsed, from the counts file prepare_dataset writes."""

import json
import subprocess
import sys

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config

from cnnstudy.base.settings import (
    prepared_dataset,
    prepared_split_counts,
    split_size_problems,
    validate_split_sizes,
)
from helpers import REPO, package_environment


@pytest.fixture()
def config():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, yaml.safe_load((REPO / "profiles/demo/demo-config.yaml").read_text()))
    return config  # the demo: batch 32, probe 100, 800 training and 200 validation images


def counts_for(config, train=800, val=200):
    return {"dataset": prepared_dataset(config), "images": {"train": train, "val": val, "test": 300}}


@pytest.fixture()
def counts_file(config, tmp_path):
    path = tmp_path / "split_counts.json"
    path.write_text(json.dumps(counts_for(config)))
    return path


def test_the_demo_fits_its_splits(config):
    assert split_size_problems(config, counts_for(config)) == []


@pytest.mark.parametrize(
    "change, named",
    [
        (
            lambda c: c["training"].update(batch_size=900),
            [
                "training.batch_size: 900 exceeds the 800 training images; lower it, or dataset.validation_fraction"
            ],
        ),
        (
            lambda c: c["cnn"]["variants"]["combined"].update(batch_size=801),
            ["cnn.variants.combined.batch_size: 801 exceeds the 800 training images"],
        ),
        (
            lambda c: c["transfer"]["training"].update(batch_size=1000),
            ["transfer.training.batch_size: 1000 exceeds the 800 training images"],
        ),
        (
            lambda c: c["cnn"].update(probe_size=201),
            [
                "cnn.probe_size: 201 exceeds the 200 validation images; lower it, or raise dataset.validation_fraction"
            ],
        ),
        (
            lambda c: c["cnn"]["variants"]["batchnorm_slow"].update(probe_size=250),
            ["cnn.variants.batchnorm_slow.probe_size: 250 exceeds the 200 validation images"],
        ),
        (
            lambda c: c["sweeps"]["lr_demo"]["grid"].update(batch_size=[16, 1024], probe_size=[50, 300]),
            [
                "sweeps.lr_demo.grid.batch_size: 1024 exceeds the 800 training images",
                "sweeps.lr_demo.grid.probe_size: 300 exceeds the 200 validation images",
            ],
        ),
    ],
    ids=["training", "variant-batch", "transfer", "probe", "variant-probe", "sweep-grid"],
)
def test_each_problem_names_the_exact_key(config, change, named):
    change(config)
    problems = split_size_problems(config, counts_for(config))
    assert len(problems) == len(named)
    for problem, text in zip(problems, named, strict=True):
        assert problem.startswith(text)


def test_a_key_many_models_inherit_is_named_once_and_a_variants_own_value_is_not_blamed_on_it(config):
    config["training"]["batch_size"] = 900
    config["cnn"]["variants"]["baseline"]["batch_size"] = 16  # fits: only the others inherit 900
    problems = split_size_problems(config, counts_for(config))
    assert problems == [
        "training.batch_size: 900 exceeds the 800 training images; lower it, or dataset.validation_fraction"
    ]


def test_the_transfer_batch_is_not_checked_without_transfer_models(config):
    config["transfer"]["modes"] = []
    config["transfer"]["training"]["batch_size"] = 1000
    assert split_size_problems(config, counts_for(config)) == []


def test_validation_stops_with_every_problem_and_the_counts(config, counts_file):
    config["training"]["batch_size"] = 900
    config["cnn"]["variants"]["combined"]["probe_size"] = 500
    with pytest.raises(WorkflowError) as raised:
        validate_split_sizes(config, counts_file)
    message = str(raised.value)
    assert "Error validating config against the prepared data (2 problems):" in message
    assert (
        "  - training.batch_size: 900" in message and "  - cnn.variants.combined.probe_size: 500" in message
    )
    assert f"{counts_file}: 800 training and 200 validation images" in message


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["dataset"].update(md5="0" * 32),
        lambda c: c["dataset"].update(name="imagewoof2-160"),
        lambda c: c["dataset"].update(skip_corrupt=True),
        lambda c: c["dataset"].update(image_size=64),
        lambda c: c["dataset"].update(validation_fraction=0.5),
        lambda c: c["dataset"].update(split_seed=1),
    ],
    ids=["md5", "name", "skip_corrupt", "image_size", "validation_fraction", "split_seed"],
)
def test_counts_of_other_data_or_another_split_are_not_used(config, counts_file, change):
    change(config)
    config["training"]["batch_size"] = 900  # prepare_dataset checks it when it makes the new data
    assert prepared_split_counts(config, counts_file) is None
    validate_split_sizes(config, counts_file)


@pytest.mark.parametrize("text", [None, "", "{not json", "[]", '{"dataset": {}}'])
def test_a_missing_or_unreadable_counts_file_checks_nothing(config, tmp_path, text):
    path = tmp_path / "split_counts.json"
    if text is not None:
        path.write_text(text)
    config["training"]["batch_size"] = 900
    validate_split_sizes(config, path)


def test_the_check_imports_neither_torch_nor_pandas(config, counts_file):
    code = (
        "import json, sys; from cnnstudy.base.settings import validate_split_sizes; "
        f"validate_split_sizes(json.loads(sys.argv[1]), {str(counts_file)!r}); "
        "print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config)],
        env=package_environment(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "[]"
