"""Evaluation and the dead-unit probe of 512 images at 160 px stay within the stated memory bound.

    python tests/bench/bench_memory.py [--available-gb 2] [--images 512]

The bound (cnnstudy.base.memory): the activations of one inference chunk take at most MEMORY_SHARE of the
memory available to the job. With the study's baseline CNN (211 M parameters) at 160 px, one forward
pass of 512 images at once would need about 20 GB; here the chunks are sized for ``--available-gb``
(a job's memory limit, as a cgroup or a scheduler would set it; default: what this machine reports).
Measures the process's peak resident memory above its size before inference and exits 1 if that
growth exceeds the bound.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

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


def resident_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--available-gb", type=float, help="the job's memory limit (default: as detected)")
    parser.add_argument(
        "--images", type=int, default=512, help="evaluated and probed (the study's eval batch)"
    )
    args = parser.parse_args()
    device = torch.device("cpu")
    model = build_cnn(160, [128, 256, 512], 3, 1024, 10).to(memory_format=torch.channels_last).eval()
    images = torch.randint(0, 256, (args.images, 3, 160, 160), dtype=torch.uint8)
    mean, std = torch.full((3,), 0.45), torch.full((3,), 0.25)
    limit = describe_memory_limit(device)
    available = int(args.available_gb * 2**30) if args.available_gb else limit.bytes
    per_image = activation_bytes_per_image(model, (3, 160, 160), device)
    chunk = inference_chunk_size(model, (3, 160, 160), args.images, device, available=available)
    bound_mb = MEMORY_SHARE * available / 2**20
    before = resident_mb()
    started = time.perf_counter()
    logits = predict(model, images, mean, std, chunk, device)
    dead = dead_unit_fractions(model, images, mean, std, chunk)
    seconds = time.perf_counter() - started
    growth = peak_rss_mb() - before
    print(
        f"baseline CNN at 160 px, {args.images} images evaluated and probed in {seconds:.0f} s, torch {torch.__version__}"
    )
    print(
        f"available to the job: {available / 2**30:.1f} GiB ({'--available-gb' if args.available_gb else limit})"
    )
    print(f"estimated working memory per image: {per_image / 2**20:.1f} MiB; all {args.images} at once: "
          f"{args.images * per_image / 2**30:.1f} GiB")  # fmt: skip
    print(f"chunk: {chunk} images; bound: {MEMORY_SHARE:.0%} of available = {bound_mb:,.0f} MiB")
    print(f"measured peak growth during inference and probing: {growth:,.0f} MiB")
    assert logits.shape == (args.images, 10) and set(dead) == {
        "dead_conv1",
        "dead_conv2",
        "dead_conv3",
        "dead_fc1",
    }
    if growth > bound_mb:
        print(f"FAILED: {growth:,.0f} MiB exceeds the bound of {bound_mb:,.0f} MiB")
        return 1
    print("PASSED: within the bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
