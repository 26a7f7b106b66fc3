"""Which device a job trains on; on a multi-GPU box, one GPU per concurrent job.

Snakemake's ``gpu`` resource only counts GPUs: it does not tell local jobs which one to use. Each local
job therefore takes an exclusive lock on one GPU; the operating system drops the lock when the process
ends, however it ends. Under a scheduler that assigned the job its GPUs there is nothing to share, and
no lock is taken (each job there may see its own GPU as index 0).
"""

import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from .locks import CANNOT_LOCK, open_shared_lock_file, try_lock

log = logging.getLogger(__name__)
_held_locks = []  # open lock descriptors; kept for the life of the process
SCHEDULER_JOB_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID")


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
    """Lock a free GPU and return its visible index; wait while every GPU is taken."""
    if scheduler_assigned_gpus():
        log.info("the scheduler assigned this job's GPUs: no local GPU lock")
        return 0
    lock_dir = Path(lock_dir or os.environ.get("CNNSTUDY_GPU_LOCK_DIR", tempfile.gettempdir()))
    lock_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    while True:
        for index, gpu_id in enumerate(physical_gpu_ids(device_count)):
            descriptor = open_shared_lock_file(lock_dir / f"cnnstudy-gpu-{gpu_id}.lock")
            if descriptor is None:
                continue
            try:
                locked = try_lock(descriptor)
            except OSError as error:
                if error.errno not in CANNOT_LOCK:
                    raise
                log.warning("%s cannot hold locks (%s): using GPU %d without a lock", lock_dir, error, index)
                os.close(descriptor)
                return index
            if locked:
                _held_locks.append(descriptor)
                return index
            os.close(descriptor)
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise TimeoutError(f"all {device_count} GPUs stayed locked for {timeout_seconds} s ({lock_dir})")
        log.info("all %d GPUs are in use by other jobs; waiting", device_count)
        time.sleep(poll_seconds)


def select_device(preference):
    """``auto`` | ``cpu`` | ``cuda`` → a torch.device, claiming a free GPU when CUDA is used."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "auto" and not torch.cuda.is_available():
        log.warning("no CUDA device found: running on the CPU (fine for the demo, slow for the full study)")
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device: cuda is configured, but PyTorch sees no CUDA device on this machine")
    index = claim_gpu(torch.cuda.device_count())
    torch.cuda.set_device(index)
    log.info("using GPU %d: %s", index, torch.cuda.get_device_name(index))
    return torch.device("cuda", index)
