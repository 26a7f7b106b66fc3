"""Running the workflow in tests: a copy of it in a temporary folder, config overlays, dry-run plans."""

import re
import shutil

import yaml

from helpers import REPO

WORKFLOW_FILES = ["Snakefile", "config.yaml", "workflow", "profiles", "envs"]
DEMO = ["--profile", "profiles/demo"]
# Smaller than test_workflow's demo: two epochs (the ResNet's warm-up takes one).
TWO_EPOCHS = {"training": {"epochs": 2, "gradient_epochs": [1, 2]}, "transfer": {"training": {"epochs": 2}}}


def copy_workflow(destination):
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, destination / name)
    return destination


def with_overrides(workflow, overrides, demo=False, name="overrides.yaml"):
    """--configfiles with an override file on top (--config passes nested values as strings)."""
    (workflow / name).write_text(yaml.safe_dump(overrides, sort_keys=False))  # key order is grid order
    files = ["config.yaml", *(["profiles/demo/demo-config.yaml"] if demo else []), name]
    return ["--configfiles", *files]


def planned_jobs(output):
    """Job counts from a dry run's 'Job stats' table ({} when there is nothing to do)."""
    if "Job stats:" not in output:
        assert "Nothing to be done" in output, output[-3000:]
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}
