"""Test-set metrics from labels and probabilities, and the files that carry them.

Pure functions: the model inference that produces labels and probabilities lives elsewhere, so these can
be checked against hand-computed numbers.
"""

import json

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support

from cnnstudy.analysis.stats import wilson_interval
from cnnstudy.base.files import atomic_path

CONFIDENCE = 0.95  # of the accuracy's interval in every metrics.json

PREDICTION_COLUMNS = ["file", "true", "predicted", "confidence"]


def classification_metrics(true_labels, predicted_labels, probabilities, class_names):
    """Accuracy, cross-entropy, per-class precision/recall/F1, macro F1 and the confusion matrix.

    Labels are class indices into ``class_names``; ``probabilities`` is (images × classes). Every class
    is scored even when the test set lacks it, so the matrix is always classes × classes.
    """
    true = np.asarray(true_labels)
    predicted = np.asarray(predicted_labels)
    labels = list(range(len(class_names)))
    # float32 softmax rows drift off 1 by ~1e-7, which log_loss rejects; renormalising changes nothing else
    probabilities = np.asarray(probabilities, dtype=np.float64)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)

    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=labels, zero_division=0
    )
    confusion = pd.DataFrame(
        confusion_matrix(true, predicted, labels=labels),
        index=pd.Index(class_names, name="true"),
        columns=pd.Index(class_names, name="predicted"),
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    correct = int((true == predicted).sum())
    return {
        "accuracy": float(accuracy_score(true, predicted)),
        "accuracy_ci95": list(wilson_interval(correct, len(true), CONFIDENCE)),
        "accuracy_ci_method": "Wilson score interval over the test images",
        "loss": float(log_loss(true, probabilities, labels=labels)),
        "n_images": len(true),
        "classes": list(class_names),
        "per_class": per_class,
        "macro_f1": float(np.mean(f1)),
        "confusion": confusion,
    }


def write_evaluation(
    metrics_dict_extras, metrics, predictions_frame, metrics_path, confusion_path, predictions_path
):
    """Write metrics.json (``metrics_dict_extras`` first: model, dataset, pretrained, checkpoint_epoch),
    confusion.csv and predictions.csv, each atomically."""
    record = {**metrics_dict_extras, **{key: value for key, value in metrics.items() if key != "confusion"}}
    with atomic_path(metrics_path) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n")
    with atomic_path(confusion_path) as temporary:
        metrics["confusion"].to_csv(temporary)
    with atomic_path(predictions_path) as temporary:
        predictions_frame[PREDICTION_COLUMNS].to_csv(temporary, index=False)
