"""The CNN study's real code: data, the from-scratch convolution, models, training, evaluation, plots.

Rule scripts under ``workflow/scripts`` are thin wrappers around these modules; pytest imports them
directly.
"""
