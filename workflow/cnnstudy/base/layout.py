"""File names: what each stage writes into a run's folder (one source for rules, scripts and tests), and
the naming convention that lets a weights file be verified."""

import re

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
# torch.hub's weights file names, <name>-<sha256 prefix>.<ext>: the prefix verifies the file. At least 8
# hex digits (torch.hub's names carry 8): a shorter one, as in resnet18-8.pth, matches a random file too
# often to verify anything, so such a file needs transfer.weights_sha256.
HUB_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")
