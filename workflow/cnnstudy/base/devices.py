"""Which device a job trains on; on a multi-GPU box, one GPU per concurrent job.

Snakemake's ``gpu`` resource only counts GPUs: it does not tell local jobs which one to use. Each local
job therefore takes an exclusive lock on one GPU; the operating system drops the lock when the process
ends, however it ends. Under a scheduler that assigned the job its GPUs there is nothing to share, and
no lock is taken (each job there may see its own GPU as index 0).
"""

import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from .jobs import StudyError
from .locks import CANNOT_LOCK, describe_lock_file, open_shared_lock_file, record_holder, try_lock

log = logging.getLogger(__name__)
_held_locks = []  # open lock descriptors; kept for the life of the process
SCHEDULER_JOB_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID")
DEFAULT_GPU_WAIT_MINUTES = 60  # config.yaml's gpu_wait_minutes, for callers that pass none
WAIT_REPORT_SECONDS = 60.0  # a job waiting for a GPU says so this often, so that no wait is silent


class CudaUnavailable(StudyError, RuntimeError):
    """``device: cuda`` on a machine where PyTorch sees no GPU (a RuntimeError too, as it always was)."""


def physical_gpu_ids(device_count):
    """IDs behind the visible indices (``CUDA_VISIBLE_DEVICES``), so jobs pinned by SLURM never clash."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    names = [name.strip() for name in visible.split(",") if name.strip()] if visible else []
    return names[:device_count] if len(names) >= device_count else [str(i) for i in range(device_count)]


def scheduler_assigned_gpus(environ=os.environ):
    """True inside a batch job whose GPUs the scheduler chose (it sets CUDA_VISIBLE_DEVICES for the job)."""
    in_job = any(environ.get(name) for name in SCHEDULER_JOB_VARIABLES)
    return in_job and bool(environ.get("CUDA_VISIBLE_DEVICES", "").strip())


def claim_gpu(device_count, lock_dir=None, poll_seconds=5.0, timeout_seconds=None):
    """Lock a free GPU and return its visible index; wait while every GPU is taken.

    The wait is reported every WAIT_REPORT_SECONDS and ends in a StudyError after ``timeout_seconds``
    (None: no limit).
    """
    if scheduler_assigned_gpus():
        log.info("the scheduler assigned this job's GPUs: no local GPU lock")
        return 0
    lock_dir = Path(lock_dir or os.environ.get("CNNSTUDY_GPU_LOCK_DIR", tempfile.gettempdir()))
    lock_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    next_report = started
    while True:
        index, held = _lock_a_free_gpu(device_count, lock_dir)
        if index is not None:
            return index
        waited = time.monotonic() - started
        if timeout_seconds is not None and waited > timeout_seconds:
            raise StudyError(_gave_up_message(device_count, timeout_seconds, held))
        if time.monotonic() >= next_report:
            _tell_user(_waiting_message(waited, timeout_seconds, held))
            next_report = time.monotonic() + WAIT_REPORT_SECONDS
        time.sleep(poll_seconds)


def _lock_a_free_gpu(device_count, lock_dir):
    """(the visible index of the GPU now locked, []), or (None, a description of each taken lock file)."""
    held = []
    for index, gpu_id in enumerate(physical_gpu_ids(device_count)):
        path = lock_dir / f"cnnstudy-gpu-{gpu_id}.lock"
        try:
            descriptor = open_shared_lock_file(path)
        except OSError as error:  # we cannot tell who holds it, nor take it: as good as taken
            held.append(describe_lock_file(path, problem=f"cannot be opened: {error.strerror}"))
            continue
        try:
            locked = try_lock(descriptor)
        except OSError as error:
            if error.errno not in CANNOT_LOCK:
                raise
            log.warning("%s cannot hold locks (%s): using GPU %d without a lock", lock_dir, error, index)
            os.close(descriptor)
            return index, []
        if locked:
            record_holder(descriptor)
            _held_locks.append(descriptor)
            return index, []
        os.close(descriptor)
        held.append(describe_lock_file(path))
    return None, held


def _waiting_message(waited, timeout_seconds, held):
    limit = "0, no limit" if timeout_seconds is None else f"gives up after {_duration(timeout_seconds)}"
    return (
        f"waiting for a free GPU{_so_far(waited)} (gpu_wait_minutes: {limit}); "
        f"every GPU's lock file is taken: {'; '.join(held)}"
    )


def _gave_up_message(device_count, timeout_seconds, held):
    gpus = "the GPU" if device_count == 1 else f"all {device_count} GPUs"
    return (
        f"{gpus} stayed locked for {_duration(timeout_seconds)} (gpu_wait_minutes): {'; '.join(held)}. "
        "Rerun when those jobs have ended, or raise gpu_wait_minutes in the config (0 waits without "
        "limit). If the lock files belong to another user's jobs and you may use the GPUs anyway, point "
        "CNNSTUDY_GPU_LOCK_DIR at a lock folder of your own (export CNNSTUDY_GPU_LOCK_DIR="
        "$HOME/.cnnstudy-gpu-locks) and rerun: jobs with different lock folders do not take turns on a GPU."
    )


def _so_far(waited):
    return f" for {_duration(waited)}" if waited >= 1 else ""  # the first report comes at once


def _duration(seconds):
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.3g} s"


def _tell_user(message):
    """Log ``message`` and show it on the console too, where a user watching Snakemake looks.

    ``jobs.start_job`` sends the job's stderr to its log file, but ``sys.__stderr__`` is still the
    stderr the job started with: Snakemake's console, or wherever the user, nohup, CI or the scheduler
    sent it. ``/dev/tty`` would bypass those redirections, and exists under none of them, so it is not
    used. The log file's name says which of several jobs on one console is waiting.
    """
    log.warning(message)
    console = sys.__stderr__
    if console is None or console is sys.stderr:  # not redirected: the log line above is on the console
        return
    with contextlib.suppress(OSError, ValueError):  # a closed or broken console must not stop the job
        print(f"{getattr(sys.stderr, 'name', 'cnnstudy')}: WARNING: {message}", file=console, flush=True)


def select_device(preference, gpu_wait_minutes=DEFAULT_GPU_WAIT_MINUTES):
    """``auto`` | ``cpu`` | ``cuda`` → a torch.device, claiming a free GPU when CUDA is used.

    ``gpu_wait_minutes``: how long to wait for a GPU that other jobs hold (0: no limit).
    """
    if preference == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if preference == "auto":
            log.warning(
                "no CUDA device found: running on the CPU (fine for the demo, slow for the full study)"
            )
            return torch.device("cpu")
        raise CudaUnavailable(_no_cuda_message())
    timeout_seconds = gpu_wait_minutes * 60 if gpu_wait_minutes else None
    index = claim_gpu(torch.cuda.device_count(), timeout_seconds=timeout_seconds)
    torch.cuda.set_device(index)
    log.info("using GPU %d: %s", index, torch.cuda.get_device_name(index))
    return torch.device("cuda", index)


def _no_cuda_message():
    """What PyTorch found. Asked only when a job starts, never when Snakemake parses the config: a
    cluster's login node has no GPU, yet submits the jobs that will have one."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return (
        "device: cuda is configured, but torch.cuda.is_available() is False: torch "
        f"{torch.__version__} built with CUDA {torch.version.cuda or 'none (a CPU-only build)'}, "
        f"CUDA_VISIBLE_DEVICES={'(unset)' if visible is None else repr(visible)}. Set device: auto (or "
        "cpu) in the config to run on the CPU, or run on a GPU node (with a CUDA build of torch)."
    )
