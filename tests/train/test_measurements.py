import pandas as pd
import pytest
import torch

from cnnstudy.train.measurements import (
    bin_labels,
    dead_unit_fractions,
    gradient_bin_edges,
    gradient_histograms,
    probe_indices,
    training_flops_per_image,
)
from cnnstudy.train.models import build_cnn, build_model
from helpers.training import tiny_hyperparameters

MEAN, STD = torch.full((3,), 0.5), torch.full((3,), 0.25)


def labelled_images(per_class=10, classes=10, size=16):
    """Dark images, stored class by class like a prepared split; class 3 has a red centre."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    images = torch.zeros(len(labels), 3, size, size, dtype=torch.uint8)
    images[labels == 3, 0, size // 2 - 2 : size // 2 + 2, size // 2 - 2 : size // 2 + 2] = 255
    return images, labels


def probe_network():
    """conv1 has four channels: 0 fires only on red (class 3, centre only), 1 never, 2 and 3 always."""
    model = build_cnn(16, [4, 8, 16], 3, 8, 10)
    with torch.no_grad():
        model.conv1.weight.zero_()
        model.conv1.weight[0, 0, 1, 1] = 1.0  # red at the centre tap: +2 on red, -2 on dark
        model.conv1.bias[:] = torch.tensor([-1.0, -1e6, 1.0, 1.0])
    return model


def test_probe_is_stratified_seeded_and_fixed():
    _, labels = labelled_images()
    probe = probe_indices(labels, 20)
    assert sorted(labels[probe].tolist()) == sorted(list(range(10)) * 2)  # two of every class
    assert probe == probe_indices(labels, 20) and probe != probe_indices(labels, 20, seed=1)
    assert len(set(probe_indices(labels, 100))) == 100
    with pytest.raises(ValueError, match="101 images"):
        probe_indices(labels, 101)


def test_a_channel_firing_on_one_class_only_is_alive_and_one_forced_negative_is_dead():
    images, labels = labelled_images()
    model = probe_network()
    stratified = dead_unit_fractions(model, images[probe_indices(labels, 20)], MEAN, STD, chunk_size=6)
    assert stratified["dead_conv1"] == pytest.approx(0.25)  # channel 1 only
    first_images = dead_unit_fractions(model, images[:20], MEAN, STD, chunk_size=6)  # classes 0 and 1
    assert first_images["dead_conv1"] == pytest.approx(0.5)  # what a probe without class 3 would claim


def test_dead_units_count_channels_and_neurons_whatever_the_chunk():
    images, labels = labelled_images()
    model = probe_network()
    with torch.no_grad():
        model.fc1.bias[:4] = -1e6  # four of FC1's eight neurons never fire
        model.fc1.bias[4:] = 1e6
    whole = dead_unit_fractions(model, images, MEAN, STD, chunk_size=len(images))
    chunked = dead_unit_fractions(model, images, MEAN, STD, chunk_size=7)
    assert whole == chunked
    assert set(whole) == {"dead_conv1", "dead_conv2", "dead_conv3", "dead_fc1"}
    assert whole["dead_fc1"] == 0.5
    assert model.training  # the probe puts the model back as it found it


def test_gradient_histogram_bins_are_fixed_and_count_every_weight():
    edges = gradient_bin_edges([1e-9, 1.0], 4)
    labels = bin_labels(edges)
    assert len(edges) == 9 * 4 + 1 and len(labels) == 2 * 36 + 3
    assert labels[0] == (-float("inf"), -1.0) and labels[-1] == (1.0, float("inf"))
    assert labels[37] == pytest.approx((-1e-9, 1e-9))  # |g| below the range, zero included

    model = build_cnn(16, [4, 8, 16], 3, 8, 10)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    values = torch.tensor([0.0, 1e-12, -1e-12, 5e-5, -5e-5, 2.0, -3.0, 0.5] * 10)
    model.fc2.weight.grad = values.view(10, 8)
    rows = pd.DataFrame(gradient_histograms(model, epoch=3, log_edges=edges))
    fc2 = rows[rows["layer"] == "fc2"].set_index("bin")
    assert fc2["count"].sum() == 80 and (rows["epoch"] == 3).all()
    assert fc2.loc[37, "count"] == 30  # 0 and ±1e-12
    assert fc2.loc[0, "count"] == 10 and fc2.loc[74, "count"] == 10  # -3 and 2: beyond the range
    for value in (5e-5, -5e-5, 0.5):
        inside = (
            fc2[(fc2["low"] < value) & (value <= fc2["high"])]
            if value > 0
            else fc2[(fc2["low"] <= value) & (value < fc2["high"])]
        )
        assert inside["count"].tolist() == [10], value
    counted = rows.groupby("layer")["count"].sum()
    for name, module in model.named_children():
        if hasattr(module, "weight"):
            assert counted[name] == module.weight.numel()


def test_training_flops_of_the_studys_baseline_are_counted_without_computing():
    hp = {**tiny_hyperparameters(), "channels": [128, 256, 512], "fc_hidden": 1024, "image_size": 160}
    flops = training_flops_per_image(lambda: build_model(hp, 10), 160)
    forward_macs = 160**2 * 128 * 27 + 80**2 * 256 * 1152 + 40**2 * 512 * 2304 + 204800 * 1024 + 1024 * 10
    assert 2.5 * 2 * forward_macs < flops < 3.1 * 2 * forward_macs  # forward + about twice it backward


def test_gradient_histograms_add_every_chunk_of_a_large_layer(monkeypatch):
    """FC1 of the study has 210 M weights, binned 16 M at a time: every chunk must count, not the last."""
    import cnnstudy.train.measurements as measurements

    model = build_cnn(16, [4, 8, 16], 3, 8, 10)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    edges = gradient_bin_edges([1e-9, 1.0], 4)
    whole = pd.DataFrame(gradient_histograms(model, epoch=1, log_edges=edges))
    monkeypatch.setattr(measurements, "GRADIENT_CHUNK", 7)  # fc1's 128 weights in 19 chunks
    chunked = pd.DataFrame(gradient_histograms(model, epoch=1, log_edges=edges))
    assert chunked["count"].tolist() == whole["count"].tolist()
    assert chunked[chunked["layer"] == "fc1"]["count"].sum() == model.fc1.weight.numel()


@pytest.mark.parametrize("flags", [{"dropout_conv": 0.5, "dropout_fc": 0.5}, {"batchnorm": True}])
def test_dead_units_are_probed_in_evaluation_mode(flags):
    """Dropout zeroes units at random and BatchNorm uses the batch's statistics in training mode: the
    probe must see the model as it predicts, whatever mode training left it in."""
    images, _ = labelled_images()
    model = build_cnn(16, [4, 8, 16], 3, 8, 10, **flags)
    with torch.no_grad():
        for _ in range(3):  # running statistics away from their start, so the modes differ
            model(torch.randn(16, 3, 16, 16) * 3 + 1)
    expected = _dead_in_eval_mode(model, images)
    model.train()
    assert dead_unit_fractions(model, images, MEAN, STD, chunk_size=5) == expected
    assert model.training


def _dead_in_eval_mode(model, images):
    """Independent reference: forward hooks on the ReLUs of an eval-mode copy, all images at once."""
    import copy

    reference = copy.deepcopy(model).eval()
    fired = {}
    for name, module in reference.named_modules():
        if isinstance(module, torch.nn.ReLU):
            layer = name.removeprefix("relu_").replace("relu", "conv")
            module.register_forward_hook(
                lambda _m, _i, out, layer=layer: fired.__setitem__(
                    layer, (out > 0).any(dim=(0, 2, 3) if out.dim() == 4 else (0,))
                )
            )
    with torch.no_grad():
        reference((images.float() / 255 - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1))
    return {f"dead_{layer}": 1.0 - alive.float().mean().item() for layer, alive in fired.items()}


def test_bin_edges_span_the_range_in_whole_bins_and_never_fewer_than_one():
    assert gradient_bin_edges([1e-3, 1e-2], 1).tolist() == pytest.approx([-3.0, -2.0])  # one bin
    assert gradient_bin_edges([1e-3, 1e-2], 0.4).tolist() == pytest.approx([-3.0, -2.0])  # rounds to none
    assert gradient_bin_edges([1e-4, 1e-2], 1.5).tolist() == pytest.approx([-4, -4 + 2 / 3, -4 + 4 / 3, -2])


def test_histogram_rows_name_each_layers_kind_and_count_in_whole_numbers():
    model = build_cnn(16, [4, 8, 16], 3, 8, 10, batchnorm=True)
    model(torch.randn(4, 3, 16, 16)).sum().backward()
    rows = pd.DataFrame(gradient_histograms(model, epoch=2, log_edges=gradient_bin_edges([1e-9, 1.0], 1)))
    assert list(rows.columns) == ["epoch", "layer", "kind", "bin", "low", "high", "count"]
    kinds = rows.drop_duplicates("layer").set_index("layer")["kind"].to_dict()
    assert kinds == {"conv1": "conv", "bn1": "batchnorm", "conv2": "conv", "bn2": "batchnorm", "conv3": "conv",
                     "bn3": "batchnorm", "fc1": "linear", "bn_fc1": "batchnorm", "fc2": "linear"}  # fmt: skip
    assert all(type(count) is int for count in rows["count"].tolist())  # exact counts, never floats


def test_a_probe_of_uneven_classes_takes_turns_until_a_class_runs_out():
    labels = torch.tensor([0] * 2 + [1] * 5 + [2] * 9)
    probe = probe_indices(labels, 12)
    taken = torch.bincount(labels[probe], minlength=3).tolist()
    assert taken == [2, 5, 5]  # turns of three, then of two once class 0 is used up
    assert sorted(probe) == probe and len(set(probe)) == 12
    assert torch.bincount(labels[probe_indices(labels, 16)], minlength=3).tolist() == [2, 5, 9]


def test_flops_are_counted_without_printing_a_table(capsys):
    hp = {**tiny_hyperparameters(), "channels": [4, 8, 8], "fc_hidden": 8, "image_size": 16}
    training_flops_per_image(lambda: build_model(hp, 10), 16)  # its value: the test of the study's baseline
    assert capsys.readouterr().out == ""
