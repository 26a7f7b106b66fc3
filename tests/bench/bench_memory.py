"""Evaluation and the dead-unit probe of 512 images at 160 px stay within the stated memory bound.

    python tests/bench/bench_memory.py [--available-gb 2] [--images 512] [--glibc-default]

The bound (cnnstudy.base.memory): the activations of one inference chunk take at most MEMORY_SHARE of the
memory available to the job. With the study's baseline CNN (211 M parameters) at 160 px, one forward
pass of 512 images at once would need about 25 GB; here the chunks are sized for ``--available-gb``
(a job's memory limit, as a cgroup or a scheduler would set it; default: what this machine reports).
Measures the process's peak resident memory above its size before inference, for evaluation and for
the probe, and exits 1 if either exceeds the bound.

``--glibc-default`` leaves glibc's malloc as it starts (its mmap threshold rising with the blocks freed)
instead of what ``inference_chunk_size`` sets (``limit_allocator_caching``): the behaviour before that
fix, which kept freed activations: 364 to 932 MiB measured against the 512 MiB bound.
"""

import argparse
import ctypes
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

from cnnstudy.base import memory  # noqa: E402
from cnnstudy.base.memory import (  # noqa: E402
    MEMORY_SHARE,
    activation_bytes_per_image,
    describe_memory_limit,
    inference_chunk_size,
    peak_rss_mb,
)
from cnnstudy.train.inference import predict  # noqa: E402
from cnnstudy.train.measurements import dead_unit_fractions  # noqa: E402
from cnnstudy.train.models import build_cnn  # noqa: E402

STATUS = Path("/proc/self/status")


def status_mb(field):
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MiB."""
    for line in STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in {STATUS}")


def reset_peak():
    """Start a fresh peak (Linux: writing 5 to clear_refs resets VmHWM); False where that is refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mb(fresh):
    return status_mb("VmHWM") if fresh else peak_rss_mb()


def kept_by_malloc_mb():
    """Bytes glibc's heaps hold free (not given back to the system), in MiB; None off glibc."""

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks")
            + ("fordblks", "keepcost")
        ]

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = MallInfo2
    return mallinfo2().fordblks / 2**20


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--available-gb", type=float, help="the job's memory limit (default: as detected)")
    parser.add_argument(
        "--images", type=int, default=512, help="evaluated and probed (the study's eval batch)"
    )
    parser.add_argument(
        "--glibc-default", action="store_true", help="leave malloc's settings alone (the old behaviour)"
    )
    args = parser.parse_args()
    if args.glibc_default:
        memory.limit_allocator_caching = lambda *_args, **_kwargs: False
    device = torch.device("cpu")
    model = build_cnn(160, [128, 256, 512], 3, 1024, 10).to(memory_format=torch.channels_last).eval()
    images = torch.randint(0, 256, (args.images, 3, 160, 160), dtype=torch.uint8)
    mean, std = torch.full((3,), 0.45), torch.full((3,), 0.25)
    limit = describe_memory_limit(device)
    available = int(args.available_gb * 2**30) if args.available_gb else limit.bytes
    per_image = activation_bytes_per_image(model, (3, 160, 160), device)
    chunk = inference_chunk_size(model, (3, 160, 160), args.images, device, available=available)
    bound_mb = MEMORY_SHARE * available / 2**20

    before = status_mb("VmRSS")
    fresh = reset_peak()  # else the process's lifetime peak, which can only overstate the growth
    started = time.perf_counter()
    logits = predict(model, images, mean, std, chunk, device)
    evaluation = peak_mb(fresh) - before
    fresh = fresh and reset_peak()
    dead = dead_unit_fractions(model, images, mean, std, chunk)
    probe = peak_mb(fresh) - before
    seconds = time.perf_counter() - started
    growth = max(evaluation, probe)

    malloc = (
        "glibc default (--glibc-default)" if args.glibc_default else "freed blocks of 4 MiB and more returned"
    )
    print(
        f"baseline CNN at 160 px, {args.images} images evaluated and probed in {seconds:.0f} s, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; malloc: {malloc}"
    )
    print(
        f"available to the job: {available / 2**30:.1f} GiB ({'--available-gb' if args.available_gb else limit})"
    )
    print(f"estimated working memory per image: {per_image / 2**20:.1f} MiB; all {args.images} at once: "
          f"{args.images * per_image / 2**30:.1f} GiB")  # fmt: skip
    print(
        f"chunk: {chunk} images (estimated {chunk * per_image / 2**20:,.0f} MiB); bound: "
        f"{MEMORY_SHARE:.0%} of available = {bound_mb:,.0f} MiB"
    )
    kept = kept_by_malloc_mb()
    kept = f"; malloc keeps {kept:,.0f} MiB freed" if kept is not None else ""
    print(
        f"measured peak growth: evaluation {evaluation:,.0f} MiB, probe {probe:,.0f} MiB "
        f"({'fresh peak per phase' if fresh else 'lifetime peak'}){kept}"
    )
    assert logits.shape == (args.images, 10) and set(dead) == {
        "dead_conv1",
        "dead_conv2",
        "dead_conv3",
        "dead_fc1",
    }
    if growth > bound_mb:
        print(f"FAILED: {growth:,.0f} MiB exceeds the bound of {bound_mb:,.0f} MiB")
        return 1
    print(f"PASSED: {growth:,.0f} MiB within the bound of {bound_mb:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
