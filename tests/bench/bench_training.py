"""Training throughput: our loop against the textbook one, same model, same images (not a test).

    python tests/bench/bench_training.py [--device cpu|cuda] [--image-size 32] [--width 16] [--epochs 5]

Textbook: torchvision ImageFolder + PIL transforms + DataLoader (2 workers), as in PyTorch's CIFAR-10
tutorial, decoding and resizing every JPEG every epoch. Ours: the workflow's own `train()` on tensors
prepared once and kept on the device. Both train the baseline CNN on the demo's generated dataset with
the same batch size; the first epoch of each is a warm-up and not counted. Prints images per second and
the ratio. The acceptance target on 2 CPU cores at the demo's size is a ratio of at least 3.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "workflow"), str(REPO / "tests")]

from cnnstudy.base.layout import TRAINING_OUTPUTS  # noqa: E402
from cnnstudy.data.demo_archive import write_demo_archive  # noqa: E402
from cnnstudy.data.download import unpack_dataset  # noqa: E402
from cnnstudy.data.prepare import prepare  # noqa: E402
from cnnstudy.data.tensors import load_split  # noqa: E402
from cnnstudy.train.loop import train  # noqa: E402
from cnnstudy.train.models import build_model, normalization  # noqa: E402
from helpers.training import tiny_hyperparameters  # noqa: E402

TARGET_RATIO = 3.0


def textbook_images_per_second(image_folder, hp, mean, std, device, epochs):
    transform = transforms.Compose(
        [
            transforms.Resize(hp["image_size"]),
            transforms.CenterCrop(hp["image_size"]),
            transforms.ToTensor(),
            transforms.Normalize(mean.tolist(), std.tolist()),
        ]
    )
    dataset = datasets.ImageFolder(image_folder, transform=transform)
    loader = DataLoader(dataset, batch_size=hp["batch_size"], shuffle=True, num_workers=2, drop_last=True)
    model = build_model(hp, len(dataset.classes)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["lr"], betas=tuple(hp["betas"]))
    rates = []
    for _ in range(epochs + 1):  # the first epoch warms up (worker start, allocator)
        model.train()
        seen, started = 0, time.perf_counter()
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            seen += len(labels)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(seen / (time.perf_counter() - started))
    return statistics.median(rates[1:])


def our_images_per_second(data_dir, output_dir, hp, device, epochs):
    train_split = load_split(data_dir / "train.pt", device)
    val_split = load_split(data_dir / "val.pt", device)
    model = build_model(hp, len(train_split.classes))
    outputs = {key: output_dir / name for key, name in TRAINING_OUTPUTS.items()}
    history, _ = train(
        model, {**hp, "epochs": epochs + 1}, train_split, val_split, device, outputs, output_dir / "resume",
        normalization(hp, train_split.images),
    )  # fmt: skip
    return statistics.median(history["images_per_second"].iloc[1:])


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--image-size", type=int, default=32, help="px (the demo's 32; the study's 160)")
    parser.add_argument(
        "--width", type=int, default=16, help="conv1 channels (the demo's 16; the study's 128)"
    )
    parser.add_argument(
        "--fc-hidden", type=int, default=64, help="FC1 units (the demo's 64; the study's 1024)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="(the demo's 32; the study's 128)")
    parser.add_argument("--per-class", type=int, default=100, help="training images per class")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs, after one warm-up epoch")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    hp = tiny_hyperparameters(
        "baseline", image_size=args.image_size, channels=[args.width, 2 * args.width, 4 * args.width],
        fc_hidden=args.fc_hidden, batch_size=args.batch_size, gradient_epochs=[], probe_size=64,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        archive = write_demo_archive(scratch / "demo.tgz", train_per_class=args.per_class, val_per_class=10)
        dataset = unpack_dataset(archive, "imagenette-demo", scratch / "imagenette-demo")
        prepare(dataset, scratch / "data", args.image_size, 0.1, 0, False, args.threads)
        # the textbook loop reads exactly the training images our split holds
        image_folder = scratch / "train_only"
        for path in load_split(scratch / "data" / "train.pt", "cpu").files:
            (image_folder / path).parent.mkdir(parents=True, exist_ok=True)
            (image_folder / path).symlink_to(dataset / path)
        mean, std = normalization(hp, load_split(scratch / "data" / "train.pt", "cpu").images)

        ours = our_images_per_second(scratch / "data", scratch / "ours", hp, device, args.epochs)
        textbook = textbook_images_per_second(image_folder / "train", hp, mean, std, device, args.epochs)

    print(f"torch {torch.__version__}, device {device}, {args.threads} threads, image {args.image_size} px, "
          f"width {args.width}, batch {args.batch_size}, {args.per_class} training images per class")  # fmt: skip
    print(f"textbook loop (ImageFolder + PIL + DataLoader): {textbook:10.1f} images/s")
    print(f"ours (device-resident tensors, batched aug.):   {ours:10.1f} images/s")
    verdict = "meets" if ours / textbook >= TARGET_RATIO else "misses"
    print(f"ratio ours/textbook: {ours / textbook:.2f}x ({verdict} the {TARGET_RATIO:.0f}x target)")


if __name__ == "__main__":
    main()
