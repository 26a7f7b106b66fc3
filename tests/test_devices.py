import subprocess
import sys
import textwrap

import pytest
import torch

from cnnstudy.devices import claim_gpu, physical_gpu_ids, select_device
from helpers import package_environment

# A job as train.py runs it: claim a GPU on a machine that reports two, print the index, hold it.
JOB = textwrap.dedent(
    """
    import pathlib, sys, time
    from cnnstudy.devices import claim_gpu
    print(claim_gpu(device_count=2, lock_dir=sys.argv[1], poll_seconds=0.1, timeout_seconds=float(sys.argv[2])),
          flush=True)
    while not pathlib.Path(sys.argv[3]).exists():
        time.sleep(0.05)
    """
)


def start_job(lock_dir, timeout=30.0):
    """The job holds its GPU until the file lock_dir/release exists."""
    return subprocess.Popen(
        [sys.executable, "-c", JOB, str(lock_dir), str(timeout), str(lock_dir / "release")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=package_environment(),
    )


def test_concurrent_jobs_get_different_gpus(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    first = start_job(tmp_path)
    first_index = int(first.stdout.readline())
    second = start_job(tmp_path)
    second_index = int(second.stdout.readline())
    assert {first_index, second_index} == {0, 1}
    third = start_job(tmp_path, timeout=0.5)  # both GPUs taken: waits, then gives up
    assert third.wait() != 0 and "stayed locked" in third.stderr.read()
    (tmp_path / "release").touch()
    first.wait(), second.wait()  # the locks go with the processes
    assert claim_gpu(2, tmp_path, timeout_seconds=5) == 0


def test_jobs_pinned_to_different_gpus_by_the_scheduler_do_not_share_a_lock(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert physical_gpu_ids(1) == ["3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-a1,GPU-b2")
    assert physical_gpu_ids(2) == ["GPU-a1", "GPU-b2"]


def test_device_choice(monkeypatch):
    assert select_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="device: cuda is configured"):
        select_device("cuda")
