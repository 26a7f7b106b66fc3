# Shared by all the rule files. Config validation, paths, wildcard constraints, input functions and
# the list of final targets.

import os
import sys
import urllib.parse
from pathlib import Path

# Rule scripts import the study's package from workflow/; so do the helpers below.
PACKAGE_DIR = str(Path(workflow.basedir) / "workflow")
sys.path.insert(0, PACKAGE_DIR)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [PACKAGE_DIR, os.environ.get("PYTHONPATH")])
    )
)

from cnnstudy.settings import (
    cnn_models,
    hyperparameters,
    model_names,
    transfer_models,
    validate_config,
)

validate_config(config)  # a typo or unknown model stops here, before any job runs

RESULTS = config["paths"]["results"]
RESOURCES = config["paths"]["resources"]
LOGS = config["paths"]["logs"]
BENCHMARKS = config["paths"]["benchmarks"]
DATA = f"{RESULTS}/data"
MODELS = model_names(config)
SEEDS = config["seeds"]
DATASET = config["dataset"]


wildcard_constraints:
    model="|".join(MODELS),
    variant="|".join(cnn_models(config)),
    mode="|".join(config["transfer"]["modes"]),
    seed_suffix="(-seed[0-9]+)?",  # empty for the first seed; -seed<N> for each further one


def seed_suffixes():
    """'' for the first seed (results/models/<model>/…), '-seed<N>' for the others (<model>-seed<N>/)."""
    return [""] + [f"-seed{seed}" for seed in SEEDS[1:]]


def seed_of(wildcards):
    return (
        int(wildcards.seed_suffix.removeprefix("-seed"))
        if wildcards.seed_suffix
        else SEEDS[0]
    )


def local_path(source):
    """The file behind a local path or file:// URL (so Snakemake tracks it), else None."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "file":
        return urllib.parse.unquote(parsed.path)
    return None if parsed.scheme in ("http", "https", "ftp") else source


def dataset_archive_input(wildcards):
    path = local_path(DATASET["url"])
    return [path] if path else []


def dataset_dir():
    return f"{RESOURCES}/datasets/{DATASET['name']}"


def weights_file():
    name = Path(urllib.parse.urlparse(config["transfer"]["weights_url"]).path).name
    return f"{RESOURCES}/torch/hub/checkpoints/{name}"


def pretrained_weights_input(wildcards):
    return [] if config["transfer"]["weights"] == "none" else [weights_file()]


def model_hyperparameters(wildcards):
    model = getattr(wildcards, "variant", None) or f"resnet18_{wildcards.mode}"
    return hyperparameters(config, model, seed_of(wildcards))


def all_runs(pattern, models=MODELS):
    """``pattern`` for every model and seed, model by model."""
    return expand(pattern, model=models, seed_suffix=seed_suffixes())


def per_model(pattern, models):
    return expand(pattern, model=models)


TRAINING_OUTPUTS = {
    "checkpoint": "checkpoint.pt",
    "history": "history.csv",
    "gradients": "gradients.csv",
    "summary": "summary.json",
}


def training_outputs(model_dir):
    """What train_cnn and finetune_resnet18 both write, so evaluation treats every model alike."""
    return {
        key: f"{RESULTS}/models/{model_dir}{{seed_suffix}}/{name}"
        for key, name in TRAINING_OUTPUTS.items()
    }


def get_final_output():
    """Everything `snakemake` with no target builds: the whole study."""
    figures = f"{RESULTS}/figures"
    targets = [f"{RESULTS}/conv_stub/report.md", f"{RESULTS}/tables/summary.md"]
    for kind in ("confusion", "curves", "gradients"):
        targets += expand(f"{figures}/{kind}/{{model}}.png", model=MODELS)
    targets += [
        f"{figures}/comparison_accuracy.png",
        f"{figures}/comparison_curves.png",
    ]
    if cnn_models(config):
        targets.append(f"{figures}/dead_units.png")
    if "combined" in MODELS and transfer_models(config):
        targets.append(f"{figures}/comparison_transfer.png")
    return targets
