"""Counted training FLOPs of every model at the study's size, measured CPU speed, and a GPU projection.

    python tests/bench/bench_flops.py [--steps 2] [--batch-size 4] [--peak-tflops 989] [--mfu 0.3]

GFLOP/image are forward + backward of one training image at 160 px, counted by torch.utils.flop_counter
(only what trains is differentiated: a frozen backbone costs its forward pass alone). CPU images/s are
measured with the training loop itself (``make_loop``/``run_epoch``) on random 160 px images, at a batch
small enough for a CPU: the CNN's rate is then dominated by the Adam step over its 211 M parameters and
the epoch's gradient histograms, which a batch of 128 amortises. The last
column is a PROJECTION, not a measurement: the time 50 epochs of Imagenette's 9,469 training images
would take at the stated share (--mfu) of the stated dense bf16 peak (--peak-tflops; 989 is an H200's
or H100's), from the counted FLOPs alone. `make bench-gpu` measures the real thing on a GPU.
"""

import argparse
import copy
import sys
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

from bench_gpu import measure  # noqa: E402

from cnnstudy.base.settings import hyperparameters, model_names  # noqa: E402

IMAGES, EPOCHS = 9469, 50


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per model")
    parser.add_argument("--batch-size", type=int, default=4, help="images per step on the CPU")
    parser.add_argument(
        "--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the projected GPU"
    )
    parser.add_argument("--mfu", type=float, default=0.3, help="assumed share of that peak the loop reaches")
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["transfer"]["weights"] = "none"
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads, {config['dataset']['image_size']} px; "
          f"projection: {args.mfu:.0%} of {args.peak_tflops:g} TFLOP/s (dense bf16), {EPOCHS} epochs × {IMAGES} images")  # fmt: skip
    print(f"{'model':22} {'GFLOP/image':>12} {'CPU images/s':>13} {'projected 50 epochs on GPU':>28}")
    for model in model_names(config):
        hp = {**hyperparameters(copy.deepcopy(config), model, seed=0), "batch_size": args.batch_size}
        row = measure(model, hp, torch.device("cpu"), steps=args.steps, warmup=1)
        minutes = EPOCHS * IMAGES * row["gflop_per_image"] * 1e9 / (args.mfu * args.peak_tflops * 1e12) / 60
        print(f"{model:22} {row['gflop_per_image']:12.2f} {row['images_per_second']:13.2f} "
              f"{f'{minutes:.1f} min (projection)':>28}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
