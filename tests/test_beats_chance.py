"""make demo's last check: every model beats chance, judged from predictions.csv alone."""

import sys

import pandas as pd
import pytest

from cnnstudy.analysis.stats import wilson_interval
from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "smoke"))
import beats_chance  # noqa: E402


def write_predictions(results, model, correct, total=300, classes=10):
    names = [f"class{index}" for index in range(classes)]
    true = [names[index % classes] for index in range(total)]
    predicted = [label if index < correct else names[(names.index(label) + 1) % classes]
                 for index, label in enumerate(true)]  # fmt: skip
    folder = results / "eval" / model
    folder.mkdir(parents=True)
    pd.DataFrame({"file": range(total), "true": true, "predicted": predicted, "confidence": 0.5}).to_csv(
        folder / "predictions.csv", index=False
    )


@pytest.mark.parametrize(("correct", "total"), [(45, 300), (1, 20), (299, 300), (0, 50)])
def test_the_lower_bound_is_wilsons(correct, total):
    assert beats_chance.wilson_lower(correct, total) == pytest.approx(
        wilson_interval(correct, total, 0.95)[0]
    )


def test_a_model_at_chance_fails_the_check_and_is_named(tmp_path, capsys):
    write_predictions(tmp_path, "learnt", correct=60)  # 20 %: lower bound about 15.9 %
    write_predictions(tmp_path, "guessing", correct=36)  # 12 %: lower bound about 8.8 %, under chance
    assert beats_chance.main(tmp_path) == 1
    out = capsys.readouterr().out
    assert "guessing" in out.split("<- not above chance")[0].splitlines()[-1]
    assert "1 of 2 models do not beat chance" in out


def test_models_clearly_above_chance_pass(tmp_path):
    write_predictions(tmp_path, "a", correct=60)
    write_predictions(tmp_path, "b", correct=150, classes=5)  # chance 20 %, 50 % right
    assert beats_chance.main(tmp_path) == 0
    assert beats_chance.main(tmp_path / "nothing") == 1
