"""From predictions to numbers and verdicts: evaluation metrics and scoring a checkpoint, statistics,
the study's claims checked, and the results tables.

May import ``train``, ``data`` and ``base``.
"""
