"""Checkpoints and resume states are loaded without running code: a crafted pickle is refused."""

import logging
import os

import pytest
import torch

from cnnstudy.base.files import UnsafeFileError, load_torch_file
from cnnstudy.train.inference import load_checkpoint
from cnnstudy.train.resume import ResumeFolder


class RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def crafted(path, marker):
    torch.save({"model_state": {}, "hyperparameters": RunsCode(marker)}, path)
    return path


def test_a_crafted_checkpoint_is_refused_naming_the_file_and_runs_nothing(tmp_path):
    path = crafted(tmp_path / "checkpoint.pt", tmp_path / "pwned")
    with pytest.raises(UnsafeFileError, match=f"refused to load {path}"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_a_crafted_resume_state_is_set_aside_unrun(tmp_path, caplog):
    folder = ResumeFolder(tmp_path / "resume", key="run")
    crafted(folder.last, tmp_path / "pwned")
    with caplog.at_level(logging.WARNING, logger="cnnstudy.train.resume"):
        assert folder.restore() is None  # training starts afresh
    assert not (tmp_path / "pwned").exists() and (tmp_path / "resume" / "last.pt.damaged").exists()
    assert "refused to load" in caplog.text


def test_our_own_files_load_with_tensors_and_plain_values(tmp_path):
    saved = {"model_state": {"w": torch.ones(2)}, "epoch": 3, "metrics": {"a": 0.5}, "classes": ["x"],
             "provenance": {"torch": torch.__version__}}  # fmt: skip
    torch.save(saved, tmp_path / "checkpoint.pt")  # torch.__version__ is torch's own str subclass
    loaded = load_torch_file(tmp_path / "checkpoint.pt")
    assert loaded["epoch"] == 3 and torch.equal(loaded["model_state"]["w"], torch.ones(2))
