import torch

from cnnstudy.data import load_split
from cnnstudy.devices import select_device
from cnnstudy.jobs import start_job
from cnnstudy.models import build_model, normalization
from cnnstudy.training import train

start_job(snakemake)
hp = snakemake.params.hyperparameters
device = select_device(snakemake.params.device)
train_split = load_split(snakemake.input.train, device)
val_split = load_split(snakemake.input.val, device)

pretrained = None  # the custom CNN always starts from scratch
pretrained_state = None
if hp["architecture"] == "resnet18":
    pretrained = hp["weights"] != "none"
    if pretrained:
        pretrained_state = torch.load(snakemake.input.weights[0], map_location="cpu", weights_only=True)

model = build_model(hp, len(train_split.classes), pretrained_state)
train(
    model,
    hp,
    train_split,
    val_split,
    device,
    outputs={
        key: getattr(snakemake.output, key) for key in ("checkpoint", "history", "gradients", "summary")
    },
    resume_dir=snakemake.params.resume_dir,
    normalization=normalization(hp, train_split.images),
    pretrained=pretrained,
)
