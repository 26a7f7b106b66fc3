"""The configuration: validation, model names, and each model's settings.

A model's settings come in two parts. ``hyperparameters`` defines the model: change one and the model is
retrained (it is a rule param, which Snakemake compares). The run settings (``jobs.run_settings``: device,
evaluation batch size, torch.compile) only say how a job runs: jobs read them from the config, so
changing them reruns nothing. Checkpoints store both.
"""

import copy
import itertools
import re
import urllib.parse
from pathlib import Path

from cnnstudy.base.config_schema import SCHEMA, schema, schema_problems, value_problem
from cnnstudy.base.jobs import RUN_SETTING_KEYS
from cnnstudy.base.layout import HUB_HASH_IN_NAME

TRANSFER_PREFIX = "resnet18_"
ARCHITECTURE_KEYS = (
    "channels",
    "kernel_size",
    "fc_hidden",
    "batchnorm",
    "dropout_conv",
    "dropout_fc",
    "probe_size",
)
LIST_KEYS = ("channels", "betas", "gradient_epochs", "gradient_range")  # not sweepable: one value is a list
# Keys the schema types as `number` (a value, or each item): a whole number given to one becomes a float,
# so `0` and `0.0` are one param (tests check this list against the schema; no YAML read at run time).
NUMBER_KEYS = frozenset(
    ("lr", "betas", "weight_decay", "jitter", "gradient_range", "dropout_conv", "dropout_fc")
)
# The order of a model's hyper-parameters, whatever the order of the YAML's keys: Snakemake compares a
# param by its repr, so one order keeps a reordered config from retraining anything. It is the order the
# default config.yaml gives (`training`, the architecture, what the code adds); keys not listed follow,
# sorted.
HYPERPARAMETER_ORDER = (
    "epochs",
    "batch_size",
    "lr",
    "betas",
    "weight_decay",
    "schedule",
    "warmup_epochs",
    "early_stopping_patience",
    "augmentation",
    "jitter",
    "precision",
    "gradient_epochs",
    "gradient_range",
    "gradient_bins_per_decade",
    *ARCHITECTURE_KEYS,
    "architecture",
    "mode",
    "weights",
    "normalization",
    "model",
    "seed",
    "image_size",
    "dataset",
    "base_model",
    "sweep",
)
MAX_WEIGHT_LAYERS = 5  # the assignment: at most five layers with weights (convs + FC1 + FC2)
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
STUDY_MODELS = ("baseline", "batchnorm", "dropout", "augmentation", "combined") + tuple(
    TRANSFER_PREFIX + mode for mode in ("bn_frozen", "bn_unfrozen", "full")
)


class ConfigError(ValueError):
    """The configuration breaks a rule JSON Schema cannot express; lists every problem with its key."""


def validate_config(config):
    """Stop with one line per problem, each naming its key, when ``config`` is invalid.

    First the schema (types, ranges, unknown keys), then, once it passes, the rules that span several keys.
    """
    from snakemake.exceptions import WorkflowError

    problems = schema_problems(config) or config_problems(config)
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise WorkflowError(
            f"Error validating config ({count}):\n{listing}\n"
            f"Every key's type, range and meaning: workflow/schemas/{SCHEMA.name}"
        )


def config_problems(config):
    """Every cross-key problem of a schema-valid config, as 'key: what is wrong; what to do' lines."""
    problems = _name_problems(config)
    image_size = config["dataset"]["image_size"]
    for variant in cnn_models(config):
        hp = hyperparameters(config, variant, seed=0)
        problems += _architecture_problems(f"cnn.variants.{variant}", hp, image_size)
    problems = list(dict.fromkeys(problems))  # one image-size message for all variants alike
    for model in model_names(config):
        problems += _schedule_problems(
            model, hyperparameters(config, model, seed=0), _sections(config, model)
        )
    problems += _sweep_problems(config)
    problems += _source_problems(config)
    claim_models = set(model_names(config)) | set(STUDY_MODELS)
    for statement in config["study"]["claims"]["statements"]:
        unknown = [model for model in statement["models"] if model not in claim_models]
        if unknown:
            problems.append(f"study.claims.statements {statement['id']}: unknown models {unknown}")
    low, high = config["training"]["gradient_range"]
    if low >= high:
        problems.append(f"training.gradient_range: {low} is not below {high}")
    return problems


def _name_problems(config):
    problems = []
    sweeps = config["sweeps"]
    for name in cnn_models(config):
        where = f"cnn.variants.{name}"
        if not NAME.match(name):
            problems.append(f"{where}: a model name may hold only letters, digits and underscores")
        elif name.startswith(TRANSFER_PREFIX):
            problems.append(f"{where}: names starting with {TRANSFER_PREFIX!r} are the ResNet-18 models")
        elif name in sweeps:
            problems.append(f"{where}: a sweep has the same name; rename one of them")
    for name in sweeps:
        if not NAME.match(name):
            problems.append(f"sweeps.{name}: a sweep name may hold only letters, digits and underscores")
    return problems


def _architecture_problems(where, hp, image_size):
    problems = []
    weight_layers = len(hp["channels"]) + 2
    if weight_layers > MAX_WEIGHT_LAYERS:
        problems.append(
            f"{where}.channels: {len(hp['channels'])} conv blocks + 2 FC layers = {weight_layers} layers with "
            f"weights; the assignment allows at most {MAX_WEIGHT_LAYERS}"
        )
    pooling = 2 ** len(hp["channels"])
    if image_size % pooling:
        problems.append(
            f"dataset.image_size: {image_size} px does not divide by {pooling} ({len(hp['channels'])} conv "
            f"blocks, each halving the size with a 2×2 max-pool); use a multiple of {pooling}, e.g. "
            f"{max(pooling, image_size // pooling * pooling)}"
        )
    return problems


def _schedule_problems(model, hp, where):
    if hp["schedule"] == "warmup_cosine" and hp["warmup_epochs"] >= hp["epochs"]:
        return [
            f"{model}: warmup_epochs {hp['warmup_epochs']} must be fewer than epochs {hp['epochs']}; change "
            f"{' or '.join(f'{section}.warmup_epochs' for section in where)}"
        ]
    return []


def _sections(config, model):
    """The config sections a model's training keys come from, most specific first."""
    if model in config["cnn"]["variants"]:
        return [f"cnn.variants.{model}", "training"]
    return ["transfer.training", "training"]


def _sweep_problems(config):
    from jsonschema import Draft202012Validator

    definitions = schema()["$defs"]
    keys = {**definitions["training_keys"]["properties"], **definitions["architecture_keys"]["properties"]}
    problems = []
    for name, sweep in config["sweeps"].items():
        if sweep["model"] not in cnn_models(config):
            problems.append(f"sweeps.{name}.model: {sweep['model']!r} is not a variant under cnn.variants")
            continue
        for key, values in sweep["grid"].items():
            where = f"sweeps.{name}.grid.{key}"
            if key in LIST_KEYS:
                problems.append(
                    f"{where}: list-valued keys cannot be swept; make a variant per value instead"
                )
            elif key not in keys:
                problems.append(f"{where}: not a key of `training` or `cnn` that defines a model")
            else:
                checker = Draft202012Validator({"$defs": definitions, **keys[key]})
                for value in values:
                    problems += [value_problem(where, error) for error in checker.iter_errors(value)]
        if not problems:
            for point, values in sweep_points(config, name).items():
                hp = hyperparameters(config, sweep["model"], 0, overrides=values)
                problems += _architecture_problems(f"sweeps.{name}", hp, config["dataset"]["image_size"])
                where = [f"sweeps.{name}.grid", *_sections(config, sweep["model"])]
                problems += _schedule_problems(f"sweeps.{name} point {point}", hp, where)
    return problems


def _source_problems(config):
    problems = []
    dataset = config["dataset"]
    if "demo_archive" in dataset and urllib.parse.urlparse(dataset["url"]).scheme in ("http", "https", "ftp"):
        problems.append(
            f"dataset.url: the demo profiles generate a local archive, so the url must be a local path, not "
            f"{dataset['url']}; to use a real archive, run without --profile profiles/demo"
        )
    transfer = config["transfer"]
    if transfer["weights"] != "none" and not transfer.get("weights_sha256"):
        name = Path(urllib.parse.urlparse(transfer["weights_url"]).path).name
        if not HUB_HASH_IN_NAME.search(name):
            problems.append(
                f"transfer.weights_url: cannot verify {name!r}: its name carries no torch.hub hash prefix of at "
                "least 8 hex digits (resnet18-f37072fd.pth), so transfer.weights_sha256 is required: set it to "
                "the file's sha256 (64 hex digits), or use a file with such a name"
            )
    return problems


def cnn_models(config):
    """The custom CNN's variants, in config order."""
    return list(config["cnn"]["variants"])


def transfer_models(config):
    return [TRANSFER_PREFIX + mode for mode in config["transfer"]["modes"]]


def model_names(config):
    """Every model the study trains, in the order tables and figures show them."""
    return cnn_models(config) + transfer_models(config)


def seed_suffix(seed):
    """A run's folder depends on its seed's value only: models/<model>/ for 0, models/<model>-seed<N>/ else."""
    return "" if seed == 0 else f"-seed{seed}"


def hyperparameters(config, model, seed, overrides=None):
    """The flat dict that defines ``model``'s training run (stored in every checkpoint).

    CNN variants: `training`, then `cnn`'s architecture, then the variant's own keys, then ``overrides``
    (a sweep's grid point). ResNet-18 modes: `training`, then `transfer.training`. Neither holds the
    other's keys, nor the run settings.
    """
    training = {key: value for key, value in config["training"].items() if key not in RUN_SETTING_KEYS}
    if model in config["cnn"]["variants"]:
        params = {**training, **{key: config["cnn"][key] for key in ARCHITECTURE_KEYS}}
        params.update(config["cnn"]["variants"][model])
        params.update(overrides or {})
        params.update(architecture="cnn", normalization="dataset")
    elif model in transfer_models(config):
        params = {**training, **config["transfer"]["training"]}
        params.update(
            architecture="resnet18",
            mode=model.removeprefix(TRANSFER_PREFIX),
            weights=config["transfer"]["weights"],
            normalization="imagenet",
        )
    else:
        raise ValueError(f"unknown model {model!r}; configured: {model_names(config)}")
    params.update(
        model=model, seed=seed, image_size=config["dataset"]["image_size"], dataset=config["dataset"]["name"]
    )
    return canonical(params)


def canonical(params):
    """``params`` in one form whatever the YAML looked like (a copy): keys in HYPERPARAMETER_ORDER, then
    any others sorted; a whole number given to a key the schema types as `number` becomes a float
    (``0`` and ``0.0`` are one learning rate), integer-typed keys stay integers."""
    known = [key for key in HYPERPARAMETER_ORDER if key in params]
    keys = known + sorted(set(params) - set(known))
    return {key: _as_float(params[key]) if key in NUMBER_KEYS else copy.deepcopy(params[key]) for key in keys}


def sorted_keys(value):
    """``value`` with every mapping's keys sorted and lists kept in order: a rule param (Snakemake compares
    its repr) that does not change when the YAML's keys are reordered."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


def _as_float(value):
    if isinstance(value, list):
        return [_as_float(item) for item in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def sweep_paramspace(config, sweep):
    """Snakemake's Paramspace over the full grid of ``sweep`` (one row per combination, config order)."""
    import pandas as pd
    from snakemake.utils import Paramspace

    grid = config["sweeps"][sweep]["grid"]
    rows = list(itertools.product(*grid.values()))
    return Paramspace(pd.DataFrame(rows, columns=list(grid)), single_wildcard="point")


def sweep_points(config, sweep):
    """Grid point path (e.g. ``lr~0.0001/batch_size~64``) → its values, as plain Python scalars."""
    space = sweep_paramspace(config, sweep)
    grid = config["sweeps"][sweep]["grid"]
    rows = itertools.product(*grid.values())
    return {
        point: dict(zip(grid, values, strict=True))
        for point, values in zip(space.instance_patterns, rows, strict=True)
    }


def sweep_model_name(sweep, point):
    return f"{sweep}/{point}"


def sweep_hyperparameters(config, sweep, point, seed):
    """A grid point's hyper-parameters: its base variant's, with the point's values."""
    base = config["sweeps"][sweep]["model"]
    hp = hyperparameters(config, base, seed, overrides=sweep_points(config, sweep)[point])
    hp.update(model=sweep_model_name(sweep, point), base_model=base, sweep=sweep)
    return canonical(hp)


# ---- split sizes against the prepared data (checked when the workflow is parsed) -------------------------
SPLIT_LIMITS = {"batch_size": "training", "probe_size": "validation"}  # which split a key takes images from


def prepared_dataset(config):
    """What prepare_dataset records of the data it made (the counts file's ``dataset``): the archive and
    every setting that decides which images land in which split."""
    dataset = config["dataset"]
    return {
        "name": dataset["name"],
        "archive_md5": dataset["md5"],
        "skip_corrupt": dataset["skip_corrupt"],
        "image_size": dataset["image_size"],
        "validation_fraction": dataset["validation_fraction"],
        "split_seed": dataset["split_seed"],
    }


def prepared_split_counts(config, path):
    """The counts file at ``path`` when it describes the data ``config`` asks for, else None (not prepared
    yet, or prepared from another archive or split: prepare_dataset checks the sizes itself then)."""
    import json

    try:
        counts = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(counts, dict) or counts.get("dataset") != prepared_dataset(config):
        return None
    images = counts.get("images")
    return counts if isinstance(images, dict) and {"train", "val"} <= set(images) else None


def _split_needs(config):
    """(key it comes from, images taken at once, split name) for every batch size and dead-unit probe a
    configured model uses, each under the exact key that sets it."""
    needs = []
    for variant, own in config["cnn"]["variants"].items():
        hp = hyperparameters(config, variant, seed=0)
        for key, default in (("batch_size", "training"), ("probe_size", "cnn")):
            where = f"cnn.variants.{variant}" if key in own else default
            needs.append((f"{where}.{key}", hp[key], SPLIT_LIMITS[key]))
    for model in transfer_models(config):
        where = "transfer.training" if "batch_size" in config["transfer"]["training"] else "training"
        needs.append(
            (f"{where}.batch_size", hyperparameters(config, model, seed=0)["batch_size"], "training")
        )
    for name, sweep in config["sweeps"].items():
        for key, values in sweep["grid"].items():
            if key in SPLIT_LIMITS:
                needs += [(f"sweeps.{name}.grid.{key}", value, SPLIT_LIMITS[key]) for value in values]
    return needs


def split_size_problems(config, counts):
    """One 'key: what is wrong; what to do' line for every batch size larger than the training split and
    every dead-unit probe larger than the validation split, given prepare_dataset's ``counts``."""
    available = {"training": counts["images"]["train"], "validation": counts["images"]["val"]}
    fix = {
        "training": "lower it, or dataset.validation_fraction",
        "validation": "lower it, or raise dataset.validation_fraction",
    }
    problems = []
    for where, value, split in _split_needs(config):
        if value > available[split]:
            problems.append(f"{where}: {value} exceeds the {available[split]} {split} images; {fix[split]}")
    return list(dict.fromkeys(problems))  # a key several models inherit, named once


def validate_split_sizes(config, counts_path):
    """With data already prepared for this config's archive and split (``counts_path``, written by
    prepare_dataset), stop with one line per batch size or probe its split cannot fill: when the workflow
    is parsed, before Snakemake deletes any model's finished outputs to retrain it. Reads that JSON file
    only."""
    from snakemake.exceptions import WorkflowError

    counts = prepared_split_counts(config, counts_path)
    problems = split_size_problems(config, counts) if counts else []
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        images = counts["images"]
        raise WorkflowError(
            f"Error validating config against the prepared data ({count}):\n{listing}\n"
            f"{counts_path}: {images['train']} training and {images['val']} validation images "
            f"(dataset.validation_fraction {config['dataset']['validation_fraction']} of "
            f"{config['dataset']['name']}'s train/ folder)"
        )
