import errno
import os
import subprocess

import pytest
import torch

from cnnstudy.base.files import DiskError, atomic_path, write_text


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 1 MB file system: a real tmpfs when this runs as root, else none (the test is skipped)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)]).returncode
    ):
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_a_full_disk_is_named_with_the_free_space_and_leaves_no_file(tiny_disk):
    target = tiny_disk / "checkpoint.pt"
    with pytest.raises(DiskError, match=rf"cannot write {target}: .*free on its file system"):
        with atomic_path(target) as partial:
            torch.save(torch.zeros(1_000_000), partial)  # 4 MB: torch reports "iostream error"
    assert list(tiny_disk.iterdir()) == []
    with pytest.raises(DiskError, match="No space left on device"):
        write_text(tiny_disk / "history.csv", "x" * 2_000_000)
    assert list(tiny_disk.iterdir()) == []


def test_an_out_of_space_error_from_any_writer_becomes_a_disk_error(tmp_path):
    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(
        DiskError, match=rf"cannot write {tmp_path / 'a.csv'}: No space left on device; .* free"
    ):
        with atomic_path(tmp_path / "a.csv") as partial:
            full(partial)
    assert list(tmp_path.iterdir()) == []


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with atomic_path(tmp_path / "a.csv"):
            raise ZeroDivisionError
    assert list(tmp_path.iterdir()) == []
