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
import pwd
import socket
from pathlib import Path

from .jobs import StudyError

log = logging.getLogger(__name__)
CANNOT_LOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}


class LockHeld(StudyError):
    pass


def open_shared_lock_file(path):
    """A descriptor on ``path`` that any user of the machine can lock.

    Created world-readable and -writable. Opened for writing where allowed, so that the holder can
    record itself (``record_holder``); else read-only, because ``flock`` needs no write access, so a lock
    file another user created with their umask still works. Raises OSError when it cannot be opened at
    all (another user's ``0600`` file, a folder in its place): the caller counts that GPU as taken.
    """
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # not writable (permissions, a read-only file system); this attempt says why not
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    with contextlib.suppress(PermissionError):
        os.fchmod(descriptor, 0o666)  # umask trims the mode at creation; only the owner may widen it
    return descriptor


def record_holder(descriptor):
    """Write our PID and host into the lock file we now hold, so that a waiting job can name us.

    A file opened read-only (another user's) keeps its old record; ``describe_lock_file`` skips it when
    that process has ended.
    """
    with contextlib.suppress(OSError):
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)


def describe_lock_file(path, problem=None):
    """``path`` with its owner, and the PID and host of its holder or ``problem``, for a waiting job."""
    details = [f"owner {_owner(path)}", problem or _recorded_holder(path) or "holder not recorded"]
    return f"{path} ({', '.join(details)})"


def _owner(path):
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return "unknown (missing)"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no name on this machine, e.g. on a shared network file system
        return f"uid {uid}"


def _recorded_holder(path):
    """'PID <n> on <host>' as the lock file records it; None when it records nothing we can trust."""
    try:
        pid, host = path.read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return None
    if host == socket.gethostname() and not _process_exists(pid):
        return None  # a stale record under another user's read-only lock file
    return f"PID {pid} on {host}"


def _process_exists(pid):
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        pass
    return True


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


_RESULTS_LOCKS = []  # open descriptors: a results folder stays locked for as long as this process lives
RESULTS_LOCK = ".workflow.lock"
NO_RESULTS_LOCK = "CNNSTUDY_RESULTS_LOCK"  # =off: run without this lock (documented in docs/usage.md)


def hold_results_folder(results):
    """Lock ``results`` for the life of this Snakemake process (called from its ``onstart``).

    Snakemake locks its working directory, but two checkouts whose ``paths.results`` point at one shared
    folder each hold their own Snakemake lock and delete outputs around their own jobs, so one undoes the
    other's finished work. The second run stops here, before any job, naming the first. The lock dies with
    the process, however it ends, so a killed run leaves none behind.
    """
    if os.environ.get(NO_RESULTS_LOCK) == "off":
        return
    folder = Path(results)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RESULTS_LOCK
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        locked = try_lock(descriptor)
    except OSError as error:
        if error.errno not in CANNOT_LOCK:
            raise
        log.warning("the file system of %s cannot lock (%s): not guarding against a second run", path, error)
        locked = True
    if not locked:
        holder = path.read_text().strip() or "a process that recorded nothing"
        os.close(descriptor)
        raise LockHeld(
            f"another Snakemake run is using {folder}: {holder}. Two runs on one results folder delete each "
            "other's outputs. Wait for it to end (or stop it), then rerun. If it has ended and the lock "
            f"stays (a network file system whose locks outlive their process), run with {NO_RESULTS_LOCK}=off."
        )
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"PID {os.getpid()} on {socket.gethostname()}, working in {os.getcwd()}\n".encode())
    _RESULTS_LOCKS.append(descriptor)
