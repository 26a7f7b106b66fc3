import json
import logging
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from cnnstudy.base.layout import TRAINING_OUTPUTS
from cnnstudy.data.prepare import prepare
from helpers import REPO, TESTS, package_environment
from helpers.training import run_training, tiny_hyperparameters

TIMING_COLUMNS = ["train_seconds", "epoch_seconds", "images_per_second"]  # wall-clock: may differ
RUNNER = [sys.executable, "-m", "helpers.training"]


def metric_columns(history):
    return history.drop(columns=TIMING_COLUMNS)


def run_job(data, output, epochs, die_after=None):
    """The training job in its own process, as Snakemake runs it; returns the finished process."""
    arguments = [*RUNNER, str(data), str(output), str(epochs), *([str(die_after)] if die_after else [])]
    return subprocess.run(arguments, cwd=TESTS, env=package_environment(), capture_output=True, text=True)


def test_outputs_carry_hyperparameters_metrics_and_provenance(prepared, tmp_path):
    hp = tiny_hyperparameters()
    _, history, summary = run_training(prepared, tmp_path, hp, code_version="abc")
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["hyperparameters"] == hp and checkpoint["code_version"] == "abc"
    assert checkpoint["run_settings"]["eval_batch_size"] == 512
    assert checkpoint["epoch"] == summary["best_epoch"] == int(history["val_accuracy"].idxmax()) + 1
    assert checkpoint["metrics"]["val_accuracy"] == history["val_accuracy"].max()
    origin = summary["provenance"]
    assert origin["torch"] == torch.__version__ and origin["device"] == "cpu"
    assert len(origin["git_commit"]) == 40 or origin["git_commit"] == "unknown"
    assert set(origin["data_sha256"]) == {"train", "val"} and len(origin["data_sha256"]["train"]) == 64
    assert origin["archive_md5"] == "test-archive-md5"  # recorded by prepare, read back with the tensors
    written = pd.read_csv(tmp_path / "history.csv")
    assert list(written.columns) == [
        "epoch", "train_loss", "train_accuracy", "train_eval_loss", "train_eval_accuracy", "val_loss",
        "val_accuracy", "lr",
        "dead_conv1", "dead_conv2", "dead_conv3", "dead_fc1", *TIMING_COLUMNS,
    ]  # fmt: skip
    assert written["epoch"].tolist() == [1, 2, 3, 4]
    assert written.filter(like="dead_").stack().between(0, 1).all()
    assert (written["train_seconds"] < written["epoch_seconds"]).all()  # the loop alone, not validation
    assert summary["train_seconds"] == pytest.approx(written["train_seconds"].sum())
    assert summary["wall_seconds"] > summary["train_seconds"]
    assert summary["peak_rss_mb"] > 100 and summary["train_gflop_per_image"] > 0
    assert summary["probe"]["size"] == 20 and len(summary["probe"]["indices"]) == 20
    assert json.loads((tmp_path / "summary.json").read_text())["hyperparameters"] == hp
    assert not {"last.pt", "best.pt"} & {path.name for path in (tmp_path / "resume").iterdir()}


def test_gradient_histograms_of_configured_and_last_epochs_share_bins(prepared, tmp_path):
    _, _, summary = run_training(
        prepared, tmp_path, tiny_hyperparameters(epochs=4, gradient_epochs=[1, 3, 10])
    )
    gradients = pd.read_csv(tmp_path / "gradients.csv")
    assert sorted(gradients["epoch"].unique()) == [1, 3, 4]  # configured ones reached, and the last
    assert summary["gradient_epochs"] == {"configured": [1, 3, 10], "recorded": [1, 3, 4], "missing": [10]}
    conv1 = gradients[gradients["layer"] == "conv1"]
    edges = [conv1[conv1["epoch"] == epoch][["low", "high"]].to_numpy() for epoch in (1, 3, 4)]
    assert (edges[0] == edges[1]).all() and (edges[0] == edges[2]).all()
    totals = gradients.groupby(["epoch", "layer"])["count"].sum().unstack()
    assert (totals["conv1"] == 4 * 3 * 3 * 3).all() and (totals["fc2"] == 10 * 8).all()


def test_two_runs_with_one_seed_give_identical_histories(prepared, tmp_path):
    hp = tiny_hyperparameters("combined", early_stopping_patience=0)
    first_model, first, _ = run_training(prepared, tmp_path / "a", hp)
    second_model, second, _ = run_training(prepared, tmp_path / "b", hp)
    pd.testing.assert_frame_equal(metric_columns(first), metric_columns(second), check_exact=True)
    for a, b in zip(first_model.state_dict().values(), second_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other, _, _ = run_training(prepared, tmp_path / "c", {**hp, "seed": 1})
    assert not torch.equal(other.fc2.weight, first_model.fc2.weight)


def assert_same_run(expected_dir, actual_dir):
    expected, actual = (pd.read_csv(folder / "history.csv") for folder in (expected_dir, actual_dir))
    pd.testing.assert_frame_equal(metric_columns(expected), metric_columns(actual), check_exact=True)
    weights = [
        torch.load(folder / "checkpoint.pt", weights_only=True) for folder in (expected_dir, actual_dir)
    ]
    assert weights[0]["epoch"] == weights[1]["epoch"]
    assert all(
        torch.equal(weights[0]["model_state"][k], weights[1]["model_state"][k])
        for k in weights[0]["model_state"]
    )


@pytest.fixture(scope="module")
def uninterrupted(prepared, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    assert run_job(prepared, folder, 5).returncode == 0
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("die_after", [2, 4])
def test_killed_run_resumes_from_the_last_epoch_and_ends_the_same(
    prepared, uninterrupted, tmp_path, die_after
):
    killed = run_job(prepared, tmp_path, 5, die_after=die_after)
    assert killed.returncode == -9 and (tmp_path / "resume" / "last.pt").exists()
    assert not (tmp_path / "history.csv").exists() and not (tmp_path / "checkpoint.pt").exists()
    resumed = run_job(prepared, tmp_path, 5)
    assert resumed.returncode == 0 and f"resuming after epoch {die_after}" in resumed.stderr
    assert_same_run(uninterrupted, tmp_path)


@pytest.mark.slow
def test_sigterm_stops_at_the_next_step_and_the_rerun_ends_the_same(prepared, uninterrupted, tmp_path):
    arguments = [*RUNNER, str(prepared), str(tmp_path), "5"]
    job = subprocess.Popen(arguments, cwd=TESTS, env=package_environment(), stderr=subprocess.PIPE, text=True)
    while not (tmp_path / "resume" / "last.pt").exists():  # at least one finished epoch
        time.sleep(0.01)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode != 0 and "stopped by SIGTERM" in stderr and "rerun the same command" in stderr
    assert not (tmp_path / "checkpoint.pt").exists()
    assert run_job(prepared, tmp_path, 5).returncode == 0
    assert_same_run(uninterrupted, tmp_path)


def test_a_second_trainer_on_one_run_folder_stops_and_names_the_first(prepared, tmp_path):
    from cnnstudy.base.locks import LockHeld, run_folder_lock

    with run_folder_lock(tmp_path / "resume"):
        with pytest.raises(LockHeld, match=f"PID {os.getpid()}"):
            run_training(prepared, tmp_path, tiny_hyperparameters(epochs=1))
    assert not (tmp_path / "checkpoint.pt").exists()


def test_resume_from_another_split_starts_afresh_and_says_why(prepared, demo_dataset, tmp_path, caplog):
    other_split = tmp_path / "other-split"
    prepare(demo_dataset, other_split, 16, 0.25, seed=5, skip_corrupt=False, threads=2)
    assert run_job(prepared, tmp_path / "run", 3, die_after=2).returncode == -9
    with caplog.at_level(logging.INFO, logger="cnnstudy.train.resume"):
        _, history, _ = run_training(other_split, tmp_path / "run", tiny_hyperparameters(epochs=3))
    assert history["epoch"].tolist() == [1, 2, 3]
    assert "other training or validation data" in caplog.text and "resuming after" not in caplog.text


def test_resume_from_other_hyperparameters_or_code_starts_afresh(prepared, tmp_path, caplog):
    assert run_job(prepared, tmp_path, 3, die_after=2).returncode == -9
    with caplog.at_level(logging.INFO, logger="cnnstudy.train.resume"):
        _, history, _ = run_training(
            prepared, tmp_path, tiny_hyperparameters(epochs=3, lr=0.5), code_version="new"
        )
    assert history["epoch"].tolist() == [1, 2, 3]
    assert "other hyper-parameters (lr)" in caplog.text and "other code of the study" in caplog.text


def test_damaged_resume_file_is_set_aside_and_training_starts_afresh(prepared, tmp_path, caplog):
    assert run_job(prepared, tmp_path, 3, die_after=2).returncode == -9
    last = tmp_path / "resume" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING, logger="cnnstudy.train.resume"):
        _, history, _ = run_training(prepared, tmp_path, tiny_hyperparameters(epochs=3))
    assert history["epoch"].tolist() == [1, 2, 3]
    assert (tmp_path / "resume" / "last.pt.damaged").exists() and "cannot be read" in caplog.text


def test_finished_run_whose_outputs_were_discarded_is_restored_without_training(
    prepared, tmp_path, monkeypatch
):
    run_training(prepared, tmp_path, tiny_hyperparameters(epochs=2))
    expected = {name: (tmp_path / name).read_bytes() for name in TRAINING_OUTPUTS.values()}
    for name in expected:  # what Snakemake does to outputs of a job it did not see finish
        (tmp_path / name).unlink()
    monkeypatch.setattr("cnnstudy.train.loop.loss_and_accuracy", lambda *a: pytest.fail("trained again"))
    run_training(prepared, tmp_path, tiny_hyperparameters(epochs=2))
    assert {name: (tmp_path / name).read_bytes() for name in expected} == expected


def save_epoch(store, epoch, best_epoch):
    weights = {"w": torch.tensor([float(epoch)])}
    store.save({"model": weights, "optimizer": {}, "state": {"epoch": epoch, "best_epoch": best_epoch}})


def test_best_weights_and_state_agree_after_every_epoch(tmp_path):
    """Rotation of last.pt/best.pt: after each save, a fresh process finds the latest epoch and the best
    epoch's weights."""
    from cnnstudy.train.resume import ResumeFolder

    key = {"hyperparameters": {"lr": 1}, "code": "x", "data": {}}
    store = ResumeFolder(tmp_path, key)
    for epoch, best_epoch in enumerate([1, 2, 2, 2, 5, 5, 7], start=1):
        save_epoch(store, epoch, best_epoch)
        restored = ResumeFolder(tmp_path, key).restore()
        assert restored["state"]["epoch"] == epoch
        weights = ResumeFolder(tmp_path, key).best_weights(restored["state"], torch.nn.Linear(1, 1))
        if best_epoch != epoch:
            assert weights["w"].item() == best_epoch


def test_a_kill_between_keeping_the_best_and_writing_the_next_epoch_loses_nothing(tmp_path, monkeypatch):
    from cnnstudy.train.resume import ResumeFolder

    key = {"hyperparameters": {"lr": 1}, "code": "x", "data": {}}
    store = ResumeFolder(tmp_path, key)
    save_epoch(store, 1, 1)
    save_epoch(store, 2, 2)

    def killed(*args):
        raise KeyboardInterrupt  # stands in for a kill: the write never happens

    monkeypatch.setattr("cnnstudy.train.resume.torch.save", killed)
    with pytest.raises(KeyboardInterrupt):
        save_epoch(store, 3, 2)  # last.pt (epoch 2, the best) was just renamed to best.pt
    assert sorted(path.name for path in tmp_path.glob("*.pt")) == ["best.pt"]
    monkeypatch.undo()
    restored = ResumeFolder(tmp_path, key).restore()
    assert restored["state"] == {"epoch": 2, "best_epoch": 2} and restored["model"]["w"].item() == 2


def test_early_stopping_stops_after_patience_epochs_without_improvement(prepared, tmp_path, monkeypatch):
    validation = [0.10, 0.30, 0.20, 0.25, 0.30, 0.29, 0.50, 0.60]  # best at 2; 3-5 no better
    scripted = iter(value for accuracy in validation for value in (accuracy, 0.9))  # then the training subset
    monkeypatch.setattr("cnnstudy.train.loop.loss_and_accuracy", lambda *args: (1.0, next(scripted)))
    _, history, summary = run_training(
        prepared, tmp_path, tiny_hyperparameters(epochs=8, early_stopping_patience=3)
    )
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert summary["best_epoch"] == 2 and summary["stopped_epoch"] == 5 and summary["stopped_early"]
    assert not summary["still_improving"]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 2


def test_batch_larger_than_the_training_split_names_the_keys(prepared, tmp_path):
    from cnnstudy.base.jobs import StudyError

    with pytest.raises(
        StudyError, match=r"training.batch_size 4096 exceeds the 90 training images.*validation_fraction"
    ):
        run_training(prepared, tmp_path, tiny_hyperparameters(batch_size=4096))
    with pytest.raises(StudyError, match="cnn.probe_size 999 exceeds the 30 validation images"):
        run_training(prepared, tmp_path, tiny_hyperparameters(probe_size=999))


@pytest.mark.parametrize("schedule", ["constant", "warmup_cosine"])
def test_learning_rate_schedule(schedule):
    from cnnstudy.train.loop import learning_rate

    hp = {"schedule": schedule, "lr": 1.0, "warmup_epochs": 2}
    rates = [learning_rate(hp, step, total_steps=100, steps_per_epoch=10) for step in range(100)]
    if schedule == "constant":
        assert set(rates) == {1.0}
    else:
        assert rates[0] == pytest.approx(0.05) and rates[19] == pytest.approx(1.0)
        assert all(a >= b for a, b in zip(rates[20:], rates[21:], strict=False)) and rates[-1] < 0.01


def test_predictions_do_not_depend_on_the_chunk_size(prepared):
    from cnnstudy.data.tensors import load_split
    from cnnstudy.train.inference import predict
    from cnnstudy.train.models import build_model

    split = load_split(prepared / "test.pt", torch.device("cpu"))
    model = build_model(tiny_hyperparameters(), 10).to(memory_format=torch.channels_last)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    whole = predict(model, split.images, mean, std, len(split), torch.device("cpu"))
    chunked = predict(model, split.images, mean, std, 7, torch.device("cpu"))
    assert torch.equal(whole.argmax(dim=1), chunked.argmax(dim=1))
    torch.testing.assert_close(whole, chunked, rtol=1e-5, atol=1e-5)


def test_training_step_runs_without_snakemake_scipy_or_sklearn():
    """The GPU benchmark imports the training code on a bare machine (torch, pandas, no Snakemake)."""
    blocker = "import sys\nfor name in ('snakemake', 'scipy', 'sklearn'): sys.modules[name] = None\n"
    code = (
        blocker
        + "import cnnstudy.train.loop, cnnstudy.train.models, cnnstudy.train.measurements\nprint('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=package_environment(), capture_output=True, text=True
    )
    assert result.stdout.strip() == "ok", result.stderr
