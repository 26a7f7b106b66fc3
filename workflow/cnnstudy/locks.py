"""Exclusive locks between processes: one trainer per run folder, one local job per GPU.

``flock`` locks belong to an open file and vanish with the process, however it ends, so a killed job
never leaves a stale lock behind. Where a file system cannot lock (some network file systems), the
caller is warned and runs unlocked rather than failing.
"""

import contextlib
import errno
import fcntl
import logging
import os
from pathlib import Path

from .jobs import StudyError

log = logging.getLogger(__name__)
CANNOT_LOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}


class LockHeld(StudyError):
    pass


def open_shared_lock_file(path):
    """A descriptor on ``path`` that any user of the machine can lock.

    Created world-readable and -writable; opened read-only, because ``flock`` needs no write access, so
    a lock file another user created with their umask still works. None when it cannot be opened.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except PermissionError:
        log.warning("cannot open the lock file %s (permissions); not using it", path)
        return None
    with contextlib.suppress(PermissionError):
        os.fchmod(descriptor, 0o666)  # umask trims the mode at creation; only the owner may widen it
    return descriptor


def try_lock(descriptor):
    """True when this process now holds the exclusive lock; False when another process does.

    Raises OSError with ``errno`` in CANNOT_LOCK when the file system cannot lock at all.
    """
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def run_folder_lock(folder):
    """Hold an exclusive lock on ``folder`` (its ``lock`` file records our PID) for the block.

    A second process on the same folder stops at once, naming the PID that holds it: two trainers
    writing one resume state would each undo the other's epochs.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            locked = try_lock(descriptor)
        except OSError as error:
            if error.errno not in CANNOT_LOCK:
                raise
            log.warning(
                "the file system of %s cannot lock (%s): not guarding against a second trainer", path, error
            )
            locked = True
        if not locked:
            holder = path.read_text().strip() or "unknown"
            raise LockHeld(
                f"{folder} is in use by another training process (PID {holder}), for example one left "
                f"running when Snakemake was stopped. Wait for it to end, or stop it (kill {holder}); then "
                "rerun: training continues from its last finished epoch."
            )
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(descriptor)  # releases the lock
