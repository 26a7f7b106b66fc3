"""The names of the files each stage writes into a run's folder: one source for rules, scripts and tests."""

TRAINING_OUTPUTS = {
    "checkpoint": "checkpoint.pt",
    "history": "history.csv",
    "gradients": "gradients.csv",
    "summary": "summary.json",
}
EVALUATION_OUTPUTS = {
    "metrics": "metrics.json",
    "confusion": "confusion.csv",
    "predictions": "predictions.csv",
}
