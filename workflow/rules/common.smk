# Shared by every file in workflow/rules: config validation, paths, wildcard constraints, code
# fingerprints, input functions and the list of final targets.

import os
import re
import shutil
import sys
import urllib.parse
from functools import cache
from pathlib import Path

# Rule scripts import the study's package from workflow/; so do the helpers below.
PACKAGE_DIR = str(Path(workflow.basedir) / "workflow")
sys.path.insert(0, PACKAGE_DIR)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [PACKAGE_DIR, os.environ.get("PYTHONPATH")])
    )
)

from cnnstudy.codeversion import code_fingerprint
from cnnstudy.layout import EVALUATION_OUTPUTS, TRAINING_OUTPUTS
from cnnstudy.settings import (
    cnn_models,
    hyperparameters,
    model_names,
    seed_suffix,
    sweep_hyperparameters,
    sweep_points,
    transfer_models,
    validate_config,
)

validate_config(
    config
)  # a typo or an impossible setting stops here, before any job runs

RESULTS = config["paths"]["results"]
RESOURCES = config["paths"]["resources"]
LOGS = config["paths"]["logs"]
BENCHMARKS = config["paths"]["benchmarks"]
DATA = f"{RESULTS}/data"
FIGURES = f"{RESULTS}/figures"
TABLES = f"{RESULTS}/tables"
MODELS = model_names(config)
CNN_MODELS = cnn_models(config)
TRANSFER_MODELS = transfer_models(config)
SEEDS = config["seeds"]
DATASET = config["dataset"]
SWEEPS = {name: sweep_points(config, name) for name in config["sweeps"]}
# A job configured for the CPU takes no GPU slot, locally or on a cluster.
GPUS_PER_JOB = 0 if config["device"] == "cpu" else 1
# A run's folder: models/<model>/ for seed 0 and models/<model>-seed<N>/ for seed N, whatever the order of
# `seeds`; a sweep's grid point keeps one folder per seed: sweeps/<sweep>/<point>/seed<N>/.
RUN = f"{RESULTS}/models/{{model}}{{seed_suffix}}"
EVALUATED = f"{RESULTS}/eval/{{model}}{{seed_suffix}}"
SWEEP_RUN = f"{RESULTS}/sweeps/{{sweep}}/{{point}}/seed{{seed}}"


def alternatives(names):
    """A wildcard constraint matching exactly ``names`` (escaped: names come from the config)."""
    # a group, never an empty string: Snakemake would read "" as no constraint (.+) and "" is seed 0's suffix
    names = list(names)
    return "(?:" + ("|".join(map(re.escape, names)) if names else "(?!)") + ")"


wildcard_constraints:
    model=alternatives(MODELS),
    seed_suffix=alternatives(seed_suffix(seed) for seed in SEEDS),
    seed=alternatives(str(seed) for seed in SEEDS),
    sweep=alternatives(SWEEPS),
    point=alternatives(point for points in SWEEPS.values() for point in points),


@cache
def code_version(script):
    """A fingerprint of the study's modules ``script`` runs (cnnstudy/codeversion.py says why a param)."""
    return code_fingerprint(Path(workflow.basedir) / "workflow" / "scripts" / script)


def seed_of(wildcards):
    return int(wildcards.seed_suffix.removeprefix("-seed") or 0)


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


def point_hyperparameters(wildcards):
    return sweep_hyperparameters(
        config, wildcards.sweep, wildcards.point, int(wildcards.seed)
    )


def runs(pattern, models=MODELS):
    """``pattern`` (with {model} and {seed_suffix}) for every model and seed, model by model."""
    return expand(pattern, model=models, seed_suffix=map(seed_suffix, SEEDS))


def model_runs(pattern):
    """Input function: ``pattern`` for every seed of the wildcards' model."""
    return lambda wildcards: expand(
        pattern, model=wildcards.model, seed_suffix=map(seed_suffix, SEEDS)
    )


def sweep_runs(pattern, sweep):
    return expand(pattern, sweep=sweep, point=SWEEPS[sweep], seed=SEEDS)


def outputs_in(folder, names):
    return {key: f"{folder}/{name}" for key, name in names.items()}


TRAINED_RUNS = {
    "histories": f"{RUN}/{TRAINING_OUTPUTS['history']}",
    "summaries": f"{RUN}/{TRAINING_OUTPUTS['summary']}",
}
EVALUATED_RUNS = {
    "confusions": f"{EVALUATED}/{EVALUATION_OUTPUTS['confusion']}",
    "metrics": f"{EVALUATED}/{EVALUATION_OUTPUTS['metrics']}",
}


def per_model_report(path, subcategory, figure, category="2. Training"):
    return report(
        path,
        caption=f"../report/{Path(path).parent.name}.rst",
        category=category,
        subcategory=subcategory,
        labels={"what": figure, "which": "{model}"},
    )


def table_outputs(name, what, which, caption, category, subcategory=None):
    """A table's CSV, Markdown, and HTML (the one the report shows inline)."""
    return {
        "csv": f"{TABLES}/{name}.csv",
        "markdown": f"{TABLES}/{name}.md",
        "html": report(
            f"{TABLES}/{name}.html",
            caption=f"../report/{caption}.rst",
            category=category,
            subcategory=subcategory,
            labels={"what": what, "which": which},
        ),
    }


def prefixed(prefix, outputs):
    return {f"{prefix}_{key}": path for key, path in outputs.items()}


def get_final_output():
    """Everything `snakemake` with no target builds: the whole study."""
    targets = [
        f"{RESULTS}/conv_stub/report.html",
        f"{TABLES}/summary.html",
        f"{TABLES}/per_class.html",
        f"{TABLES}/comparisons.html",
        f"{TABLES}/claims.html",
        f"{RESULTS}/report/config.html",
        f"{RESULTS}/report/landing.rst",
        f"{FIGURES}/comparison_accuracy.png",
        f"{FIGURES}/comparison_curves.png",
        f"{FIGURES}/comparison_effects.png",
    ]
    for kind in ("confusion", "curves", "gradients"):
        targets += expand(f"{FIGURES}/{kind}/{{model}}.png", model=MODELS)
    if CNN_MODELS:
        targets.append(f"{FIGURES}/dead_units.png")
    if "combined" in MODELS and TRANSFER_MODELS:
        targets.append(f"{FIGURES}/comparison_transfer.png")
    for sweep in SWEEPS:
        targets += [f"{TABLES}/sweep_{sweep}.html", f"{FIGURES}/sweep_{sweep}.png"]
        targets += sweep_runs(f"{SWEEP_RUN}/confusion.png", sweep)
    return targets


def landing_page():
    written = Path(RESULTS, "report", "landing.rst").resolve()
    return str(written) if written.exists() else "workflow/report/workflow.rst"


def forget_finished_runs():
    """Once Snakemake has recorded every job of a run as complete, the hard links that let a rerun put
    back outputs Snakemake had discarded (cnnstudy/resume.py) are not needed; without them a
    --forcerun trains again instead of restoring."""
    for folder in Path(RESULTS).glob("**/resume/finished"):
        shutil.rmtree(folder, ignore_errors=True)
