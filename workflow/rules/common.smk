# Shared by every file in workflow/rules: config validation, paths, wildcard constraints, code
# fingerprints, input functions and the list of final targets.

import hashlib
import json
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

from snakemake.exceptions import WorkflowError

from cnnstudy.base.codeversion import code_fingerprint
from cnnstudy.base.locks import hold_results_folder
from cnnstudy.base.layout import EVALUATION_OUTPUTS, TRAINING_OUTPUTS
from cnnstudy.base.settings import (
    cnn_models,
    hyperparameters,
    model_names,
    prepared_split_counts,
    seed_suffix,
    sweep_hyperparameters,
    sorted_keys,
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
STUDY = sorted_keys(
    config["study"]
)  # a param: reordering its keys in the YAML reruns nothing
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


# Under the archive's md5: a changed dataset.md5 unpacks beside the old data and never touches them.
ARCHIVES = f"{RESOURCES}/archives"  # a verified archive kept at <md5>/<file name>


def dataset_dir():
    return f"{RESOURCES}/datasets/{DATASET['name']}/{DATASET['md5']}"


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


# Inside the models (rules/inspect.smk): one seed per model, the lowest, as the gradient figures.
INSPECTED_SEED = seed_suffix(min(SEEDS))
INSIDE = "6. Inside the models"  # the report category


def initial_weights_input(wildcards):
    """A pretrained ResNet-18's filters are compared with the weights file it started from."""
    return (
        pretrained_weights_input(wildcards)
        if wildcards.model in TRANSFER_MODELS
        else []
    )


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
        f"{FIGURES}/comparison_saliency.png",
    ]
    for kind in ("confusion", "curves", "gradients", "mistakes", "filters", "saliency"):
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


def refuse_paths_read_as_rules(dag_settings):
    """Stop before any job when a target was written after ``--forcerun``: Snakemake reads it as one more
    file to force, so with no target left the whole workflow runs and every job of the forced rules
    reruns (``--forcerun train_cnn results/…/checkpoint.pt`` retrains every CNN)."""
    rules = {rule.name for rule in workflow.rules}
    paths = sorted(
        value
        for value in dag_settings.forcerun
        if value not in rules and value.startswith((f"{RESULTS}/", f"{RESOURCES}/"))
    )
    if dag_settings.targets or not paths:
        return
    forced = " ".join(sorted(set(dag_settings.forcerun) - set(paths))) or "RULE"
    raise WorkflowError(
        f"--forcerun took {' '.join(paths)} as files to force, not as targets, so nothing limits this "
        "run: every job of the forced rules would rerun. Put the target first: "
        f"`snakemake {paths[0]} ... --forcerun {forced}`, or end the list with --: "
        f"`snakemake ... --forcerun {forced} -- {paths[0]}`. To force that file within the whole "
        f"study, name the target: `snakemake all --forcerun {paths[0]}`."
    )


TRAINING_RULES = ("train_cnn", "finetune_resnet18", "train_sweep_point")


def refuse_weeks_on_the_cpu(dag):
    """A plan with training on a machine whose main process sees no GPU (``device: auto``): estimate the
    hours on this CPU before any job runs; stop when it is more than an hour, and say how to go on. Not
    where jobs run elsewhere (a cluster's login node has no GPU), nor with ``device: cpu`` (confirmed).
    """
    if (
        config["device"] != "auto"
        or workflow.executor_plugin.common_settings.non_local_exec
    ):
        return
    jobs = [job for job in dag.needrun_jobs() if job.rule.name in TRAINING_RULES]
    if not jobs:
        return
    import torch
    from snakemake.logging import logger

    if torch.cuda.is_available():
        return
    from cnnstudy.train.cpu_estimate import STOP_ABOVE_HOURS, cpu_training_estimate

    counts = prepared_split_counts(
        config, SPLIT_COUNTS
    )  # None before the data are prepared
    images = counts["images"]["train"] if counts else None
    hours, message = cpu_training_estimate(
        [job.params.hyperparameters for job in jobs], images
    )
    if hours > STOP_ABOVE_HOURS:
        raise WorkflowError(message)
    logger.warning(f"Note: {message}")


def refuse_demo_targets_without_the_demo_config(arguments):
    """A demo target (``results/demo/…``) asked of another config: a command-line ``--configfiles``
    replaces the demo profile's list, so the demo's own overlay was dropped, and the target would end in
    a MissingRuleException (or, under ``results/``, a download of the real Imagenette). Parse time, main
    process only: the targets are still plain command-line words here."""
    demo_targets = [word for word in arguments if word.startswith("results/demo/")]
    if not demo_targets or Path(RESULTS) == Path("results", "demo"):
        return
    raise WorkflowError(
        f"{demo_targets[0]} is a demo target, but this run's config writes to {RESULTS}/ (a "
        "--configfiles on the command line replaces the demo profile's list, so its overlay "
        "profiles/demo/demo-config.yaml was dropped). Name it again: snakemake TARGET --profile "
        "profiles/demo --configfiles config.yaml profiles/demo/demo-config.yaml mine.yaml"
    )


if workflow.is_main_process:
    refuse_demo_targets_without_the_demo_config(sys.argv[1:])


# For the report's config page, written by write_config: the files read, and a digest of what they gave.
def config_files():
    """The config files this run read, in the order they were merged, each once (relative paths where they
    lie below the working directory): the `configfile:` of the Snakefile, then every --configfiles.
    """
    given = [str(path) for path in workflow.overwrite_configfiles]
    read = [str(path) for path in workflow.configfiles[len(given) :]] + given
    last = {os.path.abspath(path): index for index, path in enumerate(read)}
    ordered = [
        path for index, path in enumerate(read) if last[os.path.abspath(path)] == index
    ]
    here = os.getcwd()
    return [
        (
            os.path.relpath(path)
            if os.path.abspath(path).startswith(here + os.sep)
            else path
        )
        for path in ordered
    ]


def config_digest():
    """A short digest of the merged config: write_config reruns when the config changes (a --config value
    included), while the report's ⓘ panel shows 16 characters instead of the whole config.
    """
    text = json.dumps(config, sort_keys=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
