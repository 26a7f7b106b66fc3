"""Atomic file output: a failed step never leaves a file that looks finished; and reading torch files
without running any code they might carry.

A write that fails for lack of space or an I/O error becomes one message naming the file and the free
space left, whatever library was writing (torch.save reports a full disk as "iostream error").
"""

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

from .jobs import StudyError

DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG}
DISK_MESSAGES = ("no space left", "iostream error", "file write failed", "disk quota", "input/output error")
NEARLY_FULL = 1 << 20  # bytes: a write that failed with less free than this failed for lack of space


class DiskError(StudyError):
    pass


class UnsafeFileError(StudyError):
    pass


def load_torch_file(path, mmap=False):
    """``torch.load`` that runs no code: tensors and plain values only (``weights_only=True``).

    Checkpoints and resume states hold nothing else, so a file that needs more (a pickle crafted to run
    code, placed in a shared results folder or sent as a checkpoint) is refused, naming the file. Files
    written before 0.2 recorded torch's version as its own ``str`` subclass: that one class is allowed.
    """
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        raise UnsafeFileError(
            f"refused to load {path}: it holds objects other than tensors and plain values, and loading "
            "it could run code. This workflow never writes such files; if you trust where it came from, "
            "delete it and let the workflow write its own."
        ) from error


def _free_bytes(path):
    try:
        return shutil.disk_usage(Path(path).parent).free
    except OSError:
        return None


def _is_disk_failure(error, path):
    """Whether a failed write failed for lack of space or an I/O error, however the writer said it
    (torch.save may report a full disk as "iostream error" or as a broken zip record)."""
    if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
        return True
    if not isinstance(error, (OSError, RuntimeError)):
        return False
    free = _free_bytes(path)
    return any(message in str(error).lower() for message in DISK_MESSAGES) or (
        free is not None and free < NEARLY_FULL
    )


def _megabytes(count):
    return f"{count / 1e6:,.0f} MB" if count >= 1e6 else f"{count:,} bytes"


def disk_error(path, error):
    """A DiskError for a failed write to ``path``: the cause, and the free space where it was written."""
    free = _free_bytes(path)
    free = "unknown space" if free is None else _megabytes(free)
    reason = os.strerror(error.errno) if isinstance(error, OSError) and error.errno else str(error)
    return DiskError(
        f"cannot write {path}: {reason}; {free} free on its file system. Free some space (or set "
        "paths.results to a larger disk) and rerun: finished files and training epochs are kept."
    )


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(handle)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide results from the rest of a group
    except OSError as error:
        raise (disk_error(path, error) if _is_disk_failure(error, path) else error) from error
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException as error:
        full = _is_disk_failure(error, path)  # before the partial file frees its space
        Path(temporary).unlink(missing_ok=True)
        if full:
            raise disk_error(path, error) from error
        raise


def write_text(path, text):
    with atomic_path(path) as temporary:
        temporary.write_text(text)
