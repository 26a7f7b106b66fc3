"""Grad-CAM on a model whose answer is known, its layer choice on any CNN and on ResNet-18, its memory."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

from cnnstudy.analysis.saliency import MIN_SIDE, gradcam, gradcam_layer, stratified_images
from cnnstudy.train.models import TransferResNet18, build_cnn

ZERO, ONE = torch.zeros(3), torch.ones(3)  # normalisation that keeps pixels in [0, 1]


def colour_detector():
    """Class 0's evidence is red, class 1's green: channel c of relu1 is colour c, pooled to its score."""
    conv = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0] = 1.0  # red
        conv.weight[1, 1] = 1.0  # green
    model = nn.Sequential(
        OrderedDict(conv1=conv, relu1=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten())
    )
    return model


def red_and_green_image(size=16):
    """Red in the top-left quadrant, green in the bottom-right, black elsewhere (uint8, as stored)."""
    image = torch.zeros(1, 3, size, size, dtype=torch.uint8)
    half = size // 2
    image[0, 0, :half, :half] = 255
    image[0, 1, half:, half:] = 255
    return image


def quadrant_shares(heat):
    half = heat.shape[-1] // 2
    total = heat.sum()
    return heat[:half, :half].sum() / total, heat[half:, half:].sum() / total


def test_the_map_of_a_class_lies_where_its_evidence_is():
    model = colour_detector()
    image = red_and_green_image()
    red_map, green_map = gradcam(model, image, ZERO, ONE, targets=torch.tensor([1]), chunk_size=1)
    top_left, bottom_right = quadrant_shares(red_map.maps[0])
    assert int(red_map.probabilities[0].argmax()) == 0  # equal evidence: ties go to class 0
    assert top_left > 0.9 and bottom_right < 0.05
    top_left, bottom_right = quadrant_shares(green_map.maps[0])
    assert bottom_right > 0.9 and top_left < 0.05
    assert red_map.maps.shape == (1, 16, 16) and float(red_map.maps.max()) == pytest.approx(1.0)


def test_no_parameter_gradient_is_allocated_and_flags_are_restored():
    model = build_cnn(32, [4, 8], 3, 8, 10)
    model.fc2.weight.requires_grad_(False)
    before = {name: p.requires_grad for name, p in model.named_parameters()}
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    gradcam(model, images, ZERO, ONE, chunk_size=2)
    assert all(p.grad is None for p in model.parameters())
    assert {name: p.requires_grad for name, p in model.named_parameters()} == before


def test_maps_do_not_depend_on_the_chunk():
    torch.manual_seed(0)
    model = build_cnn(32, [4, 8], 3, 8, 10)
    images = torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(7) % 10
    one = gradcam(model, images, ZERO, ONE, targets=labels, chunk_size=1)
    seven = gradcam(model, images, ZERO, ONE, targets=labels, chunk_size=7)
    for a, b in zip(one, seven, strict=True):
        torch.testing.assert_close(a.maps, b.maps, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(a.probabilities, b.probabilities)


@pytest.mark.parametrize(
    ("channels", "size", "layer", "side"),
    [
        ([4, 8, 16], 32, "relu3", 8),  # the demo's CNN: the last block's activation, before pooling
        ([4, 8, 16], 160, "relu3", 40),  # the study's sizes
        ([4, 8, 8, 8, 8], 32, "relu4", 4),  # relu5 is 2×2: one block earlier
        ([4, 8], 8, "relu2", 4),  # exactly 4×4 is enough
        ([4, 8, 8], 8, "relu2", 4),  # relu3 is 2×2
    ],
)
def test_layer_choice_on_the_custom_cnn(channels, size, layer, side):
    model = build_cnn(size, channels, 3, 8, 10)
    chosen = gradcam_layer(model, (3, size, size))
    assert (chosen.name, chosen.map_shape) == (layer, (side, side))
    images = torch.zeros(2, 3, size, size, dtype=torch.uint8) + 100
    maps, _ = gradcam(model, images, ZERO, ONE, chunk_size=2)
    assert maps.maps.shape == (2, size, size) and maps.layer == layer and maps.map_shape == (side, side)


@pytest.mark.parametrize(
    ("size", "layer", "side"), [(32, "layer2", 4), (160, "layer4", 5), (64, "layer3", 4)]
)
def test_layer_choice_on_resnet18(size, layer, side):
    torch.manual_seed(0)
    model = TransferResNet18("bn_frozen", 10)
    chosen = gradcam_layer(model, (3, size, size))
    assert (chosen.name, chosen.map_shape) == (layer, (side, side))
    assert min(chosen.map_shape) >= MIN_SIDE
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    maps, _ = gradcam(model, images, ZERO, ONE, chunk_size=2)
    assert maps.maps.shape == (2, size, size)
    assert all(p.grad is None for p in model.parameters())


def test_a_too_small_image_falls_back_to_the_first_block():
    model = build_cnn(2, [4], 3, 8, 10)  # relu1 is 2×2: no block is large enough
    assert gradcam_layer(model, (3, 2, 2))[:1] == ("relu1",)


def test_the_shared_images_are_one_per_class_in_file_order_whatever_the_rows_order():
    files = ["c/2.jpg", "a/1.jpg", "b/9.jpg", "a/0.jpg", "b/3.jpg", "c/1.jpg"]
    labels = torch.tensor([2, 0, 1, 0, 1, 2])
    chosen = stratified_images(labels, files)
    assert [files[index] for index in chosen] == ["a/0.jpg", "b/3.jpg", "c/1.jpg"]
    shuffled = [5, 3, 1, 0, 2, 4]
    again = stratified_images(labels[shuffled], [files[i] for i in shuffled])
    assert [files[shuffled[index]] for index in again] == ["a/0.jpg", "b/3.jpg", "c/1.jpg"]
    assert len(stratified_images(labels, files, per_class=2)) == 6
    assert len(stratified_images(labels, files, classes=2)) == 2
