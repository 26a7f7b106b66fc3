"""A model's most confident wrong predictions on the test set, from the evaluation's predictions.csv."""

import pandas as pd

MISTAKES_SHOWN = 24  # a 4 × 6 grid of images
PER_TRUE_CLASS = 4  # so that one confusable class cannot fill the whole figure
COLUMNS = ["file", "true", "predicted", "probability"]


def confident_mistakes(predictions, count=MISTAKES_SHOWN, per_true_class=PER_TRUE_CLASS):
    """The ``count`` wrong predictions made with the highest probability, at most ``per_true_class`` of
    each true class: columns file, true, predicted, probability (the predicted class's), most confident
    first. Ties keep the file-name order, so the choice does not depend on the rows' order. Empty (with
    those columns) when the model made no mistake."""
    wrong = predictions.loc[predictions["true"] != predictions["predicted"], ["file", "true", "predicted"]]
    wrong = wrong.assign(probability=predictions.loc[wrong.index, "confidence"].astype(float))
    ranked = wrong.sort_values(["probability", "file"], ascending=[False, True], kind="stable")
    capped = ranked.groupby("true", sort=False).head(per_true_class)
    return capped.head(count).reset_index(drop=True)[COLUMNS]


def read_predictions(path):
    return pd.read_csv(path, dtype={"file": str, "true": str, "predicted": str})
