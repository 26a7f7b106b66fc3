"""Training: the models, the training loop (``loop``), resumable run state, what a run writes, the
measurements taken while training (dead units, gradients, FLOPs), pretrained weights, and inference.

May import ``data`` and ``base``.
"""
