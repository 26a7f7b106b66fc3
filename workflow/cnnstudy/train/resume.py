"""A training run's resume state, so that no interruption costs a finished epoch.

The folder (``models/<model>/resume/``, outside the rule's outputs, so Snakemake keeps it when a job
fails) holds:

- ``lock``: held by the run's one trainer (``locks.run_folder_lock``);
- ``last.pt``: the state after the latest finished epoch (weights, optimizer, history, and the key);
- ``best.pt``: the state of the best epoch, when that is not the latest one;
- ``finished/``: hard links to the finished outputs and their key, so that a rerun whose outputs
  Snakemake discarded (the job ended after Snakemake itself was stopped) gets them back at once.

One state is written per epoch, and the best weights are never written on their own: when an epoch
is no better than the one in ``last.pt``, that file is renamed to ``best.pt`` (free) before the new
``last.pt`` is written. Each file is written atomically and holds a whole, consistent state, so the
best weights and the history cannot disagree wherever a job is killed.

A state is used only when its key matches the run's: the model-defining hyper-parameters, the code's
fingerprint and the hashes of the training and validation tensors. Anything else starts afresh and the
log says why. A file that cannot be read is set aside (renamed ``*.damaged``), not retried forever.
"""

import json
import logging
import os
import shutil
from pathlib import Path

import torch

from ..base.files import atomic_path, load_torch_file

log = logging.getLogger(__name__)


def run_key(hp, code_version, train_split, val_split):
    """Everything that shaped a run: a resume state from any other run must not be continued."""
    data = {"train": train_split.sha256, "val": val_split.sha256}
    return {"hyperparameters": hp, "code": code_version, "data": data}


def _same(first, second):
    return json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def key_difference(old, new):
    """Which parts of two keys differ, in words for the log."""
    parts = []
    old_hp, new_hp = old.get("hyperparameters", {}), new["hyperparameters"]
    changed = sorted(k for k in old_hp.keys() | new_hp.keys() if not _same(old_hp.get(k), new_hp.get(k)))
    if changed:
        parts.append(f"other hyper-parameters ({', '.join(changed)})")
    if old.get("code") != new["code"]:
        parts.append("other code of the study")
    if not _same(old.get("data"), new["data"]):
        parts.append("other training or validation data (split settings or archive)")
    return " and ".join(parts) or "nothing"


class ResumeFolder:
    """The resume state of one run; ``key`` is ``run_key(...)`` of the run asking."""

    def __init__(self, folder, key):
        self.folder = Path(folder)
        self.key = key
        self.last, self.best, self.finished = (
            self.folder / name for name in ("last.pt", "best.pt", "finished")
        )
        self._last_is_best = False
        self.folder.mkdir(parents=True, exist_ok=True)

    def _read(self, path):
        """The saved state at ``path`` (memory-mapped: weights are read only when used), or None."""
        try:
            payload = load_torch_file(path, mmap=True)
            payload["state"]["epoch"]  # noqa: B018 - a state without it is damaged too
        except Exception as error:  # a truncated file fails in several ways
            aside = path.with_name(path.name + ".damaged")
            os.replace(path, aside)
            log.warning("resume file %s cannot be read (%s): set aside as %s", path, error, aside.name)
            return None
        if not _same(payload["key"], self.key):
            log.info(
                "not resuming from %s: it was trained with other %s",
                path,
                key_difference(payload["key"], self.key),
            )
            path.unlink()
            return None
        return payload

    def restore(self):
        """The latest saved state of this run, or None to start afresh."""
        for partial in self.folder.glob(".*.part"):  # an atomic write cut short by a kill
            partial.unlink()
        saved = [
            payload for path in (self.last, self.best) if path.exists() for payload in [self._read(path)]
        ]
        saved = [payload for payload in saved if payload is not None]
        if not saved:
            return None
        latest = max(saved, key=lambda payload: payload["state"]["epoch"])
        best_epoch = latest["state"]["best_epoch"]
        if best_epoch not in {payload["state"]["epoch"] for payload in saved}:
            log.warning("resume files of %s disagree on the best epoch: starting afresh", self.folder)
            self.discard()
            return None
        self._last_is_best = self.last.exists() and latest["state"]["epoch"] == best_epoch
        log.info("resuming after epoch %d from %s", latest["state"]["epoch"], self.folder)
        return latest

    def save(self, payload):
        """Keep the state after a finished epoch (``payload['state']`` has its epoch and best epoch)."""
        epoch, best_epoch = payload["state"]["epoch"], payload["state"]["best_epoch"]
        if best_epoch != epoch and self._last_is_best:
            os.replace(self.last, self.best)  # last.pt holds the best epoch: keep it, at no write cost
        with atomic_path(self.last) as partial:
            torch.save({**payload, "key": self.key}, partial)
        if best_epoch == epoch:
            self.best.unlink(missing_ok=True)  # superseded: last.pt now holds the best weights
        self._last_is_best = best_epoch == epoch

    def best_weights(self, state, model):
        """The weights of ``state``'s best epoch: the model's own, or those kept in best.pt."""
        if state["best_epoch"] == state["epoch"]:
            return {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
        kept = load_torch_file(self.best, mmap=True)
        assert kept["state"]["epoch"] == state["best_epoch"], "best.pt is not the best epoch's state"
        return kept["model"]

    def discard(self):
        for path in (self.last, self.best):
            path.unlink(missing_ok=True)

    def finish(self, outputs):
        """After the outputs are written: keep hard links to them, drop the (large) epoch states."""
        staging = self.folder / ".finished.part"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            for path in outputs.values():
                os.link(path, staging / Path(path).name)
        except OSError as error:
            log.warning("cannot keep hard links to the outputs (%s): a rerun after Snakemake was stopped "
                        "will train again", error)  # fmt: skip
            shutil.rmtree(staging)
        else:
            (staging / "key.json").write_text(json.dumps(self.key, sort_keys=True))
            shutil.rmtree(self.finished, ignore_errors=True)
            staging.rename(self.finished)
        self.discard()

    def restore_finished(self, outputs):
        """Put back the outputs of a finished run with this key; True when it did."""
        key_file = self.finished / "key.json"
        kept = {name: self.finished / Path(path).name for name, path in outputs.items()}
        if not key_file.exists() or not _same(json.loads(key_file.read_text()), self.key):
            shutil.rmtree(self.finished, ignore_errors=True)
            return False
        if not all(path.exists() for path in kept.values()):
            shutil.rmtree(self.finished)
            return False
        for name, path in outputs.items():
            with atomic_path(path) as partial:
                partial.unlink()
                os.link(kept[name], partial)
        log.info(
            "this run had already finished (%s): its outputs are restored, nothing is trained", self.finished
        )
        return True
