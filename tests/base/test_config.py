import copy
import re

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config

from cnnstudy.base.layout import HUB_HASH_IN_NAME
from cnnstudy.base.settings import (
    ARCHITECTURE_KEYS,
    NUMBER_KEYS,
    canonical,
    hyperparameters,
    model_names,
    validate_config,
)
from helpers import REPO


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
    assert config["cnn"]["channels"] == [128, 256, 512] and config["cnn"]["fc_hidden"] == 1024
    assert config["cnn"]["kernel_size"] == 3 and config["sweeps"] == {}
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


def test_model_settings_hold_what_defines_the_model_and_nothing_else(config):
    resnet = hyperparameters(config, "resnet18_bn_frozen", seed=0)
    schema = load("workflow/schemas/config.schema.yaml")
    cnn_only = set(schema["$defs"]["architecture_keys"]["properties"])  # the schema's list, not the code's
    assert len(cnn_only) == 7 and not cnn_only & set(resnet)
    for model in model_names(config):
        assert not {"eval_batch_size", "compile", "device"} & set(hyperparameters(config, model, seed=0))


def test_a_sixth_variant_is_a_model_like_the_others(config):
    config["cnn"]["variants"]["bn_lr1e4"] = {"batchnorm": True, "lr": 1.0e-4, "channels": [32, 64]}
    validate_config(config)
    assert model_names(config)[5] == "bn_lr1e4"
    hp = hyperparameters(config, "bn_lr1e4", seed=3)
    assert hp["batchnorm"] and hp["lr"] == 1.0e-4 and hp["channels"] == [32, 64] and hp["seed"] == 3


def test_hyperparameters_keep_the_default_configs_order(config):
    training = [key for key in config["training"] if key not in ("eval_batch_size", "compile")]
    code = ["architecture", "normalization", "model", "seed", "image_size", "dataset"]
    assert list(hyperparameters(config, "combined", seed=0)) == [*training, *ARCHITECTURE_KEYS, *code]
    resnet = ["architecture", "mode", "weights", "normalization", "model", "seed", "image_size", "dataset"]
    assert list(hyperparameters(config, "resnet18_bn_frozen", seed=0)) == [*training, *resnet]
    assert list(canonical({"zeta": 1, "lr": 0, "alpha": 2, "epochs": 3})) == ["epochs", "lr", "alpha", "zeta"]


def test_hyperparameters_do_not_depend_on_key_order_or_how_a_number_is_written(config):
    """Snakemake compares each param's repr: a reordered or respelled config must give the same one."""
    config["sweeps"] = {"lr_demo": {"model": "dropout", "grid": {"lr": [1.0e-3, 1]}}}
    respelled = copy.deepcopy(config)
    respelled["training"] = dict(reversed(respelled["training"].items()))
    respelled["training"].update(lr=0.001, weight_decay=0, gradient_range=[1.0e-9, 1], betas=[0.9, 0.999])
    respelled["cnn"].update(dropout_conv=0, dropout_fc=0)
    respelled["cnn"]["variants"]["dropout"] = dict(reversed(respelled["cnn"]["variants"]["dropout"].items()))
    respelled["transfer"]["training"] = dict(reversed(respelled["transfer"]["training"].items()))
    respelled["sweeps"]["lr_demo"]["grid"]["lr"] = [0.001, 1.0]
    for model in model_names(config):
        assert repr(hyperparameters(respelled, model, seed=0)) == repr(hyperparameters(config, model, seed=0))
    from cnnstudy.base.settings import sweep_hyperparameters

    for point in ("lr~0.001", "lr~1.0"):  # one column of floats: pandas writes the 1 as 1.0 in the path
        respelled_point = sweep_hyperparameters(respelled, "lr_demo", point, seed=0)
        assert repr(respelled_point) == repr(sweep_hyperparameters(config, "lr_demo", point, seed=0))
    hp = hyperparameters(respelled, "baseline", seed=0)
    assert type(hp["weight_decay"]) is float and hp["gradient_range"][1] == 1.0 and type(hp["epochs"]) is int
    assert type(hp["batchnorm"]) is bool and all(type(c) is int for c in hp["channels"])


def test_the_number_keys_are_the_schemas():
    """NUMBER_KEYS (kept in the code, so that a model's settings need no YAML) against the schema."""
    schema = load("workflow/schemas/config.schema.yaml")["$defs"]

    def number(node):
        node = schema[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node
        return node.get("type") == "number" or (node.get("type") == "array" and number(node["items"]))

    keys = {**schema["training_keys"]["properties"], **schema["architecture_keys"]["properties"]}
    assert NUMBER_KEYS == {key for key, node in keys.items() if number(node)}


def test_sweep_points_come_from_snakemakes_paramspace(config):
    from cnnstudy.base.settings import sweep_hyperparameters, sweep_points

    config["sweeps"] = {
        "lr_batch": {"model": "dropout", "grid": {"lr": [1.0e-4, 1.0e-3], "batch_size": [64, 128]}}
    }
    validate_config(config)
    points = sweep_points(config, "lr_batch")
    assert list(points) == [
        "lr~0.0001/batch_size~64", "lr~0.0001/batch_size~128", "lr~0.001/batch_size~64", "lr~0.001/batch_size~128",
    ]  # fmt: skip
    hp = sweep_hyperparameters(config, "lr_batch", "lr~0.001/batch_size~64", seed=1)
    assert (hp["lr"], hp["batch_size"], hp["dropout_fc"], hp["model"]) == (
        1e-3,
        64,
        0.5,
        "lr_batch/lr~0.001/batch_size~64",
    )


def six_layers(c):
    c["cnn"]["variants"]["deep"] = {"channels": [8, 16, 32, 64]}


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda c: c["training"].update(learning_rate=0.1), "learning_rate"),
        (
            lambda c: c["training"].update(gradient_range=[1.0, 1.0e-9]),
            "training.gradient_range: 1.0 is not below",
        ),
        (
            lambda c: c["training"].update(gradient_range=[1.0e-3, 1.0e-3]),
            "training.gradient_range: 0.001 is not",
        ),
        (lambda c: c.update(epochs=3), "epochs"),
        (lambda c: c["training"].update(epochs="fifty"), "fifty"),
        (
            lambda c: c["cnn"]["variants"].update({"bad-name": {}}),
            "cnn.variants.bad-name: a model name may hold only",
        ),
        (
            lambda c: c["cnn"]["variants"].update(resnet18_x={}),
            "cnn.variants.resnet18_x: names starting with",
        ),
        (lambda c: c["cnn"]["variants"]["baseline"].update(eval_batch_size=8), "eval_batch_size"),
        (six_layers, "cnn.variants.deep.channels: 4 conv blocks + 2 FC layers = 6 layers"),
        (lambda c: c["dataset"].update(image_size=100), "dataset.image_size: 100 px does not divide by 8"),
        (
            lambda c: c["transfer"]["training"].update(warmup_epochs=15),
            "warmup_epochs 15 must be fewer than epochs 15",
        ),
        (lambda c: c["transfer"].update(modes=["bn_frozen", "bn_thawed"]), "bn_thawed"),
        (lambda c: c["dataset"].update(md5="not-an-md5"), "not-an-md5"),
        (lambda c: c["cnn"]["variants"]["dropout"].update(dropout_fc=1.5), "1.5"),
        (lambda c: c.update(device="tpu"), "tpu"),
        (
            lambda c: c["transfer"].update(weights_url="https://example.org/resnet18.pth"),
            "transfer.weights_url: cannot verify 'resnet18.pth'",
        ),
        (
            lambda c: c["sweeps"].update(s={"model": "baseline", "grid": {"lr": ["1e-4"]}}),
            'sweeps.s.grid.lr = "1e-4": must be a number; YAML reads 1e-4 as text: write 1.0e-4',
        ),
        (
            lambda c: c["sweeps"].update(s={"model": "baseline", "grid": {"channels": [[8], [16]]}}),
            "sweeps.s.grid.channels: list-valued keys cannot be swept",
        ),
        (
            lambda c: c["sweeps"].update(s={"model": "vgg", "grid": {"lr": [0.1]}}),
            "sweeps.s.model: 'vgg' is not",
        ),
        (
            lambda c: c["sweeps"].update(baseline={"model": "baseline", "grid": {"lr": [0.1]}}),
            "a sweep has the same name",
        ),
    ],
    ids=[
        "unknown-key",
        "gradient-range-reversed",
        "gradient-range-empty",
        "unknown-top-level-key",
        "wrong-type",
        "unsafe-name",
        "colliding-name",
        "run-setting-per-variant",
        "six-weight-layers",
        "image-size-vs-pooling",
        "warmup-vs-epochs",
        "unknown-mode",
        "bad-md5",
        "out-of-range",
        "unknown-device",
        "weights-without-hash",
        "sweep-float-as-string",
        "sweep-list-key",
        "sweep-unknown-model",
        "sweep-name-collides",
    ],  # fmt: skip
)
def test_bad_config_stops_with_the_key_named(config, change, named):
    change(config)
    with pytest.raises(WorkflowError, match=re.escape(named)):
        validate_config(config)


def test_several_problems_are_reported_together(config):
    config["dataset"]["image_size"] = 100
    config["transfer"]["training"]["warmup_epochs"] = 99
    with pytest.raises(WorkflowError) as raised:
        validate_config(config)
    assert "image_size" in str(raised.value) and "warmup_epochs 99" in str(raised.value)


def problems_in(config):
    """The problem lines of ``config``'s validation error."""
    with pytest.raises(WorkflowError) as raised:
        validate_config(config)
    return [line.removeprefix("  - ") for line in str(raised.value).splitlines() if line.startswith("  - ")]


def test_an_unknown_key_names_the_key_meant(config):
    config["training"]["learning_rate"] = 0.1
    config["trainig"] = {"epochs": 3}
    config["epochs"] = 3
    config["cnn"]["variants"]["baseline"]["eval_batch_size"] = 8
    problems = {problem.split(":")[0]: problem for problem in problems_in(config)}
    assert problems["training.learning_rate = 0.1"].startswith(
        "training.learning_rate = 0.1: unknown key; did you mean `lr`? (allowed here: epochs, batch_size, lr,"
    )
    assert problems["training.learning_rate = 0.1"].endswith("eval_batch_size, compile)")
    assert "unknown key; did you mean `training`? (allowed here: paths," in problems['trainig = {"epochs"']
    assert "unknown key; `epochs` belongs under training" in problems["epochs = 3"]
    assert "`eval_batch_size` belongs under training" in problems["cnn.variants.baseline.eval_batch_size = 8"]
    assert len(problems) == 4


def test_a_number_yaml_reads_as_text_says_how_to_write_it(config):
    config["training"].update(yaml.safe_load("lr: 1e-4"))  # YAML 1.1: no point, so a string
    config["transfer"]["training"].update(yaml.safe_load("lr: 1.0e4"))  # no sign in the exponent
    assert problems_in(config) == [
        'training.lr = "1e-4": must be a number; YAML reads 1e-4 as text: write 1.0e-4',
        'transfer.training.lr = "1.0e4": must be a number; YAML reads 1.0e4 as text: write 1.0e+4',
    ]


def test_a_wrong_type_shows_the_type_allowed(config):
    config["training"]["epochs"] = "fifty"
    config["transfer"]["weights_sha256"] = 5
    config["tensorboard"] = "yes"
    assert problems_in(config) == [
        'tensorboard = "yes": must be true or false',
        'training.epochs = "fifty": must be an integer',
        "transfer.weights_sha256 = 5: must be text or null",
    ]


def test_every_schema_problem_is_one_line_of_one_message(config):
    config["training"]["betas"] = [0.9]
    config["transfer"]["modes"] = ["bn_frozen", "bn_thawed"]
    config["cnn"]["kernel_size"] = 4
    config["cnn"]["variants"]["dropout"]["dropout_fc"] = 1.5
    del config["seeds"]
    with pytest.raises(WorkflowError) as raised:
        validate_config(config)
    assert str(raised.value).splitlines() == [
        "Error validating config (5 problems):",
        "  - seeds: missing (one training run per model and seed)",
        "  - cnn.kernel_size = 4: not allowed: odd conv kernel size, px",
        "  - cnn.variants.dropout.dropout_fc = 1.5: must be below 1",
        "  - training.betas = [0.9]: needs at least 2 items",
        '  - transfer.modes[1] = "bn_thawed": must be one of bn_frozen, bn_unfrozen, full',
        "Every key's type, range and meaning: workflow/schemas/config.schema.yaml",
    ]


@pytest.mark.parametrize("where", [(), ("training",), ("cnn", "variants", "combined")])
def test_one_problem_gives_a_short_message_without_the_schema_or_the_config(config, where):
    section = config
    for key in where:
        section = section[key]
    section["typo_key"] = 1
    with pytest.raises(WorkflowError) as raised:
        validate_config(config)
    message = str(raised.value)
    assert len(message.splitlines()) < 15 and "Error validating config (1 problem)" in message
    assert not {"$defs", "unevaluatedProperties", "Failed validating", "bootstrap_seed"} & set(
        message.split()
    )


def test_the_demo_profile_refuses_a_remote_archive(config):
    update_config(config, load("profiles/demo/demo-config.yaml"))
    config["dataset"]["url"] = "https://example.org/imagenette2-160.tgz"
    with pytest.raises(WorkflowError, match="the demo profiles generate a local archive"):
        validate_config(config)


@pytest.mark.parametrize(
    "name, verifiable",
    [
        ("resnet18-f37072fd.pth", True),
        ("resnet18-f37072fd5c.pth", True),
        ("resnet18-8.pth", False),  # a random file's sha256 starts with 8 one time in 16
        ("resnet18-f37072f.pth", False),
        ("resnet18.pth", False),
    ],
)
def test_a_hash_in_the_weights_name_needs_eight_hex_digits(config, name, verifiable):
    assert bool(HUB_HASH_IN_NAME.search(name)) is verifiable
    config["transfer"]["weights_url"] = f"https://example.org/models/{name}"
    if verifiable:
        validate_config(config)
        return
    (problem,) = problems_in(config)
    assert problem.startswith(f"transfer.weights_url: cannot verify {name!r}: its name carries no torch.hub")
    assert "at least 8 hex digits" in problem and "transfer.weights_sha256 is required" in problem
    config["transfer"]["weights_sha256"] = "0" * 64
    validate_config(config)


def test_every_config_key_is_commented():
    """config.yaml reads like a methods section: every scalar setting carries a comment.

    Block headers (``key:`` followed by an indented block) and inline-mapping rows of a commented
    table (``baseline: {test_accuracy: …}``) are exempt."""
    text = (REPO / "config.yaml").read_text()
    lines = text.split("    statements:")[0].splitlines()  # the claims below it are described above it
    for number, line in enumerate(lines):
        if re.match(r"^\s*[a-z_0-9]+:", line) and "#" not in line:
            following = lines[number + 1] if number + 1 < len(lines) else ""
            block_key = line.rstrip().endswith(":") and following.strip()
            inline_row = line.strip().endswith("}")
            assert block_key or inline_row, f"config.yaml line {number + 1} has no comment: {line}"


# ---------------------------------------------------------------- each schema rule, in words
def problem_with(rule_schema, value):
    from jsonschema import Draft202012Validator

    from cnnstudy.base.config_schema import value_problem

    (error,) = Draft202012Validator(rule_schema).iter_errors(value)
    return value_problem("key", error)


@pytest.mark.parametrize(
    "rule_schema, value, line",
    [
        ({"minimum": 1}, 0, "key = 0: must be at least 1"),
        ({"exclusiveMinimum": 0}, 0, "key = 0: must be above 0"),
        ({"maximum": 1}, 2, "key = 2: must be at most 1"),
        ({"exclusiveMaximum": 1}, 1, "key = 1: must be below 1"),
        ({"type": ["integer", "null"]}, "x", 'key = "x": must be an integer or null'),
        ({"type": "integer"}, "3", 'key = "3": must be an integer'),  # the number hint is for numbers only
        ({"type": "number"}, "abc", 'key = "abc": must be a number'),  # not a number written as text
        ({"type": "number"}, " 5 ", 'key = " 5 ": must be a number; remove the quotes: write 5'),
        ({"type": "number"}, "2E-3", 'key = "2E-3": must be a number; YAML reads 2E-3 as text: write 2.0e-3'),
        (
            {"type": "number"},
            "1.5e4",
            'key = "1.5e4": must be a number; YAML reads 1.5e4 as text: write 1.5e+4',
        ),
        ({"type": "array"}, 1, "key = 1: must be a list"),
        ({"enum": [1, "a"]}, 2, "key = 2: must be one of 1, a"),
        ({"pattern": "^[a-f0-9]{32}$"}, "x", 'key = "x": must match the pattern ^[a-f0-9]{32}$'),
        ({"minItems": 1}, [], "key = []: needs at least 1 item"),
        ({"minItems": 2}, [1], "key = [1]: needs at least 2 items"),
        ({"minLength": 1}, "", 'key = "": needs at least 1 character'),
        ({"minLength": 3}, "ab", 'key = "ab": needs at least 3 characters'),
        ({"minProperties": 1}, {}, "key = {}: needs at least 1 entry"),
        ({"minProperties": 2}, {"a": 1}, 'key = {"a": 1}: needs at least 2 entries'),
        ({"maxItems": 1}, [1, 2], "key = [1, 2]: holds at most 1 items"),
        ({"uniqueItems": True}, [1, 1], "key = [1, 1]: must not repeat an item"),
        ({"not": {"multipleOf": 2}, "description": "odd"}, 4, "key = 4: not allowed: odd"),
        ({"not": {"multipleOf": 2}}, 4, "key = 4: 4 should not be valid under {'multipleOf': 2}"),
        ({"multipleOf": 2, "description": "even"}, 3, "key = 3: 3 is not a multiple of 2"),
    ],
)
def test_each_schema_rule_reads_as_one_sentence(rule_schema, value, line):
    assert problem_with(rule_schema, value) == line


def test_a_value_is_shown_as_yaml_writes_it_and_cut_to_sixty_characters():
    import datetime

    from cnnstudy.base.config_schema import _shown

    assert _shown("é" * 60) == '"' + "é" * 58 + "…"  # kept as written, not \u00e9, and cut to 60
    assert _shown("x" * 58) == '"' + "x" * 58 + '"'  # 60 characters: whole
    assert _shown(datetime.date(2024, 6, 1)) == '"2024-06-01"'  # YAML reads a bare date as a date
    assert _shown([True, None]) == "[true, null]"


def test_a_missing_key_says_what_it_is_for_when_the_schema_says(config):
    del config["dataset"]["md5"], config["seeds"]
    assert problems_in(config) == [
        "seeds: missing (one training run per model and seed)",
        "dataset.md5: missing",
    ]


def test_a_config_that_is_not_a_mapping_is_named_as_the_config():
    with pytest.raises(WorkflowError, match=r"  - the config = \[1\]: must be a mapping of keys"):
        validate_config([1])


@pytest.mark.parametrize(
    "key, meant",
    [
        ("learning_rate", "lr"),  # its words in the key's description ("Adam's learning rate")
        ("Learning_Rate", "lr"),  # in any case
        ("learn_rate", "lr"),  # its initials
        ("L2_penalty", "weight_decay"),  # words of one description
        ("flip", "augmentation"),
        ("wd", "weight_decay"),  # the initials of an allowed key
        ("batchsize", "batch_size"),  # a near spelling
        ("early_stop", "early_stopping_patience"),  # near enough
        ("warm_up", "warmup_epochs"),
    ],
)
def test_an_unknown_training_key_names_the_key_meant(config, key, meant):
    config["training"][key] = 1
    (line,) = problems_in(config)
    assert line.startswith(f"training.{key} = 1: unknown key; did you mean `{meant}`? (allowed here: epochs,")


@pytest.mark.parametrize("key", ["zzz", "adam", "colour"])  # "adam", "colour": in several descriptions
def test_an_unknown_key_without_a_likely_meaning_lists_what_is_allowed(config, key):
    config["training"][key] = 1
    (line,) = problems_in(config)
    assert line.startswith(f"training.{key} = 1: unknown key (allowed here: epochs, batch_size, lr,")


def test_a_key_of_another_section_names_where_it_belongs(config):
    config["cnn"]["variants"]["baseline"]["modes"] = ["bn_frozen"]
    config["dataset"]["batch_size"] = 3
    problems = problems_in(config)
    assert any(p.startswith("dataset.batch_size = 3: unknown key; `batch_size` belongs under conv_stub or training (")
               for p in problems)  # fmt: skip
    assert any("`modes` belongs under transfer (allowed" in p for p in problems)


# ---------------------------------------------------------------- what defines a model, in full
def test_what_the_code_adds_to_each_models_settings(config):
    cnn = hyperparameters(config, "batchnorm", seed=3)
    assert {key: cnn[key] for key in ("architecture", "normalization", "model", "seed", "image_size", "dataset")} == {
        "architecture": "cnn", "normalization": "dataset", "model": "batchnorm", "seed": 3, "image_size": 160,
        "dataset": "imagenette2-160",
    }  # fmt: skip
    resnet = hyperparameters(config, "resnet18_bn_frozen", seed=2)
    added = ("architecture", "mode", "weights", "normalization", "model", "seed", "image_size", "dataset")
    assert {key: resnet[key] for key in added} == {
        "architecture": "resnet18", "mode": "bn_frozen", "weights": "IMAGENET1K_V1", "normalization": "imagenet",
        "model": "resnet18_bn_frozen", "seed": 2, "image_size": 160, "dataset": "imagenette2-160",
    }  # fmt: skip


def test_a_sweep_point_is_its_base_variant_with_the_points_values(config):
    from cnnstudy.base.settings import sweep_hyperparameters

    config["sweeps"] = {"lr": {"model": "dropout", "grid": {"lr": [1.0e-4, 1.0e-3]}}}
    point = sweep_hyperparameters(config, "lr", "lr~0.001", seed=5)
    base = hyperparameters(config, "dropout", seed=5)
    assert point == {**base, "lr": 1.0e-3, "model": "lr/lr~0.001", "base_model": "dropout", "sweep": "lr"}


def test_seed_suffixes_and_sorted_params():
    from cnnstudy.base.settings import seed_suffix, sorted_keys

    assert [seed_suffix(seed) for seed in (0, 1, 12)] == ["", "-seed1", "-seed12"]
    nested = sorted_keys({"b": [{"d": 1, "c": 2}], "a": {"y": 1, "x": [3, 1]}})
    assert repr(nested) == "{'a': {'x': [3, 1], 'y': 1}, 'b': [{'c': 2, 'd': 1}]}"


def test_the_prepared_dataset_record_names_the_archive_and_every_split_setting(config):
    from cnnstudy.base.settings import prepared_dataset

    assert prepared_dataset(config) == {
        "name": "imagenette2-160", "archive_md5": "e793b78cc4c9e9a4ccc0c1155377a412", "skip_corrupt": False,
        "image_size": 160, "validation_fraction": config["dataset"]["validation_fraction"],
        "split_seed": config["dataset"]["split_seed"],
    }  # fmt: skip


@pytest.mark.parametrize("images", [{"train": 10}, [10, 10], {"val": 10}])
def test_counts_without_both_training_splits_are_not_used(config, tmp_path, images):
    import json

    from cnnstudy.base.settings import prepared_dataset, prepared_split_counts

    path = tmp_path / "split_counts.json"
    path.write_text(json.dumps({"dataset": prepared_dataset(config), "images": images}))
    assert prepared_split_counts(config, path) is None
    path.write_text(json.dumps({"dataset": prepared_dataset(config), "images": {"train": 1, "val": 2}}))
    assert prepared_split_counts(config, path)["images"] == {"train": 1, "val": 2}


def test_a_batch_as_large_as_the_training_split_fits(config):
    from cnnstudy.base.settings import prepared_dataset, split_size_problems

    config["cnn"]["probe_size"] = 20
    counts = {"dataset": prepared_dataset(config), "images": {"train": 128, "val": 20}}
    assert split_size_problems(config, counts) == []
    counts["images"] = {"train": 127, "val": 20}
    assert split_size_problems(config, counts) == [
        "training.batch_size: 128 exceeds the 127 training images; lower it, or dataset.validation_fraction"
    ]


def test_the_split_sizes_check_counts_its_problems_in_words(config, tmp_path):
    import json

    from cnnstudy.base.settings import prepared_dataset, validate_split_sizes

    path = tmp_path / "split_counts.json"
    path.write_text(json.dumps({"dataset": prepared_dataset(config), "images": {"train": 127, "val": 5000}}))
    with pytest.raises(WorkflowError) as raised:
        validate_split_sizes(config, path)
    lines = str(raised.value).splitlines()
    assert lines[0] == "Error validating config against the prepared data (1 problem):"
    assert lines[1].startswith("  - training.batch_size: 128 exceeds the 127 training images")
    assert lines[2].startswith(f"{path}: 127 training and 5000 validation images")


def test_exactly_two_problems_are_counted_as_two(config):
    config["dataset"]["image_size"] = 100
    config["training"]["gradient_range"] = [1.0, 1.0e-9]
    with pytest.raises(WorkflowError, match=r"^Error validating config \(2 problems\):"):
        validate_config(config)


def test_cross_key_problems_word_for_word(config):
    config["dataset"]["image_size"] = 100
    config["cnn"]["variants"]["dropout"].update(schedule="warmup_cosine", warmup_epochs=60)
    config["transfer"]["training"]["warmup_epochs"] = 99
    config["study"]["claims"]["statements"].append(
        {
            "id": "vgg",
            "text": "t",
            "measure": "test_accuracy",
            "outcome": "better",
            "models": ["vgg", "resnet18_full"],
        }
    )
    assert (
        problems_in(config)
        == [
            "dataset.image_size: 100 px does not divide by 8 (3 conv blocks, each halving the size with a 2×2 "
            "max-pool); use a multiple of 8, e.g. 96",
            "dropout: warmup_epochs 60 must be fewer than epochs 50; change cnn.variants.dropout.warmup_epochs or "
            "training.warmup_epochs",
            "resnet18_bn_frozen: warmup_epochs 99 must be fewer than epochs 15; change transfer.training.warmup_epochs "
            "or training.warmup_epochs",
            "resnet18_bn_unfrozen: warmup_epochs 99 must be fewer than epochs 15; change "
            "transfer.training.warmup_epochs or training.warmup_epochs",
            "study.claims.statements vgg: unknown models ['vgg']",  # resnet18_full is a study model, if not trained
        ]
    )


def test_sweep_problems_word_for_word(config):
    config["sweeps"] = {
        "a": {"model": "vgg", "grid": {"lr": [0.1]}},  # the first sweep's problem does not hide the next's
        "b": {"model": "baseline", "grid": {"foo": [1], "lr": [-1.0, "x"]}},
        "c": {"model": "dropout", "grid": {"channels": [[8]], "epochs": [1]}},
    }
    assert problems_in(config) == [
        "sweeps.a.model: 'vgg' is not a variant under cnn.variants",
        "sweeps.b.grid.foo: not a key of `training` or `cnn` that defines a model",
        "sweeps.b.grid.lr = -1.0: must be above 0",
        'sweeps.b.grid.lr = "x": must be a number',
        "sweeps.c.grid.channels: list-valued keys cannot be swept; make a variant per value instead",
    ]


def test_a_sweep_point_is_checked_like_a_model(config):
    config["sweeps"] = {"deep": {"model": "baseline", "grid": {"warmup_epochs": [2], "schedule": ["warmup_cosine"],
                                                               "epochs": [2]}}}  # fmt: skip
    assert problems_in(config) == [
        "sweeps.deep point warmup_epochs~2/schedule~warmup_cosine/epochs~2: warmup_epochs 2 must be fewer than "
        "epochs 2; change sweeps.deep.grid.warmup_epochs or cnn.variants.baseline.warmup_epochs or "
        "training.warmup_epochs"
    ]
    config["sweeps"] = {"wide": {"model": "baseline", "grid": {"image_size_typo": [1]}}}
    assert problems_in(config) == [
        "sweeps.wide.grid.image_size_typo: not a key of `training` or `cnn` that defines a model"
    ]


def test_a_sweep_name_must_be_a_plain_name(config):
    config["sweeps"] = {"bad name": {"model": "baseline", "grid": {"lr": [0.1]}}}
    assert "sweeps.bad name: a sweep name may hold only letters, digits and underscores" in problems_in(
        config
    )


def test_the_split_sizes_check_lists_every_problem_on_its_own_line(config, tmp_path):
    import json

    from cnnstudy.base.settings import prepared_dataset, validate_split_sizes

    path = tmp_path / "split_counts.json"
    path.write_text(json.dumps({"dataset": prepared_dataset(config), "images": {"train": 127, "val": 10}}))
    with pytest.raises(WorkflowError) as raised:
        validate_split_sizes(config, path)
    lines = str(raised.value).splitlines()
    assert lines[0] == "Error validating config against the prepared data (2 problems):"
    assert lines[1].startswith("  - training.batch_size: 128 exceeds") and lines[2].startswith(
        "  - cnn.probe_size:"
    )


@pytest.mark.parametrize("scheme", ["http", "https", "ftp"])
def test_the_demo_profile_refuses_every_remote_scheme(config, scheme):
    update_config(config, load("profiles/demo/demo-config.yaml"))
    config["dataset"]["url"] = f"{scheme}://example.org/imagenette2-160.tgz"
    (problem,) = problems_in(config)
    assert problem.startswith(f"dataset.url: the demo profiles generate a local archive, so the url must be a "
                              f"local path, not {scheme}://example.org/imagenette2-160.tgz")  # fmt: skip


def test_weights_to_verify_are_named_in_full_and_a_random_start_needs_none(config):
    config["transfer"]["weights_url"] = "https://example.org/resnet18.pth"
    assert problems_in(config) == [
        "transfer.weights_url: cannot verify 'resnet18.pth': its name carries no torch.hub hash prefix of at least "
        "8 hex digits (resnet18-f37072fd.pth), so transfer.weights_sha256 is required: set it to the file's sha256 "
        "(64 hex digits), or use a file with such a name"
    ]
    config["transfer"]["weights"] = "none"  # a random start downloads nothing
    validate_config(config)


def test_every_point_of_a_sweep_is_checked(config):
    config["cnn"]["variants"]["baseline"].update(schedule="warmup_cosine")
    config["sweeps"] = {"warm": {"model": "baseline", "grid": {"warmup_epochs": [60, 70]}}}
    assert [problem.split(":")[0] for problem in problems_in(config)] == [
        "sweeps.warm point warmup_epochs~60",
        "sweeps.warm point warmup_epochs~70",
    ]
