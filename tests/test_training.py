import json
import subprocess
import sys

import pandas as pd
import pytest
import torch

from helpers import TESTS, package_environment
from helpers.training import run_training, tiny_hyperparameters

TIMING_COLUMNS = ["epoch_seconds", "images_per_second"]  # wall-clock: the only columns that may differ


def metric_columns(history):
    return history.drop(columns=TIMING_COLUMNS)


def test_outputs_carry_hyperparameters_metrics_and_environment(prepared, tmp_path):
    hp = tiny_hyperparameters()
    _, history, summary = run_training(prepared, tmp_path, hp)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert checkpoint["hyperparameters"] == hp
    assert checkpoint["epoch"] == summary["best_epoch"] == int(history["val_accuracy"].idxmax()) + 1
    assert checkpoint["metrics"]["val_accuracy"] == history["val_accuracy"].max()
    assert (
        checkpoint["environment"]["torch"] == torch.__version__
        and checkpoint["environment"]["device"] == "cpu"
    )
    assert len(checkpoint["normalization"]["mean"]) == 3
    written = pd.read_csv(tmp_path / "history.csv")
    assert list(written.columns) == [
        "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
        "dead_conv1", "dead_conv2", "dead_conv3", "dead_fc1", "epoch_seconds", "images_per_second",
    ]  # fmt: skip
    assert written["epoch"].tolist() == [1, 2, 3, 4]
    assert written.filter(like="dead_").stack().between(0, 1).all()
    gradients = pd.read_csv(tmp_path / "gradients.csv")
    assert sorted(gradients["epoch"].unique()) == [1, 3]
    assert set(gradients["layer"]) == {"conv1", "conv2", "conv3", "fc1", "fc2"}
    assert (gradients.groupby(["epoch", "layer"])["count"].sum() > 0).all()
    assert json.loads((tmp_path / "summary.json").read_text())["hyperparameters"] == hp
    assert not (tmp_path / "resume").exists() or not any((tmp_path / "resume").iterdir())


def test_two_runs_with_one_seed_give_identical_histories(prepared, tmp_path):
    hp = tiny_hyperparameters("combined", early_stopping_patience=0)
    first_model, first, _ = run_training(prepared, tmp_path / "a", hp)
    second_model, second, _ = run_training(prepared, tmp_path / "b", hp)
    pd.testing.assert_frame_equal(metric_columns(first), metric_columns(second), check_exact=True)
    for a, b in zip(first_model.state_dict().values(), second_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other, _, _ = run_training(prepared, tmp_path / "c", {**hp, "seed": 1})
    assert not torch.equal(other.fc2.weight, first_model.fc2.weight)


def test_killed_run_resumes_from_the_last_epoch_and_ends_the_same(prepared, tmp_path):
    runner = [sys.executable, "-m", "helpers.training", str(prepared)]
    uninterrupted = tmp_path / "uninterrupted"
    subprocess.run([*runner, str(uninterrupted), "5"], cwd=TESTS, env=package_environment(), check=True)

    resumed = tmp_path / "resumed"
    killed = subprocess.run([*runner, str(resumed), "5", "2"], cwd=TESTS, env=package_environment())
    assert killed.returncode == -9 and (resumed / "resume" / "last.pt").exists()
    assert not (resumed / "history.csv").exists() and not (resumed / "checkpoint.pt").exists()
    subprocess.run([*runner, str(resumed), "5"], cwd=TESTS, env=package_environment(), check=True)

    expected, actual = (pd.read_csv(folder / "history.csv") for folder in (uninterrupted, resumed))
    pd.testing.assert_frame_equal(metric_columns(expected), metric_columns(actual), check_exact=True)
    expected_weights, actual_weights = (
        torch.load(folder / "checkpoint.pt", weights_only=False)["model_state"]
        for folder in (uninterrupted, resumed)
    )
    assert all(torch.equal(expected_weights[key], actual_weights[key]) for key in expected_weights)


def test_resume_checkpoint_from_other_hyperparameters_is_ignored(prepared, tmp_path):
    run_training(prepared, tmp_path, tiny_hyperparameters(epochs=2))
    (tmp_path / "resume").mkdir(exist_ok=True)
    stale = {"hyperparameters": tiny_hyperparameters(lr=0.5), "model": {}, "optimizer": {}, "state": {}}
    torch.save(stale, tmp_path / "resume" / "last.pt")
    _, history, _ = run_training(prepared, tmp_path, tiny_hyperparameters(epochs=2))
    assert history["epoch"].tolist() == [1, 2]


def test_early_stopping_stops_after_patience_epochs_without_improvement(prepared, tmp_path, monkeypatch):
    scripted = iter([0.10, 0.30, 0.20, 0.25, 0.30, 0.29, 0.50, 0.60])  # best at 2; 3-5 no better
    monkeypatch.setattr("cnnstudy.training.evaluate", lambda *args: (1.0, next(scripted)))
    _, history, summary = run_training(
        prepared, tmp_path, tiny_hyperparameters(epochs=8, early_stopping_patience=3)
    )
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert summary["best_epoch"] == 2 and summary["stopped_epoch"] == 5 and summary["stopped_early"]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["epoch"] == 2


@pytest.mark.parametrize("schedule", ["constant", "warmup_cosine"])
def test_learning_rate_schedule(schedule):
    from cnnstudy.training import learning_rate

    hp = {"schedule": schedule, "lr": 1.0, "warmup_epochs": 2}
    rates = [learning_rate(hp, step, total_steps=100, steps_per_epoch=10) for step in range(100)]
    if schedule == "constant":
        assert set(rates) == {1.0}
    else:
        assert rates[0] == pytest.approx(0.05) and rates[19] == pytest.approx(1.0)
        assert all(a >= b for a, b in zip(rates[20:], rates[21:], strict=False)) and rates[-1] < 0.01


def test_dead_units_are_the_relus_silent_on_every_probe_image():
    from cnnstudy.models import build_cnn
    from cnnstudy.training import dead_unit_fractions

    model = build_cnn(16, 4, 8, 10)
    with torch.no_grad():
        model.conv1.bias[:2] = -1e6  # channels 0 and 1 of conv1 can never fire
        model.fc1.bias[:] = 1e6  # every FC1 unit always fires
    fractions = dead_unit_fractions(model, torch.randn(8, 3, 16, 16))
    assert set(fractions) == {"dead_conv1", "dead_conv2", "dead_conv3", "dead_fc1"}
    assert fractions["dead_conv1"] >= 0.5 and fractions["dead_fc1"] == 0.0


def test_gradient_histograms_count_every_weight_of_every_layer():
    from cnnstudy.models import build_cnn
    from cnnstudy.training import gradient_histograms

    model = build_cnn(16, 4, 8, 10, batchnorm=True)
    model(torch.randn(4, 3, 16, 16)).sum().backward()
    rows = pd.DataFrame(gradient_histograms(model, epoch=3, bins=5))
    counted = rows.groupby("layer")["count"].sum()
    for name, module in model.named_children():
        if hasattr(module, "weight"):
            assert counted[name] == module.weight.numel()
    assert (rows["epoch"] == 3).all() and set(rows["kind"]) == {"conv", "batchnorm", "linear"}
