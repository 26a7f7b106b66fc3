"""The dataset: downloading and verifying an archive, the demo's generated stand-in for it, class names,
preparing the images once into tensors, and reading those tensors back (batches, augmentation).

May import ``base`` only.
"""
