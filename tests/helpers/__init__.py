"""Shared by the tests: paths and the environment subprocesses need to import the package."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
MODELS = [  # every model of the default configuration, in table order
    "baseline",
    "batchnorm",
    "dropout",
    "augmentation",
    "combined",
    "resnet18_bn_frozen",
    "resnet18_bn_unfrozen",
]


def package_environment():
    """os.environ plus the package on PYTHONPATH (pytest's `pythonpath` reaches only its own process)."""
    paths = [str(REPO / "workflow"), str(TESTS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
