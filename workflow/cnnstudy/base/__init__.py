"""What every stage uses: the config and its validation (``settings``), a job's start and clear errors
(``jobs``), atomic files, provenance, code fingerprints (``codeversion``), output names (``layout``),
devices and GPU locks, memory bounds, and rendering tables as Markdown and HTML.

Imports nothing from the other wings. Nothing here may import torch at module level: the Snakefile
imports ``settings``, ``layout`` and ``codeversion`` when it is parsed.
"""
