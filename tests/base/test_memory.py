"""Memory limits read from fake /proc and /sys/fs/cgroup trees, and the inference chunk they allow."""

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnstudy.base import memory
from cnnstudy.base.memory import (
    MEMORY_SHARE,
    activation_bytes_per_image,
    available_memory_bytes,
    chunk_size,
    describe_memory_limit,
    inference_chunk_size,
    peak_rss_mb,
)

GIB = 2**30
MIB = 2**20


class FakeSystem:
    """A fake ``/proc`` and ``/sys/fs/cgroup`` under a temporary directory."""

    def __init__(self, root):
        self.proc = root / "proc"
        self.cgroup = root / "cgroup"
        (self.proc / "self").mkdir(parents=True)
        self.cgroup.mkdir()

    def meminfo(self, available_bytes):
        kib = available_bytes // 1024
        self._write(self.proc / "meminfo", f"MemTotal:       {4 * kib} kB\nMemAvailable:   {kib} kB\n")

    def rss(self, rss_bytes):
        self._write(self.proc / "self" / "status", f"Name:\tpython\nVmRSS:\t  {rss_bytes // 1024} kB\n")

    def own_cgroups(self, v2=None, v1=None):
        lines = [f"4:memory:{v1}"] if v1 is not None else []
        lines += [f"0::{v2}"] if v2 is not None else []
        self._write(self.proc / "self" / "cgroup", "\n".join(lines) + "\n")

    def v2(self, path, max_value, current, **other_files):
        directory = self.cgroup / path.lstrip("/")
        self._write(directory / "memory.max", f"{max_value}\n")
        self._write(directory / "memory.current", f"{current}\n")
        for name, text in other_files.items():
            self._write(directory / name.replace("_", "."), text)

    def v1(self, path, limit, usage):
        directory = self.cgroup / "memory" / path.lstrip("/")
        self._write(directory / "memory.limit_in_bytes", f"{limit}\n")
        self._write(directory / "memory.usage_in_bytes", f"{usage}\n")

    def limit(self, environ=None, device=None):
        return describe_memory_limit(
            device, proc_root=self.proc, cgroup_root=self.cgroup, environ={} if environ is None else environ
        )

    @staticmethod
    def _write(path, text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def system(tmp_path):
    fake = FakeSystem(tmp_path)
    fake.meminfo(64 * GIB)
    return fake


# --- cgroup v2 -------------------------------------------------------------------------------------


def test_cgroup_v2_limit_minus_current(system):
    system.own_cgroups(v2="/job/step")
    system.v2("/job/step", 8 * GIB, 3 * GIB)
    limit = system.limit()
    assert limit.bytes == 5 * GIB
    assert limit.source == "cgroup v2 limit"


def test_cgroup_v2_max_means_unlimited(system):
    system.own_cgroups(v2="/job")
    system.v2("/job", "max", 3 * GIB)
    limit = system.limit()
    assert (limit.bytes, limit.source) == (64 * GIB, "MemAvailable")


def test_cgroup_v2_limit_on_a_parent(system):
    system.own_cgroups(v2="/slice/job/step")
    system.v2("/slice/job/step", "max", 1 * GIB)
    system.v2("/slice/job", 6 * GIB, 2 * GIB)
    system.v2("/slice", 32 * GIB, 10 * GIB)
    limit = system.limit()
    assert limit.bytes == 4 * GIB
    assert limit.detail.endswith("slice/job")


def test_cgroup_v2_container_root(system):
    """With a cgroup namespace the path is "/" and the files lie directly under the cgroup root."""
    system.own_cgroups(v2="/")
    system.v2("/", 2 * GIB, GIB // 2)
    assert system.limit().bytes == GIB + GIB // 2


def test_cgroup_v2_memory_high_and_inactive_cache(system):
    """memory.high is a limit too; inactive page cache is reclaimable, so it does not count as used."""
    system.own_cgroups(v2="/job")
    system.v2("/job", 8 * GIB, 5 * GIB, memory_high=f"{6 * GIB}\n", memory_stat=f"inactive_file {GIB}\n")
    assert system.limit().bytes == 6 * GIB - (5 * GIB - GIB)


# --- cgroup v1 -------------------------------------------------------------------------------------


def test_cgroup_v1_limit_minus_usage(system):
    system.own_cgroups(v1="/docker/abc")
    system.v1("/docker/abc", 8 * GIB, 3 * GIB)
    limit = system.limit()
    assert (limit.bytes, limit.source) == (5 * GIB, "cgroup v1 limit")


def test_cgroup_v1_huge_limit_means_unlimited(system):
    system.own_cgroups(v1="/docker/abc")
    system.v1("/docker/abc", 9223372036854771712, 3 * GIB)
    assert system.limit().source == "MemAvailable"
    (system.proc / "meminfo").unlink()  # alone, the huge limit must not count as a limit either
    assert system.limit().source == "fallback"


# --- SLURM -----------------------------------------------------------------------------------------


def test_slurm_mem_per_node_minus_rss(system):
    system.rss(1 * GIB)
    limit = system.limit({"SLURM_JOB_ID": "42", "SLURM_MEM_PER_NODE": "8192"})
    assert (limit.bytes, limit.source) == (7 * GIB, "SLURM_MEM_PER_NODE")


@pytest.mark.parametrize(
    ("cpus", "expected_gib"),
    [
        ({"SLURM_CPUS_PER_TASK": "4", "SLURM_CPUS_ON_NODE": "16"}, 8),
        ({"SLURM_CPUS_ON_NODE": "3"}, 6),
        ({}, 2),
    ],
)
def test_slurm_mem_per_cpu_times_cpus(system, cpus, expected_gib):
    system.rss(0)
    limit = system.limit({"SLURM_JOB_ID": "42", "SLURM_MEM_PER_CPU": "2048", **cpus})
    assert (limit.bytes, limit.source) == (expected_gib * GIB, "SLURM_MEM_PER_CPU")


def test_slurm_variables_ignored_outside_a_job(system):
    assert system.limit({"SLURM_MEM_PER_NODE": "1024"}).source == "MemAvailable"


# --- combining the sources -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meminfo_gib", "v2_room_gib", "v1_room_gib", "slurm_gib", "expected_source"),
    [
        (64, 16, 32, 24, "cgroup v2 limit"),
        (64, 16, 12, 24, "cgroup v1 limit"),
        (64, 16, 32, 10, "SLURM_MEM_PER_NODE"),
        (5, 16, 32, 24, "MemAvailable"),
    ],
)
def test_tightest_source_wins(system, meminfo_gib, v2_room_gib, v1_room_gib, slurm_gib, expected_source):
    system.meminfo(meminfo_gib * GIB)
    system.rss(0)
    system.own_cgroups(v2="/job", v1="/job")
    system.v2("/job", (v2_room_gib + 1) * GIB, GIB)
    system.v1("/job", (v1_room_gib + 1) * GIB, GIB)
    limit = system.limit({"SLURM_JOB_ID": "1", "SLURM_MEM_PER_NODE": str(slurm_gib * 1024)})
    assert limit.source == expected_source
    assert limit.bytes == min(meminfo_gib, v2_room_gib, v1_room_gib, slurm_gib) * GIB


def test_never_negative(system):
    system.own_cgroups(v2="/job")
    system.v2("/job", 2 * GIB, 3 * GIB)  # over the limit: the kernel is reclaiming
    assert system.limit().bytes == 0
    system.rss(2 * GIB)
    assert system.limit({"SLURM_JOB_ID": "1", "SLURM_MEM_PER_NODE": "1024"}).bytes == 0


def test_falls_back_to_mem_available_when_cgroup_files_are_missing(system):
    system.own_cgroups(v2="/job", v1="/job")  # named, but no files under the cgroup root
    limit = system.limit()
    assert (limit.bytes, limit.source) == (64 * GIB, "MemAvailable")


def test_falls_back_to_4_gib_with_a_warning_when_nothing_is_readable(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="cnnstudy.base.memory"):
        limit = describe_memory_limit(proc_root=tmp_path / "none", cgroup_root=tmp_path / "none", environ={})
    assert (limit.bytes, limit.source) == (4 * GIB, "fallback")
    assert "cannot read the memory available" in caplog.text


def test_available_memory_bytes_is_the_described_number(system):
    system.own_cgroups(v2="/job")
    system.v2("/job", 8 * GIB, 3 * GIB)
    kwargs = {"proc_root": system.proc, "cgroup_root": system.cgroup, "environ": {}}
    assert available_memory_bytes(**kwargs) == available_memory_bytes("cpu", **kwargs) == 5 * GIB


def test_cuda_device_uses_free_device_memory(system, monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (3 * GIB, 80 * GIB))
    limit = system.limit(device=torch.device("cuda", 0))
    assert (limit.bytes, limit.source) == (3 * GIB, "CUDA free memory")


def test_cuda_unreadable_falls_back_to_host_memory(system, monkeypatch, caplog):
    def no_driver(device):
        raise RuntimeError("Found no NVIDIA driver")

    monkeypatch.setattr(torch.cuda, "mem_get_info", no_driver)
    with caplog.at_level(logging.WARNING, logger="cnnstudy.base.memory"):
        limit = system.limit(device="cuda:0")
    assert (limit.bytes, limit.source) == (64 * GIB, "MemAvailable")
    assert "no NVIDIA driver" in caplog.text


def test_reads_this_machines_own_numbers_not_the_fallback():
    limit = describe_memory_limit()
    assert limit.source != "fallback"  # /proc/meminfo is readable here
    total = int(re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M).group(1)) * 1024
    assert 0 < limit.bytes <= total and available_memory_bytes() == limit.bytes


def test_module_imports_without_torch():
    """Snakemake rules may read the limit before (or without) importing torch."""
    script = "import sys; import cnnstudy.base.memory as m; m.available_memory_bytes(); assert 'torch' not in sys.modules"
    workflow = Path(memory.__file__).parents[2]
    subprocess.run([sys.executable, "-c", script], check=True, cwd=workflow)


# --- peak RSS --------------------------------------------------------------------------------------


def current_rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_rss_grows_after_touching_a_block():
    """The block is 200 MB past the gap between this process's peak and its current size: earlier tests
    (and torch's import) may have peaked far above what is resident now, and a fresh subprocess does not
    help, as Linux carries the parent's high-water mark across fork and exec."""
    before = peak_rss_mb()
    assert before > 0
    assert before >= current_rss_mb() - 1  # in MB, not KiB or bytes
    gap_mb = max(0.0, before - current_rss_mb())
    if gap_mb > 2048:
        pytest.skip(f"this process peaked {gap_mb:.0f} MB above its current size; too much to re-allocate")
    block = torch.ones(int((gap_mb + 200) * MIB), dtype=torch.uint8)  # filled, so every page is resident
    after = peak_rss_mb()
    assert after - before > 150
    assert after >= current_rss_mb() - 1
    del block


# --- activation estimate and chunk size ------------------------------------------------------------


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)
    )


def test_activation_estimate_of_a_small_cnn():
    conv_output = 8 * 16 * 16 * 4
    image = 3 * 16 * 16 * 4
    assert activation_bytes_per_image(small_cnn(), (3, 16, 16), "cpu") == 4 * conv_output + image


def test_activation_estimate_restores_training_flags_and_removes_hooks():
    model = small_cnn().train()
    model[1].eval()  # a per-module choice (like frozen BatchNorm) that a plain model.train() would undo
    activation_bytes_per_image(model, (3, 16, 16), "cpu")
    assert [module.training for module in model] == [True, False, True, True, True]
    assert model.training
    assert all(not module._forward_hooks for module in model.modules())


def test_activation_estimate_runs_without_gradients():
    seen = []
    model = small_cnn()
    model[0].register_forward_hook(lambda module, inputs, output: seen.append(output.requires_grad))
    activation_bytes_per_image(model, (3, 16, 16), "cpu")
    assert seen == [False]


def test_chunk_size_respects_requested_share_and_floor():
    per_image = 4 * 8 * 16 * 16 * 4 + 3 * 16 * 16 * 4  # the small CNN at 16 px: 35,840 B
    model = small_cnn()
    assert inference_chunk_size(model, (3, 16, 16), 64, "cpu", available=10 * GIB) == 64
    # 0.25 × 1 MB / 35840 B = 7.3 → 7
    assert inference_chunk_size(model, (3, 16, 16), 64, "cpu", available=2**20) == 2**20 // 4 // per_image
    assert inference_chunk_size(model, (3, 16, 16), 64, "cpu", available=2**20) == 7
    assert inference_chunk_size(model, (3, 16, 16), 64, "cpu", share=0.5, available=2**20) == 14
    assert inference_chunk_size(model, (3, 16, 16), 64, "cpu", available=1000) == 1
    assert inference_chunk_size(model, (3, 16, 16), 64, "cpu", available=0) == 1


def test_chunk_size_logs_when_it_splits(caplog):
    with caplog.at_level(logging.INFO, logger="cnnstudy.base.memory"):
        inference_chunk_size(small_cnn(), (3, 16, 16), 64, "cpu", available=2**20)
    assert "chunks of 7 images (requested 64)" in caplog.text
    assert "given by the caller" in caplog.text


def test_chunk_size_reads_the_limit_when_not_given(monkeypatch):
    monkeypatch.setattr(memory, "describe_memory_limit", lambda device: memory.MemoryLimit(2**20, "test"))
    assert inference_chunk_size(small_cnn(), (3, 16, 16), 64, "cpu") == 7


def test_chunk_size_arithmetic():
    assert chunk_size(512, 40 * MIB, 8 * GIB) == 51  # the study's CNN at 160 px under an 8 GiB limit
    assert chunk_size(512, 40 * MIB, 8 * GIB, share=MEMORY_SHARE) == chunk_size(512, 40 * MIB, 8 * GIB)
    with pytest.raises(ValueError):
        chunk_size(0, 1, 1)
    with pytest.raises(ValueError):
        chunk_size(1, 1, 1, share=0)
