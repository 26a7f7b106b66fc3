"""The CNN study's real code, in wings by concern; rule scripts under ``workflow/scripts`` are thin
wrappers around it and pytest imports it directly.

Imports run one way, from what presents results down to what every stage uses::

    figures → analysis → train → data → base
                                  conv → base

Each wing's ``__init__.py`` says what lives there. None of them imports anything, so the Snakefile can
import ``cnnstudy.base`` when it is parsed without loading torch.
"""
