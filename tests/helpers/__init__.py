"""Shared by the tests: paths and the environment subprocesses need to import the package."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def package_environment():
    """os.environ plus the package on PYTHONPATH (pytest's `pythonpath` reaches only its own process)."""
    paths = [str(REPO / "workflow"), str(TESTS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
