"""The modules in ``RESULT_NEUTRAL`` are left out of the code fingerprints, so editing them reruns nothing;
that is only safe if none of them can change a number the study reports.

Checked two ways. By behaviour: a tiny training run and its evaluation, done again with a neutral module
set the other way (memory sizing forcing one image per chunk against the whole split at once, live
curves on and off, another code fingerprint, other provenance), must compute exactly the same numbers.
By reading the code: every name the rest of the package and the rule scripts import from a neutral
module is listed below with what it is used for, so a new use (a neutral module starting to supply a
number) fails here until someone has looked at it.
"""

import ast
import json
import logging

import pandas as pd
import pytest
import torch

import cnnstudy.base.memory as memory
import cnnstudy.train.run_outputs as run_outputs
from cnnstudy.analysis import scoring
from cnnstudy.base.codeversion import PACKAGE_DIR, RESULT_NEUTRAL, code_fingerprint
from cnnstudy.data.tensors import load_split
from helpers import REPO
from helpers.training import run_training, tiny_hyperparameters

CPU = torch.device("cpu")
# What the rest of the code takes from each neutral module, and why that cannot change a result.
USES = {
    "base.devices": {
        "select_device": "picks the job's device: the `device` run setting, never a rule param",
        "DEFAULT_GPU_WAIT_MINUTES": "how long a job waits for a busy GPU",
    },
    "base.files": {
        "atomic_path": "writes a file under a temporary name, then renames it: the caller makes the content",
        "write_text": "the same for text",
        "load_torch_file": "reads back a checkpoint or resume state as saved, refusing anything not tensors",
        "UnsafeFileError": "an error",
    },
    "base.jobs": {
        "StudyError": "an error",
        "start_job": "a job's log, its uncaught errors and its peak memory",
        "run_settings": "how a job runs (device, evaluation batch size, compile, TensorBoard), from the "
        "config; the evaluation batch size and TensorBoard are varied below",
        "data_needs": "the batch and probe sizes prepare_dataset checks the split against, before decoding",
        "RUN_SETTING_KEYS": "which `training` keys are run settings, kept out of the hyper-parameters: "
        "changing it changes every model's `hyperparameters` param, which Snakemake reruns on anyway",
    },
    "base.locks": {"run_folder_lock": "keeps a second process out of a run folder"},
    "base.memory": {
        "inference_chunk_size": "images per forward pass in inference: varied below (1 against all)",
        "saliency_chunk_size": "images per Grad-CAM pass: tests/analysis/test_saliency.py varies it (1 "
        "against 7) and finds the same maps",
        "peak_rss_mb": "recorded beside the results, never computed with",
    },
    "base.provenance": {"provenance": "recorded beside the results (commit, versions, data hashes)"},
    "base.codeversion": {},  # only the rules use it, for their `code` params
    "train.live_curves": {
        "LiveCurves": "writes TensorBoard events as epochs finish: switched on and off below",
        "run_folder": "the event folder of a run",
    },
}
# what a run records about how it ran rather than what it found
TIMINGS = ["train_seconds", "epoch_seconds", "images_per_second"]
# (the summary's archive_md5 is provenance's; tables and claims take the test data's from metrics.json)
RUN_RECORD = {"train_seconds", "epochs_seconds", "wall_seconds", "peak_rss_mb", "provenance", "code_version",
              "run_settings", "archive_md5"}  # fmt: skip


def _module_of(path):
    return ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts)


def _imported_parts(node, package):
    """The package-relative module parts of ``from X import …`` (None outside the package)."""
    if node.level:
        return package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
    if node.module and (node.module + ".").startswith("cnnstudy."):
        return node.module.split(".")[1:]
    return None


def neutral_names_used():
    """(neutral module, name) → the modules and scripts that import that name, found by reading them.

    A neutral module imported whole (``from ..base import memory``) counts with each attribute read from it.
    """
    found = {}
    modules = [path for path in PACKAGE_DIR.rglob("*.py") if path.name != "__init__.py"]
    for path in [*modules, *sorted((REPO / "workflow" / "scripts").glob("*.py"))]:
        inside = PACKAGE_DIR in path.parents
        importer = _module_of(path) if inside else f"scripts/{path.name}"
        if importer in RESULT_NEUTRAL:
            continue
        package = list(path.relative_to(PACKAGE_DIR).parent.parts) if inside else []
        tree = ast.parse(path.read_text())
        whole = {}  # local name → neutral module imported as a whole
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    module = alias.name.removeprefix("cnnstudy.")
                    if module in RESULT_NEUTRAL:
                        whole[alias.asname or alias.name] = module
            elif isinstance(node, ast.ImportFrom) and (parts := _imported_parts(node, package)) is not None:
                for alias in node.names:
                    module = ".".join(parts)
                    if f"{module}.{alias.name}".strip(".") in RESULT_NEUTRAL:
                        whole[alias.asname or alias.name] = f"{module}.{alias.name}".strip(".")
                    elif module in RESULT_NEUTRAL:
                        found.setdefault((module, alias.name), set()).add(importer)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in whole
            ):
                found.setdefault((whole[node.value.id], node.attr), set()).add(importer)
    return found


def test_every_neutral_module_is_accounted_for():
    assert set(USES) == set(RESULT_NEUTRAL)
    for module, names in USES.items():
        code = (PACKAGE_DIR / module.replace(".", "/")).with_suffix(".py").read_text()
        defined = {
            target.id if isinstance(target, ast.Name) else target.name
            for node in ast.parse(code).body
            for target in (node.targets if isinstance(node, ast.Assign) else [node])
            if isinstance(target, ast.Name | ast.FunctionDef | ast.ClassDef)
        }
        assert set(names) <= defined, f"{module} no longer defines {set(names) - defined}"


def test_nothing_else_is_taken_from_a_neutral_module():
    """A name not listed in USES is a new use: list it with its reason once it cannot change a result,
    or take its module out of RESULT_NEUTRAL (its edits then rerun what uses it)."""
    unlisted = {
        f"{module}.{name} (used by {', '.join(sorted(users))})"
        for (module, name), users in neutral_names_used().items()
        if name not in USES[module]
    }
    assert not unlisted, sorted(unlisted)


def test_the_reader_finds_the_uses_it_is_meant_to_find():
    """The reader above, on the package as it is: the loop's chunk size and live curves, scoring's
    device, and a rule script's run settings."""
    used = neutral_names_used()
    assert {"train.loop", "analysis.scoring"} <= used["base.memory", "inference_chunk_size"]
    assert "train.loop" in used["train.live_curves", "LiveCurves"]
    assert "analysis.scoring" in used["base.devices", "select_device"]
    assert "scripts/train.py" in used["base.jobs", "run_settings"]


def results(run, data, eval_batch_size=64):
    """Everything a tiny run computes, without what records how it ran: the history (no timings), the
    gradient histograms, the best weights, the summary's numbers, and the test split's scores."""
    summary = json.loads((run / "summary.json").read_text())
    test = load_split(data / "test.pt", CPU)
    metrics, predictions, description = scoring.evaluate_checkpoint(
        run / "checkpoint.pt", test, CPU, eval_batch_size
    )
    return {
        "history": pd.read_csv(run / "history.csv").drop(columns=TIMINGS),
        "gradients": pd.read_csv(run / "gradients.csv"),
        "weights": torch.load(run / "checkpoint.pt", weights_only=True)["model_state"],
        "summary": {key: value for key, value in summary.items() if key not in RUN_RECORD},
        "metrics": {key: value for key, value in metrics.items() if key != "confusion"},
        "confusion": metrics["confusion"],
        "predictions": predictions,
        "eval_chunk_size": description["eval_chunk_size"],
    }


def assert_same_numbers(first, second, rounding=0.0):
    """Every number the same; with ``rounding``, losses and probabilities within that relative tolerance
    (predicted classes, accuracies, counts, gradients and weights still exactly the same)."""
    inexact = ["train_loss", "train_eval_loss", "val_loss"] if rounding else []
    exact = first["history"].drop(columns=inexact), second["history"].drop(columns=inexact)
    pd.testing.assert_frame_equal(*exact, check_exact=True)
    pd.testing.assert_frame_equal(first["history"], second["history"], check_exact=False, rtol=rounding)
    pd.testing.assert_frame_equal(first["gradients"], second["gradients"], check_exact=True)
    assert first["weights"].keys() == second["weights"].keys()
    for name, tensor in first["weights"].items():
        assert torch.equal(tensor, second["weights"][name]), name
    assert first["summary"] == second["summary"]
    assert first["metrics"] == {
        **second["metrics"],
        "loss": pytest.approx(second["metrics"]["loss"], rel=rounding),
    }
    pd.testing.assert_frame_equal(first["confusion"], second["confusion"], check_exact=True)
    labels = ["file", "true", "predicted"]
    pd.testing.assert_frame_equal(
        first["predictions"][labels], second["predictions"][labels], check_exact=True
    )
    confidence = first["predictions"]["confidence"].to_numpy()
    assert confidence == pytest.approx(second["predictions"]["confidence"].to_numpy(), rel=rounding, abs=0)


HP = {"epochs": 2, "channels": [4, 8, 8]}  # two epochs: gradients, dead units and a best epoch to pick


@pytest.fixture(scope="module")
def reference(prepared, tmp_path_factory):
    """The tiny run as a job runs it by default: chunks of up to 512 images (the whole split here)."""
    run = tmp_path_factory.mktemp("reference")
    run_training(prepared, run, tiny_hyperparameters(**HP))
    return results(run, prepared)


def test_memory_sizing_forced_to_one_image_per_chunk_changes_no_number(
    reference, prepared, tmp_path, monkeypatch, caplog
):
    """Validation, the training subset, the dead-unit probe and the test set go through the model one
    image at a time when memory.py says one image is all that fits. Every class, accuracy and count is the
    same; a loss or probability may move in its last float32 bit (1e-7 relative): the CPU's matrix
    kernels for a batch of one add in another order than for a batch of several."""
    monkeypatch.setattr(memory, "describe_memory_limit", lambda device=None: memory.MemoryLimit(1, "test"))
    with caplog.at_level(logging.INFO, logger=memory.__name__):
        run_training(prepared, tmp_path, tiny_hyperparameters(**HP))
        one_by_one = results(tmp_path, prepared)
    assert "inference in chunks of 1 images (requested 512)" in caplog.text  # training's evaluation
    assert (one_by_one["eval_chunk_size"], reference["eval_chunk_size"]) == (1, 64)
    assert_same_numbers(one_by_one, reference, rounding=1e-6)


def test_the_evaluation_batch_size_changes_no_number(reference, prepared, tmp_path):
    """The `eval_batch_size` run setting reaches memory.py as the requested chunk: 7 images at a time
    (chunks of 7 and a last one of 2) give the very numbers of the whole split at once."""
    run_training(prepared, tmp_path, tiny_hyperparameters(**HP), settings={"eval_batch_size": 7})
    in_sevens = results(tmp_path, prepared, eval_batch_size=7)
    assert in_sevens["eval_chunk_size"] == 7
    assert_same_numbers(in_sevens, reference)


def test_live_curves_change_no_number(reference, prepared, tmp_path):
    run = tmp_path / "results" / "models" / "baseline"
    tensorboard = tmp_path / "results" / "tensorboard"
    run_training(prepared, run, tiny_hyperparameters(**HP), settings={"tensorboard": str(tensorboard)})
    assert list((tensorboard / "baseline").glob("events.out.tfevents.*"))  # the curves were written
    assert_same_numbers(results(run, prepared), reference)


def test_the_code_fingerprint_changes_no_number(reference, prepared, tmp_path):
    """The fingerprint keys the resume state and is recorded in the summary; it computes nothing."""
    fingerprint = code_fingerprint(REPO / "workflow" / "scripts" / "train.py")
    run_training(prepared, tmp_path, tiny_hyperparameters(**HP), code_version=fingerprint)
    assert json.loads((tmp_path / "summary.json").read_text())["code_version"] == fingerprint
    assert_same_numbers(results(tmp_path, prepared), reference)


def test_provenance_changes_no_number(reference, prepared, tmp_path, monkeypatch):
    other = {"commit": "0" * 40, "versions": {"torch": "0.0"}}
    monkeypatch.setattr(run_outputs, "provenance", lambda *args, **kwargs: other)
    monkeypatch.setattr(scoring, "provenance", lambda *args, **kwargs: other)
    run_training(prepared, tmp_path, tiny_hyperparameters(**HP))
    assert json.loads((tmp_path / "summary.json").read_text())["provenance"] == other
    assert_same_numbers(results(tmp_path, prepared), reference)
