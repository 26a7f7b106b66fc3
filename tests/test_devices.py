import errno
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

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


def test_a_lock_file_left_by_another_user_can_still_be_taken(tmp_path):
    """The lock file belongs to root with mode 0644; the job runs as nobody (uid 65534)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as two users")
    lock_dir = Path(tempfile.mkdtemp(prefix="cnnstudy-locks-", dir="/tmp"))  # tmp_path is root-only
    lock_dir.chmod(0o1777)
    (lock_dir / "cnnstudy-gpu-0.lock").touch(mode=0o644)
    job = textwrap.dedent(
        f"""
        import os
        from cnnstudy.devices import claim_gpu  # imported as root; the rest runs as nobody
        os.setgid(65534); os.setuid(65534)
        print(claim_gpu(device_count=2, lock_dir={str(lock_dir)!r}, timeout_seconds=5))
        """
    )
    environment = {k: v for k, v in package_environment().items() if k != "CUDA_VISIBLE_DEVICES"}
    result = subprocess.run([sys.executable, "-c", job], env=environment, capture_output=True, text=True)
    assert result.stdout.strip() == "0", result.stderr
    created = lock_dir / "cnnstudy-gpu-0.lock"
    assert created.stat().st_uid == 0  # still root's file, locked through a read-only descriptor
    shutil.rmtree(lock_dir)


def test_no_local_lock_when_the_scheduler_assigned_the_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert claim_gpu(1, tmp_path) == 0 and not any(tmp_path.iterdir())


def test_a_file_system_without_locks_warns_and_runs_unlocked(tmp_path, monkeypatch, caplog):
    def cannot_lock(descriptor):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr("cnnstudy.devices.try_lock", cannot_lock)
    assert claim_gpu(2, tmp_path) == 0
    assert "cannot hold locks" in caplog.text
