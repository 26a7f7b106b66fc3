"""Inside the models: what a model got wrong, its first-layer filters, and where it looks (Grad-CAM).

One job per model (``inspect_model``) writes all three figures, the mistakes table and the model's
Grad-CAM maps of the shared image set, which ``comparison_saliency`` draws for every model side by side:
each job start costs seconds of importing torch, so the report gains one job per model, not four.
Images are drawn as stored in the prepared tensors: un-normalised, in the dataset's orientation and colours.
"""

import math

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from cnnstudy.analysis.mistakes import COLUMNS, PER_TRUE_CLASS, confident_mistakes, read_predictions
from cnnstudy.analysis.saliency import gradcam, stratified_images
from cnnstudy.base.devices import select_device
from cnnstudy.base.files import atomic_path, load_torch_file
from cnnstudy.data.tensors import load_split
from cnnstudy.figures.per_model import _figure, _label, _save, _wrap
from cnnstudy.figures.style import FONT, SMALL, WIDTH, model_styles
from cnnstudy.train.inference import load_trained_model
from cnnstudy.train.models import build_model

SALIENCY_COLUMNS = 5  # per-model Grad-CAM: one image per class, five to a row
COMPARED_IMAGES = 8  # the cross-model figure: the first eight classes' images
MISTAKE_COLUMNS = 6
HEAT = colormaps["inferno"]  # perceptually uniform, readable in grey and by colour-blind readers
HEAT_ALPHA = 0.5
MAP_NOTE = "map: 0 (no evidence for the class) → 1 (the map's peak), laid over the image"


def _show(ax, image, title=None):
    """A uint8 C×H×W image as stored, with its pixels visible (no smoothing)."""
    ax.imshow(image.permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=SMALL)


def _overlay(ax, image, heat, title=None):
    _show(ax, image, title)
    ax.imshow(heat.numpy(), cmap=HEAT, alpha=HEAT_ALPHA, vmin=0, vmax=1, interpolation="bilinear")


def _blank(ax, text=""):
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=SMALL, transform=ax.transAxes)


def _heat_bar(figure, cax):
    """The maps' colour scale in ``cax``, a thin gridspec cell of its own below the images (placed by the
    gridspec, not by shrinking the images' axes: their fixed aspect leaves colorbar(ax=…) misplaced)."""
    bar = figure.colorbar(ScalarMappable(Normalize(0, 1), HEAT), cax=cax, orientation="horizontal")
    bar.set_label(MAP_NOTE, fontsize=SMALL)


def _percent(probability):
    return f"{probability:.0%}".replace("%", " %")


# ---- mistakes -----------------------------------------------------------------------------------------


def draw_mistakes(mistakes, split, label, wrong, total):
    """The most confident mistakes, each image with its true class, the prediction and its probability."""
    rows = max(1, math.ceil(len(mistakes) / MISTAKE_COLUMNS))
    figure = _figure(WIDTH, 0.9 + rows * 2.0)
    title = (
        f"{label}: the {len(mistakes)} most confident of {wrong} wrong predictions on {total} test "
        f"images (at most {PER_TRUE_CLASS} per true class)"
    )
    figure.suptitle(_wrap(title, WIDTH))
    axes = figure.subplots(rows, MISTAKE_COLUMNS, squeeze=False).ravel()
    position = {name: index for index, name in enumerate(split.files)}
    for ax, row in zip(axes, mistakes.itertuples(), strict=False):
        text = f"true: {row.true}\npred: {row.predicted}\np = {_percent(row.probability)}"
        _show(ax, split.images[position[row.file]], text)
    for ax in axes[len(mistakes) :]:
        _blank(ax)
    if mistakes.empty:
        _blank(axes[0], f"no mistakes on the {total} test images")
    return figure


# ---- filters ------------------------------------------------------------------------------------------


def first_layer_weights(model):
    """The first convolution's kernels, out × 3 × k × k, on the CPU."""
    conv = next(module for module in model.modules() if isinstance(module, torch.nn.Conv2d))
    return conv.weight.detach().float().cpu()


def filter_grid(weights, scale):
    """Every kernel as an RGB tile (grey = 0, full colour = ±scale), tiled with one-pixel gaps."""
    count, _, size, _ = weights.shape
    columns = min(count, 16 if count > 64 else 8)
    rows = math.ceil(count / columns)
    grid = np.ones((rows * (size + 1) - 1, columns * (size + 1) - 1, 3))
    tiles = (0.5 + weights / (2 * scale)).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        grid[row * (size + 1) : row * (size + 1) + size, column * (size + 1) : column * (size + 1) + size] = (
            tile
        )
    return grid


def draw_filters(initial, trained, label, start):
    """The first layer's kernels at the start of training and at the best epoch, on one shared scale."""
    scale = float(max(initial.abs().max(), trained.abs().max()))
    change = float((trained - initial).norm() / initial.norm().clamp_min(1e-12))
    change_words = (
        f"relative change ‖W − W₀‖ / ‖W₀‖ = {change:.2f}" if change else "unchanged: it did not train"
    )
    grids = [filter_grid(weights, scale) for weights in (initial, trained)]
    panel_in = (WIDTH - 0.4) / 2
    figure = _figure(WIDTH, 1.5 + panel_in * grids[0].shape[0] / grids[0].shape[1])
    figure.suptitle(
        _wrap(
            f"{label}: the {len(initial)} first-layer filters ({initial.shape[-1]}×{initial.shape[-1]}, "
            f"RGB); {change_words}",
            WIDTH,
        )
    )
    for ax, grid, title in zip(
        figure.subplots(1, 2), grids, (f"at the start: {start}", "after training (best epoch)"), strict=True
    ):
        ax.imshow(grid, interpolation="nearest")
        ax.set_title(_wrap(title, WIDTH / 2, FONT))
        ax.set_axis_off()
    figure.supxlabel(
        _wrap(
            f"Both panels on one scale, normalised jointly: grey is 0, a saturated channel is ±{scale:.3f}, "
            "the largest weight of either panel.",
            WIDTH,
            FONT,
        ),
        fontsize=SMALL,
    )
    return figure


def initial_model(checkpoint, weights_path=None, weights_sha256=None):
    """The model as its training started: rebuilt from the run's seed (build_model seeds itself), or,
    for a pretrained ResNet-18, from the weights file it started from."""
    hp = checkpoint["hyperparameters"]
    state = None
    if checkpoint.get("pretrained"):
        from cnnstudy.train.weights import load_weights  # here: it imports torchvision's downloads (≈3 s)

        state = load_weights(weights_path, weights_sha256)
    return build_model(hp, len(checkpoint["classes"]), state)


def start_description(checkpoint):
    if checkpoint.get("pretrained"):
        return f"the pretrained weights ({checkpoint['hyperparameters'].get('weights', 'ImageNet')})"
    return f"random initialisation from seed {checkpoint['hyperparameters']['seed']}"


# ---- Grad-CAM -----------------------------------------------------------------------------------------


def _saliency_title(record):
    height, width = record["map_shape"]
    size = record["predicted_maps"].shape[-1]
    return f"Grad-CAM at {record['layer']}: a {height}×{width} map, upsampled to {size}×{size} px"


def draw_saliency(record, images, label):
    """Each shared image, the map of its predicted class, and, for a mistake, the map of its true class."""
    count = len(record["files"])
    blocks = math.ceil(count / SALIENCY_COLUMNS)
    figure = _figure(WIDTH, 1.8 + blocks * 3 * 1.95)
    figure.suptitle(_wrap(f"Where {label} looks. {_saliency_title(record)}", WIDTH))
    grid = figure.add_gridspec(blocks * 3 + 1, SALIENCY_COLUMNS, height_ratios=[1] * (blocks * 3) + [0.06])
    axes = np.array([[figure.add_subplot(grid[row, column]) for column in range(SALIENCY_COLUMNS)]
                     for row in range(blocks * 3)])  # fmt: skip
    classes = record["classes"]
    for index in range(blocks * SALIENCY_COLUMNS):
        block, column = divmod(index, SALIENCY_COLUMNS)
        image_ax, predicted_ax, true_ax = axes[block * 3 : block * 3 + 3, column]
        if index >= count:
            for ax in (image_ax, predicted_ax, true_ax):
                _blank(ax)
            continue
        true, predicted = int(record["true"][index]), int(record["predicted"][index])
        probability = float(record["probabilities"][index, predicted])
        _show(image_ax, images[index], f"true: {classes[true]}")
        _overlay(
            predicted_ax,
            images[index],
            record["predicted_maps"][index],
            f"pred: {classes[predicted]}\n{_percent(probability)}, its map",
        )
        if predicted == true:
            _blank(true_ax, "correct:\nthe map above is\nthe true class's")
        else:
            _overlay(true_ax, images[index], record["true_maps"][index], f"true class's map\n{classes[true]}")
    _heat_bar(figure, figure.add_subplot(grid[-1, 1:-1]))
    return figure


def saliency_record(model, checkpoint, split, device):
    """The shared images' Grad-CAM maps (predicted and true class) with what the model said."""
    indices = stratified_images(split.labels.cpu(), split.files)
    images = split.images[indices]
    labels = split.labels[indices]
    mean, std = (torch.tensor(checkpoint["normalization"][key], device=device) for key in ("mean", "std"))
    predicted, true = gradcam(model, images, mean, std, targets=labels, device=device)
    return {
        "model": checkpoint["hyperparameters"]["model"],
        "seed": checkpoint["hyperparameters"]["seed"],
        "pretrained": checkpoint.get("pretrained"),
        "files": [split.files[index] for index in indices],
        "classes": list(split.classes),
        "true": labels.cpu(),
        "predicted": predicted.probabilities.argmax(dim=1),
        "probabilities": predicted.probabilities,
        "predicted_maps": predicted.maps.half(),  # display only: 3 significant digits are plenty
        "true_maps": true.maps.half(),
        "layer": predicted.layer,
        "map_shape": list(predicted.map_shape),
    }


def draw_comparison_saliency(records, split, models):
    """The first COMPARED_IMAGES shared images, one row per model: each model's map of its prediction."""
    count = min(COMPARED_IMAGES, len(records[0]["files"]))
    position = {name: index for index, name in enumerate(split.files)}
    images = [split.images[position[name]] for name in records[0]["files"][:count]]
    classes = records[0]["classes"]
    label_in = 1.25
    panel_in = (WIDTH - label_in) / count
    figure = _figure(WIDTH, 1.2 + (len(records) + 1) * (panel_in + 0.42))
    grid = figure.add_gridspec(
        len(records) + 2, count + 1, width_ratios=[label_in] + [panel_in] * count,
        height_ratios=[1] * (len(records) + 1) + [0.06],
    )  # fmt: skip
    figure.suptitle(
        _wrap(
            "The same test images through every model: Grad-CAM of each model's predicted class "
            "(each model's last conv block with a map of at least 4×4: "
            + ", ".join(sorted({f"{r['layer']} {r['map_shape'][0]}×{r['map_shape'][1]}" for r in records}))
            + ")",
            WIDTH,
        )
    )
    styles = model_styles(models)
    for row, record in enumerate([None, *records]):
        name_ax = figure.add_subplot(grid[row, 0])
        _blank(name_ax)
        if record is not None:
            name = _label(record["model"], record["pretrained"], "\n")
            name_ax.text(
                1.0, 0.5, name, ha="right", va="center", fontsize=SMALL, color=styles[record["model"]].colour,
                fontweight="bold", transform=name_ax.transAxes,
            )  # fmt: skip
        for column in range(count):
            ax = figure.add_subplot(grid[row, column + 1])
            true = classes[int(records[0]["true"][column])]
            if record is None:
                _show(ax, images[column], f"true:\n{true}")
                continue
            predicted = int(record["predicted"][column])
            verdict = "" if classes[predicted] == true else " · wrong"
            probability = float(record["probabilities"][column, predicted])
            title = f"{classes[predicted]}\n{_percent(probability)}{verdict}"
            _overlay(ax, images[column], record["predicted_maps"][column].float(), title)
    _heat_bar(figure, figure.add_subplot(grid[-1, 1 + count // 4 : 1 + count - count // 4]))
    return figure


# ---- the jobs -----------------------------------------------------------------------------------------


def inspect_job(
    checkpoint_path, test_path, predictions_path, outputs, settings, weights=(), weights_sha256=None
):
    """One model's mistakes, filters and Grad-CAM: the inspect_model rule's whole job."""
    device = select_device(settings["device"], settings["gpu_wait_minutes"])
    split = load_split(test_path, torch.device("cpu"))
    model, checkpoint = load_trained_model(checkpoint_path, device)
    del checkpoint[
        "model_state"
    ]  # the model holds a copy: at full size, 845 MB freed before the rebuild below
    label = _label(checkpoint["hyperparameters"]["model"], checkpoint.get("pretrained"))

    predictions = read_predictions(predictions_path)
    mistakes = confident_mistakes(predictions)
    with atomic_path(outputs["mistakes_table"]) as temporary:
        mistakes[COLUMNS].to_csv(temporary, index=False, float_format="%.4f")
    wrong = int((predictions["true"] != predictions["predicted"]).sum())
    _save(draw_mistakes(mistakes, split, label, wrong, len(predictions)), outputs["mistakes"])

    initial = first_layer_weights(initial_model(checkpoint, next(iter(weights), None), weights_sha256))
    trained = first_layer_weights(model)
    _save(draw_filters(initial, trained, label, start_description(checkpoint)), outputs["filters"])

    record = saliency_record(model, checkpoint, split, device)
    with atomic_path(outputs["saliency_maps"]) as temporary:
        torch.save(record, temporary)
    images = [split.images[split.files.index(name)] for name in record["files"]]
    _save(draw_saliency(record, images, label), outputs["saliency"])


def comparison_saliency_job(record_paths, test_path, models, out_png):
    records = {record["model"]: record for record in map(load_torch_file, record_paths)}
    ordered = [records[model] for model in models if model in records]
    split = load_split(test_path, torch.device("cpu"))
    _save(draw_comparison_saliency(ordered, split, models), out_png)
