import pytest
import torch
from torch import nn

from cnnstudy.data.tensors import augment, seeded_generator, to_model_input
from cnnstudy.train.models import build_cnn, count_parameters

VARIANT_FLAGS = {
    "baseline": {},
    "batchnorm": {"batchnorm": True},
    "dropout": {"dropout_conv": 0.25, "dropout_fc": 0.5},
    "combined": {"batchnorm": True, "dropout_conv": 0.25, "dropout_fc": 0.5},
}


STUDY = [128, 256, 512]


def hand_count(image_size, widths, hidden, classes, batchnorm, kernel=3):
    """Parameters counted from the study's layer table, independently of the builder."""
    channels = [3, *widths]
    convs = sum(c_in * c_out * kernel**2 + c_out for c_in, c_out in zip(channels, channels[1:], strict=False))
    flat = channels[-1] * (image_size // 2 ** len(widths)) ** 2
    fully_connected = flat * hidden + hidden + hidden * classes + classes
    norms = 2 * (sum(channels[1:]) + hidden) if batchnorm else 0
    return convs + fully_connected + norms


def test_baseline_at_160px_has_the_studys_211M_parameters():
    with torch.device("meta"):  # shapes only: counting needs no 845 MB of weights
        model = build_cnn(160, STUDY, 3, 1024, 10)
    assert count_parameters(model) == 211_205_386 == hand_count(160, STUDY, 1024, 10, batchnorm=False)
    assert model.fc1.in_features == 512 * 20 * 20 and model.fc1.out_features == 1024


@pytest.mark.parametrize("variant", VARIANT_FLAGS)
def test_parameter_counts_per_variant(variant):
    flags = VARIANT_FLAGS[variant]
    with torch.device("meta"):
        model = build_cnn(160, STUDY, 3, 1024, 10, **flags)
    assert count_parameters(model) == hand_count(160, STUDY, 1024, 10, flags.get("batchnorm", False))


def test_the_shipped_config_builds_the_studys_baseline():
    import yaml

    from cnnstudy.base.settings import hyperparameters
    from cnnstudy.train.models import build_model
    from helpers import REPO

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    with torch.device("meta"):  # shapes only: no 845 MB of weights
        model = build_model(hyperparameters(config, "baseline", seed=0), 10)
    assert count_parameters(model) == 211_205_386


@pytest.mark.parametrize("widths, kernel, size", [([8, 16], 5, 32), ([4], 3, 16), ([4, 8, 8], 7, 24)])
def test_architecture_is_data(widths, kernel, size):
    model = build_cnn(size, widths, kernel, 12, 10, batchnorm=True)
    assert count_parameters(model) == hand_count(size, widths, 12, 10, batchnorm=True, kernel=kernel)
    assert model(torch.randn(2, 3, size, size)).shape == (2, 10)
    assert [name for name, _ in model.named_children() if name.startswith("conv")] == [
        f"conv{i}" for i in range(1, len(widths) + 1)
    ]


def test_layer_order_batchnorm_before_relu_dropout_after_pool():
    model = build_cnn(32, [8, 16, 32], 3, 16, 10, batchnorm=True, dropout_conv=0.25, dropout_fc=0.5)
    names = [name for name, _ in model.named_children()]
    assert names == [
        "conv1", "bn1", "relu1", "pool1", "dropout1",
        "conv2", "bn2", "relu2", "pool2", "dropout2",
        "conv3", "bn3", "relu3", "pool3", "dropout3",
        "flatten", "fc1", "bn_fc1", "relu_fc1", "dropout_fc1", "fc2",
    ]  # fmt: skip
    assert model.dropout1.p == 0.25 and model.dropout_fc1.p == 0.5
    assert model.bn1.track_running_stats and model.bn_fc1.track_running_stats
    baseline = [type(m) for m in build_cnn(32, [8, 16, 32], 3, 16, 10).children()]
    assert nn.BatchNorm2d not in baseline and nn.Dropout not in baseline


def test_dropout_is_active_only_in_training():
    model = build_cnn(32, [8, 16, 32], 3, 16, 10, dropout_conv=0.5, dropout_fc=0.5)
    images = torch.randn(4, 3, 32, 32)
    model.train()
    assert not torch.equal(model(images), model(images))
    model.eval()
    assert torch.equal(model(images), model(images))


def test_augmentation_changes_only_training_batches():
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    plain = to_model_input(images, mean, std)
    assert torch.allclose(plain, (images.float() / 255 - 0.5) / 0.25)
    augmented = to_model_input(
        images, mean, std, generator=seeded_generator("cpu", 0), jitter=0.2, augmentation=True
    )
    assert not torch.allclose(augmented, plain)
    again = to_model_input(
        images, mean, std, generator=seeded_generator("cpu", 0), jitter=0.2, augmentation=True
    )
    assert torch.equal(augmented, again)  # seeded: a resumed epoch replays the same augmentation


def test_flip_only_mirrors_and_jitter_stays_in_range():
    images = torch.rand(64, 3, 5, 7)
    flipped = augment(images, seeded_generator("cpu", 1), jitter=0.0)
    for original, result in zip(images, flipped, strict=True):
        assert torch.equal(result, original) or torch.equal(result, original.flip(-1))
    assert 10 < sum(not torch.equal(a, b) for a, b in zip(images, flipped, strict=True)) < 54
    jittered = augment(images, seeded_generator("cpu", 2), jitter=0.2)
    assert jittered.min() >= 0 and jittered.max() <= 1
    brightness = jittered.mean(dim=(1, 2, 3)) / images.mean(dim=(1, 2, 3))
    assert brightness.min() > 0.6 and brightness.max() < 1.4


def test_dataset_normalization_matches_a_direct_computation():
    from cnnstudy.train.models import normalization

    images = torch.randint(0, 256, (50, 3, 6, 5), dtype=torch.uint8)
    mean, std = normalization({"normalization": "dataset"}, images, chunk=7)
    pixels = images.float().div(255).transpose(0, 1).reshape(3, -1)
    assert torch.allclose(mean, pixels.mean(dim=1), atol=1e-6) and torch.allclose(
        std, pixels.std(dim=1), atol=1e-6
    )
    imagenet_mean, _ = normalization({"normalization": "imagenet"}, images)
    assert imagenet_mean.tolist() == pytest.approx([0.485, 0.456, 0.406])
