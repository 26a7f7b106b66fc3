"""Where a result came from: the code's commit, the software, the device and the data, read at run time.

Recorded in every summary.json and metrics.json, never passed as a rule param: a new commit must not
rerun a study whose code did not change (the code fingerprints decide that).
"""

import subprocess
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parents[3]


def git_state(repository=REPOSITORY):
    """(commit, dirty) of the checkout holding the code; ("unknown", None) outside one or without git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repository), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(repository), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", None
    return commit, bool(changes.strip())


def environment(device):
    """The software and hardware a result was computed with."""
    info = {"torch": str(torch.__version__), "cuda": torch.version.cuda, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["cpu_threads"] = torch.get_num_threads()
    return info


def provenance(device, **splits):
    """Commit, environment, and for each named split the archive md5 and the tensor file's sha256."""
    commit, dirty = git_state()
    record = {"git_commit": commit, "git_dirty": dirty, **environment(device)}
    sources = [split.source for split in splits.values() if split.source]
    if sources:
        record["archive_md5"] = sources[0].get("archive_md5")
    record["data_sha256"] = {name: split.sha256 for name, split in splits.items()}
    return record
