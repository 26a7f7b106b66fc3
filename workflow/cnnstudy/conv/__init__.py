"""The convolution written from scratch (``stub``) and the grid of cases that checks it against
PyTorch's own (``checks``).

May import ``base`` only.
"""
