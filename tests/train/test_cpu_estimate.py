"""The CPU estimate shown before a full-size plan trains on a machine without a GPU."""

import pytest

from cnnstudy.train.cpu_estimate import _architecture, cpu_training_estimate, images_per_second
from helpers.training import tiny_hyperparameters


def test_hours_are_epochs_times_images_at_each_models_measured_rate():
    cnn, resnet = tiny_hyperparameters(epochs=3), tiny_hyperparameters("resnet18_bn_frozen", epochs=2)
    rates = {_architecture(cnn): 2.0, _architecture(resnet): 8.0}
    hours, message = cpu_training_estimate([cnn, {**cnn, "epochs": 6}, resnet], 1000, rates)
    assert hours == pytest.approx(((3 + 6) * 1000 / 2.0 + 2 * 1000 / 8.0) / 3600)
    assert "3 model(s) at 16 px" in message and "1,000 training images" in message
    assert "baseline: 2 images/s" in message and "`device: cpu`" in message  # the slowest, named


def test_the_rate_is_one_real_training_step_measured_here():
    fast = images_per_second(tiny_hyperparameters())
    slow = images_per_second(tiny_hyperparameters(channels=[16, 32, 64], fc_hidden=256, image_size=64))
    assert 0 < slow < fast  # a bigger model at a larger size trains fewer images per second
