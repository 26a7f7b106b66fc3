"""Which device a job trains on; on a multi-GPU box, one GPU per concurrent job.

Snakemake's ``gpu`` resource only counts GPUs: it does not tell local jobs which one to use. Each job
therefore takes an exclusive lock on one GPU index; the operating system drops the lock when the
process ends, however it ends.
"""

import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)
_held_locks = []  # open lock files; kept for the life of the process


def physical_gpu_ids(device_count):
    """IDs behind the visible indices (``CUDA_VISIBLE_DEVICES``), so jobs pinned by SLURM never clash."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    names = [name.strip() for name in visible.split(",") if name.strip()] if visible else []
    return names[:device_count] if len(names) >= device_count else [str(i) for i in range(device_count)]


def claim_gpu(device_count, lock_dir=None, poll_seconds=5.0, timeout_seconds=None):
    """Lock a free GPU and return its visible index; wait while every GPU is taken."""
    lock_dir = Path(lock_dir or os.environ.get("CNNSTUDY_GPU_LOCK_DIR", tempfile.gettempdir()))
    lock_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    while True:
        for index, gpu_id in enumerate(physical_gpu_ids(device_count)):
            handle = open(lock_dir / f"cnnstudy-gpu-{gpu_id}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            _held_locks.append(handle)
            return index
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


def environment(device):
    """What produced a result: stored in every checkpoint."""
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["cpu_threads"] = torch.get_num_threads()
    return info
