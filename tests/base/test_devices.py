import errno
import io
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import torch

from cnnstudy.base import devices
from cnnstudy.base.devices import claim_gpu, physical_gpu_ids, select_device
from cnnstudy.base.jobs import StudyError, _log_uncaught
from helpers import package_environment

# A job as train.py runs it: claim a GPU on a machine that reports two, print the index, hold it.
JOB = textwrap.dedent(
    """
    import pathlib, sys, time
    from cnnstudy.base.devices import claim_gpu
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


def claim_as_nobody(lock_mode, claim):
    """``claim`` (a claim_gpu call, as text) run as nobody (uid 65534) beside root's lock file for GPU 0,
    made with ``lock_mode``; returns (finished process, that lock file's owner uid afterwards)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as two users")
    lock_dir = Path(tempfile.mkdtemp(prefix="cnnstudy-locks-", dir="/tmp"))  # tmp_path is root-only
    lock_dir.chmod(0o1777)
    (lock_dir / "cnnstudy-gpu-0.lock").touch(mode=lock_mode)
    job = textwrap.dedent(
        f"""
        import os
        from cnnstudy.base.devices import claim_gpu  # imported as root; the rest runs as nobody
        os.setgid(65534); os.setuid(65534)
        print({claim.format(lock_dir=repr(str(lock_dir)))})
        """
    )
    environment = {k: v for k, v in package_environment().items() if k != "CUDA_VISIBLE_DEVICES"}
    try:
        result = subprocess.run([sys.executable, "-c", job], env=environment, capture_output=True, text=True)
        return result, (lock_dir / "cnnstudy-gpu-0.lock").stat().st_uid
    finally:
        shutil.rmtree(lock_dir)


def test_a_lock_file_left_by_another_user_can_still_be_taken():
    """The lock file belongs to root with mode 0644; the job runs as nobody."""
    result, owner = claim_as_nobody(
        0o644, "claim_gpu(device_count=2, lock_dir={lock_dir}, timeout_seconds=5)"
    )
    assert result.stdout.strip() == "0", result.stderr
    assert owner == 0  # still root's file, locked through a read-only descriptor


def test_no_local_lock_when_the_scheduler_assigned_the_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert claim_gpu(1, tmp_path) == 0 and not any(tmp_path.iterdir())


def test_a_file_system_without_locks_warns_and_runs_unlocked(tmp_path, monkeypatch, caplog):
    def cannot_lock(descriptor):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr("cnnstudy.base.devices.try_lock", cannot_lock)
    assert claim_gpu(2, tmp_path) == 0
    assert "cannot hold locks" in caplog.text


def test_a_lock_file_that_cannot_be_opened_counts_as_taken_and_the_wait_gives_up(tmp_path, monkeypatch):
    """Root, who runs these tests, can open another user's 0600 file; a folder in the lock file's
    place cannot be opened by anyone, so it stands in for that file here."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    (tmp_path / "cnnstudy-gpu-0.lock").mkdir()
    with pytest.raises(StudyError) as raised:
        claim_gpu(1, tmp_path, poll_seconds=0.01, timeout_seconds=0.05)
    message = str(raised.value)
    owner = pwd.getpwuid(os.getuid()).pw_name
    assert f"cnnstudy-gpu-0.lock (owner {owner}, cannot be opened: Is a directory)" in message
    assert "gpu_wait_minutes" in message and "CNNSTUDY_GPU_LOCK_DIR" in message


def test_another_users_private_lock_file_counts_as_taken():
    """The real case: root's 0600 lock file, a job running as nobody."""
    claim = "claim_gpu(device_count=1, lock_dir={lock_dir}, poll_seconds=0.05, timeout_seconds=0.2)"
    result, _ = claim_as_nobody(0o600, claim)
    assert result.returncode != 0
    assert "cnnstudy-gpu-0.lock (owner root, cannot be opened: Permission denied)" in result.stderr
    assert "the GPU stayed locked" in result.stderr


def test_a_waiting_job_names_the_holder_on_the_console_and_in_its_log(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices, "WAIT_REPORT_SECONDS", 0.1)
    console = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", console)  # the job's stderr (sys.stderr) is its log file
    holder = start_job(tmp_path)
    assert holder.stdout.readline().strip() == "0"  # it holds GPU 0, the only GPU of the next claim
    with pytest.raises(StudyError, match="the GPU stayed locked"):
        claim_gpu(1, tmp_path, poll_seconds=0.02, timeout_seconds=0.5)
    (tmp_path / "release").touch()
    holder.wait()
    owner = pwd.getpwuid(os.getuid()).pw_name
    report = f"cnnstudy-gpu-0.lock (owner {owner}, PID {holder.pid} on {socket.gethostname()})"
    assert console.getvalue().count("waiting for a free GPU") >= 2  # reported again while it waits
    assert report in console.getvalue() and report in caplog.text


def test_device_cuda_without_a_gpu_is_one_message_naming_the_key(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(StudyError) as raised:
        select_device("cuda")
    message = str(raised.value)
    assert message.startswith("device: cuda is configured, but torch.cuda.is_available() is False")
    assert f"torch {torch.__version__} built with CUDA" in message and "CUDA_VISIBLE_DEVICES=''" in message
    assert "device: auto" in message and "\n" not in message
    _log_uncaught(type(raised.value), raised.value, raised.value.__traceback__)  # as a job logs it
    assert capsys.readouterr().err == f"ERROR: {message}\n"
