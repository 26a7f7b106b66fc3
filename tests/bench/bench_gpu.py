"""The study's models at full size on a GPU: images/s, bf16 against fp32, TFLOP/s, MFU and memory.

    python3 tests/bench/bench_gpu.py [--out benchmarks/gpu/bench_gpu.csv] [--budget-minutes 8]

Made for a bare GPU machine: needs only torch and pandas (no Snakemake, no network, no venv); imports
the workflow's own package from workflow/, so what it times is the training loop users run
(``cnnstudy.train.loop.make_loop`` and ``run_epoch``), not a copy. For every model of config.yaml at the
study's size (160 px, batch 128): images/s in bf16 and fp32, achieved TFLOP/s (counted FLOPs × images/s)
and its share of the GPU's dense bf16 peak (model FLOPs utilisation), and peak memory; torch.compile for
the baseline only; one full epoch of the baseline on a generated dataset of Imagenette's size (9,469
training images). Names the GPU and the torch version, prints a table and writes a CSV. Stops starting
new measurements once the time budget is spent. Without CUDA it says so and exits 0 (``--device cpu``
runs a small version of every measurement on the CPU, to check the script itself).
"""

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

from cnnstudy.base.settings import hyperparameters, model_names  # noqa: E402
from cnnstudy.data.tensors import Split  # noqa: E402
from cnnstudy.train.loop import make_loop, run_epoch  # noqa: E402
from cnnstudy.train.measurements import training_flops_per_image  # noqa: E402
from cnnstudy.train.models import build_model, normalization  # noqa: E402

IMAGENETTE_TRAINING_IMAGES = 9469
# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0}


def load_config():
    """config.yaml; without PyYAML (a bare GPU image), its JSON copy that tests keep in sync."""
    try:
        import yaml

        return yaml.safe_load((REPO / "config.yaml").read_text())
    except ImportError:
        return json.loads((REPO / "tests" / "bench" / "study_config.json").read_text())


def peak_tflops(name):
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def synthetic_split(count, image_size, classes, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 3, image_size, image_size), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, classes, (count,), generator=generator)
    names = [f"class{i}" for i in range(classes)]
    return Split(images.to(device), labels.to(device), [f"image{i}" for i in range(count)], names)


def measure(model_name, hp, device, steps, warmup, compile_model=False):
    """Images/s, TFLOP/s and peak memory of ``steps`` training steps after ``warmup`` steps."""
    split = synthetic_split(hp["batch_size"] * max(steps, warmup), hp["image_size"], 10, device)
    model = build_model(hp, 10)
    settings = {"device": str(device), "eval_batch_size": hp["batch_size"], "compile": compile_model}
    loop = make_loop(model, hp, split, device, normalization(hp, split.images), settings)
    started = time.perf_counter()
    run_epoch(loop, 1, steps=warmup)  # cudnn autotuning, allocator, compilation
    warmup_seconds = time.perf_counter() - started
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timed = run_epoch(loop, 2, steps=steps)
    flops = training_flops_per_image(lambda: build_model(hp, 10), hp["image_size"])
    images_per_second = timed["images"] / timed["seconds"]
    peak_memory = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else float("nan")
    return {
        "model": model_name,
        "precision": hp["precision"] if device.type == "cuda" else "fp32 (CPU)",
        "compile": compile_model,
        "batch_size": hp["batch_size"],
        "images_per_second": images_per_second,
        "gflop_per_image": flops / 1e9,
        "achieved_tflops": flops * images_per_second / 1e12,
        "peak_memory_gb": peak_memory,
        "warmup_seconds": warmup_seconds,
    }


def full_epoch(hp, device, images):
    """One epoch of the baseline over ``images`` generated images: the loop's own timing."""
    split = synthetic_split(images, hp["image_size"], 10, device)
    model = build_model(hp, 10)
    settings = {"device": str(device), "eval_batch_size": hp["batch_size"], "compile": False}
    loop = make_loop(model, hp, split, device, normalization(hp, split.images), settings)
    run_epoch(loop, 1, steps=2)  # warm-up
    epoch = run_epoch(loop, 2)
    return {"model": hp["model"], "precision": loop.precision, "compile": False, "batch_size": hp["batch_size"],
            "images_per_second": epoch["images"] / epoch["seconds"], "epoch_seconds": epoch["seconds"],
            "images": epoch["images"]}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "gpu" / "bench_gpu.csv"))
    parser.add_argument("--budget-minutes", type=float, default=8.0)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: a small check run")
    parser.add_argument("--models", help="comma-separated subset of the configured models (default: all)")
    args = parser.parse_args()

    import pandas as pd

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"No CUDA device (torch {torch.__version__}): nothing to measure. Run this on a GPU machine.")
        return 0
    device = torch.device(args.device)
    config = load_config()
    small = device.type == "cpu"  # a quick check of the script itself, not a measurement of anything
    if small:
        config["dataset"]["image_size"] = 32
        config["cnn"]["channels"], config["cnn"]["fc_hidden"] = [8, 16, 32], 16
        config["training"]["batch_size"] = config["transfer"]["training"]["batch_size"] = 4
    config["transfer"]["weights"] = "none"  # random weights time the same as ImageNet's
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (check run)"
    peak = peak_tflops(name)
    print(f"{name}; torch {torch.__version__}, CUDA {torch.version.cuda}; dense bf16 peak: "
          f"{f'{peak:g} TFLOP/s' if peak else 'unknown (no MFU)'}; fp32 convolutions may use TF32 "
          f"(cudnn.allow_tf32={torch.backends.cudnn.allow_tf32})", flush=True)  # fmt: skip

    deadline = time.monotonic() + 60 * args.budget_minutes
    models = args.models.split(",") if args.models else model_names(config)
    plan = [(model, precision, False) for model in models for precision in ("bf16", "fp32")]
    plan.append(("baseline", "bf16", True))
    rows = []
    for model, precision, compile_model in plan:
        if time.monotonic() > deadline:
            rows.append(
                {"model": model, "precision": precision, "compile": compile_model, "note": "skipped: budget"}
            )
            continue
        hp = {**hyperparameters(copy.deepcopy(config), model, seed=0), "precision": precision}
        try:
            rows.append(measure(model, hp, device, args.steps, args.warmup, compile_model))
        except torch.cuda.OutOfMemoryError as error:
            rows.append(
                {"model": model, "precision": precision, "compile": compile_model, "note": f"OOM: {error}"}
            )
            torch.cuda.empty_cache()
        print(rows[-1], flush=True)
    if time.monotonic() < deadline:
        hp = hyperparameters(copy.deepcopy(config), "baseline", seed=0)
        images = 64 if small else IMAGENETTE_TRAINING_IMAGES
        epoch = full_epoch(hp, device, images)
        epoch["note"] = f"one full epoch of {epoch['images']} images: {epoch['epoch_seconds']:.1f} s"
        rows.append(epoch)
        print(rows[-1], flush=True)

    frame = pd.DataFrame(rows)
    if peak and "achieved_tflops" in frame:
        frame["mfu"] = frame["achieved_tflops"] / peak
    frame.insert(0, "device", name)
    frame.insert(1, "torch", torch.__version__)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    shown = [c for c in ("model", "precision", "compile", "images_per_second", "gflop_per_image", "achieved_tflops",
                         "mfu", "peak_memory_gb", "note") if c in frame]  # fmt: skip
    print(frame[shown].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
