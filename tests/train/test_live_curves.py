"""Live training curves: TensorBoard event files beside the run, continued on resume, never duplicated."""

import logging
import sys

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import cnnstudy.train.resume as resume
from cnnstudy.train.live_curves import run_folder
from helpers.training import run_training, tiny_hyperparameters

VALIDATION = "accuracy/validation"


def curves(folder):
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


def scalar_steps(events, tag):
    return [(event.step, event.value) for event in events.Scalars(tag)]


def assert_curve_is_history(events, tag, history, column):
    steps, values = zip(*scalar_steps(events, tag), strict=True)
    assert list(steps) == history["epoch"].tolist()  # every epoch once, in order
    assert list(values) == pytest.approx(history[column].tolist())


def settings(results):
    return {"tensorboard": str(results / "tensorboard")}


def test_run_folders_are_named_like_the_runs_they_follow(tmp_path):
    root = tmp_path / "results" / "tensorboard"
    assert (
        run_folder(root, tmp_path / "results/models/baseline-seed2/checkpoint.pt") == root / "baseline-seed2"
    )
    sweep = tmp_path / "results/sweeps/lr/lr~0.001/seed0/checkpoint.pt"
    assert run_folder(root, sweep) == root / "sweeps/lr/lr~0.001/seed0"


def test_every_epoch_is_written_as_it_finishes(prepared, tmp_path):
    run = tmp_path / "results" / "models" / "baseline"
    _, history, _ = run_training(
        prepared, run, tiny_hyperparameters(epochs=4), settings=settings(tmp_path / "results")
    )
    events = curves(tmp_path / "results" / "tensorboard" / "baseline")
    assert_curve_is_history(events, VALIDATION, history, "val_accuracy")
    evaluation_mode = "accuracy/training (evaluation mode, fixed subset)"
    assert_curve_is_history(events, evaluation_mode, history, "train_eval_accuracy")
    assert_curve_is_history(events, "loss/training (running, training mode)", history, "train_loss")
    assert {"learning rate", "dead units/conv1", "seconds/epoch"} <= set(events.Tags()["scalars"])
    conv1 = events.Histograms("gradients/conv1")
    assert [event.step for event in conv1] == [1, 3]  # the configured gradient epochs
    assert conv1[0].histogram_value.num == 4 * 3 * 3 * 3  # every weight gradient of the layer, once


def test_a_resumed_run_continues_its_curves_without_duplicate_epochs(prepared, tmp_path, monkeypatch):
    run, hp = tmp_path / "results" / "models" / "baseline", tiny_hyperparameters(epochs=4)
    real_save = resume.ResumeFolder.save

    def killed_before_saving_epoch_3(self, payload):
        if payload["state"]["epoch"] == 3:  # epoch 3 is drawn, then the job dies before keeping it
            raise KeyboardInterrupt
        real_save(self, payload)

    monkeypatch.setattr(resume.ResumeFolder, "save", killed_before_saving_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        run_training(prepared, run, hp, settings=settings(tmp_path / "results"))
    monkeypatch.setattr(resume.ResumeFolder, "save", real_save)
    _, history, _ = run_training(prepared, run, hp, settings=settings(tmp_path / "results"))
    events = curves(tmp_path / "results" / "tensorboard" / "baseline")
    assert_curve_is_history(events, VALIDATION, history, "val_accuracy")  # epochs 1, 2, 3, 4, each once


def test_a_fresh_run_starts_its_folder_afresh(prepared, tmp_path):
    folder = tmp_path / "results" / "tensorboard" / "baseline"
    folder.mkdir(parents=True)
    (folder / "events.out.tfevents.stale").write_bytes(b"another run's curves")
    run_training(prepared, tmp_path / "results/models/baseline", tiny_hyperparameters(epochs=2),
                 settings=settings(tmp_path / "results"))  # fmt: skip
    assert not (folder / "events.out.tfevents.stale").exists()
    assert [step for step, _ in scalar_steps(curves(folder), VALIDATION)] == [1, 2]


def test_without_tensorboard_training_runs_on_with_one_warning(prepared, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if it were not installed
    with caplog.at_level(logging.WARNING, logger="cnnstudy.train.live_curves"):
        _, history, _ = run_training(prepared, tmp_path / "results/models/baseline",
                                     tiny_hyperparameters(epochs=2), settings=settings(tmp_path / "results"))  # fmt: skip
    assert len(history) == 2 and isinstance(history, pd.DataFrame)
    assert [record.message for record in caplog.records].count(
        "tensorboard is not installed: no live curves (pip install tensorboard)"
    ) == 1
    assert not (tmp_path / "results" / "tensorboard").exists()


def test_the_switch_off_writes_nothing(prepared, tmp_path):
    run_training(prepared, tmp_path / "results/models/baseline", tiny_hyperparameters(epochs=1),
                 settings={"tensorboard": None})  # fmt: skip
    assert not (tmp_path / "results" / "tensorboard").exists()
