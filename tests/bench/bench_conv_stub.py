"""Time MyConvStub against torch.nn.functional.conv2d (not a test: pytest does not collect it).

    python tests/bench/bench_conv_stub.py [--device cpu|cuda] [--repeats 20] [--threads N]

The acceptance target is the first case (128 → 128 channels, 3×3, a 4×128×64×64 batch): ours at most
2.5× F.conv2d's median time on 2 CPU cores. Ours and PyTorch's forwards alternate, so a load that
comes and goes on a shared machine slows both alike; the minimum is printed beside the median
because it is the least disturbed by such load.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow"))

from cnnstudy.conv.checks import full_float32  # noqa: E402
from cnnstudy.conv.stub import MyConvStub  # noqa: E402

TARGET_RATIO = 2.5
# (name, batch, in channels, out channels, kernel, stride, groups, image size); the first is the target.
CASES = (
    ("128→128 3×3 (target)", 4, 128, 128, 3, 1, 1, 64),
    ("3→64 7×7", 4, 3, 64, 7, 1, 1, 64),
    ("64→64 3×3 stride 2", 4, 64, 64, 3, 2, 1, 64),
    ("128→256 3×3 groups 32", 4, 128, 256, 3, 1, 32, 64),
)


def _time_ms(forward, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    forward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1e3


def bench(case, device, repeats, warmup=3):
    name, batch, cin, cout, kernel, stride, groups, size = case
    torch.manual_seed(0)
    conv = MyConvStub(kernel, groups, cin, cout, True, stride, 1).to(device)
    x = torch.randn(batch, cin, size, size, device=device)

    def ours():
        return conv(x)

    def theirs():
        return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)

    ours_ms, torch_ms = [], []
    with torch.no_grad(), full_float32():  # TF32 would make cuDNN's side faster and wrong
        error = (ours() - theirs()).abs().max().item()
        for _ in range(warmup):
            ours(), theirs()
        for _ in range(repeats):
            ours_ms.append(_time_ms(ours, device))
            torch_ms.append(_time_ms(theirs, device))
    return name, error, ours_ms, torch_ms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=20, help="timed forwards of each, after a warm-up")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"

    print(
        f"torch {torch.__version__}, device {name}, {torch.get_num_threads()} threads, {args.repeats} repeats"
    )
    print(f"{'case':24} {'ours ms':>17} {'F.conv2d ms':>17} {'ratio':>6} {'max abs err':>11}")
    print(f"{'':24} {'median':>8} {'min':>8} {'median':>8} {'min':>8}")
    target_ratio = None
    for case in CASES:
        label, error, ours_ms, torch_ms = bench(case, device, args.repeats)
        ratio = statistics.median(ours_ms) / statistics.median(torch_ms)
        target_ratio = ratio if target_ratio is None else target_ratio
        print(
            f"{label:24} {statistics.median(ours_ms):8.2f} {min(ours_ms):8.2f} "
            f"{statistics.median(torch_ms):8.2f} {min(torch_ms):8.2f} {ratio:5.2f}× {error:11.2e}"
        )
    verdict = "met" if target_ratio <= TARGET_RATIO else "NOT met"
    print(f"target: ours ≤ {TARGET_RATIO}× F.conv2d on {CASES[0][0]}: {target_ratio:.2f}× ({verdict})")


if __name__ == "__main__":
    main()
