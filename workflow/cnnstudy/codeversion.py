"""Which of the study's modules a rule script runs, and a fingerprint of their code.

Snakemake reruns a job when its script changes, but the scripts are thin: the real code lives in this
package, which no rule declares. Each rule therefore carries a ``code`` param: a hash of every module its
script imports, directly or through other modules, found by reading the imports (so the list cannot drift
from the code). A param, not input files: Snakemake compares params by value, so a ``git checkout`` or a
``touch`` that leaves the code as it was reruns nothing. The hash covers the code's syntax tree without
docstrings, so a comment, a docstring or reformatting reruns nothing either.

Modules that cannot change a result are left out, so editing them reruns nothing; each says why.
Imported without torch: the Snakefile computes the fingerprints when it is parsed.
"""

import ast
import hashlib
from pathlib import Path

PACKAGE = "cnnstudy"
PACKAGE_DIR = Path(__file__).resolve().parent
RESULT_NEUTRAL = {
    "jobs": "sets up a job's log and reads how it runs (device, batch sizes to check); computes nothing",
    "files": "writes files atomically; what is written comes from the caller",
    "devices": "picks the device and takes GPU locks; the device is a run setting",
    "locks": "keeps two processes off one run directory or one GPU",
    "memory": "sizes inference chunks to the memory available; predictions do not depend on the chunk",
    "provenance": "records where a result came from (commit, versions, data hashes), not what it is",
    "codeversion": "computes these fingerprints",
}


def _module_names(node):
    """The package-level module names an import statement refers to (``cnnstudy.x`` → ``x``)."""
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[1] for alias in node.names if alias.name.startswith(f"{PACKAGE}.")]
    if (node.level, node.module) in ((0, PACKAGE), (1, None)):
        return [alias.name for alias in node.names]  # from cnnstudy import x / from . import x
    if node.level == 0 and (node.module or "").startswith(f"{PACKAGE}."):
        return [node.module.split(".")[1]]
    if node.level == 1 and node.module:
        return [node.module.split(".")[0]]
    return []


def imported_modules(path):
    """The package modules ``path`` imports anywhere in its code (function-level imports included)."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(name for name in _module_names(node) if (PACKAGE_DIR / f"{name}.py").exists())
    return found


def module_closure(script):
    """Every package module ``script`` runs: its imports, their imports, and so on."""
    pending, seen = list(imported_modules(script)), set()
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending.extend(imported_modules(PACKAGE_DIR / f"{module}.py"))
    return seen


def tracked_modules(script):
    """The modules whose code can change what ``script`` writes."""
    return sorted(module for module in module_closure(script) if module not in RESULT_NEUTRAL)


def _without_docstrings(tree):
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def code_fingerprint(script):
    """A short hash of the tracked modules' code: equal exactly when their syntax trees are."""
    digest = hashlib.sha256()
    for module in tracked_modules(script):
        tree = _without_docstrings(ast.parse((PACKAGE_DIR / f"{module}.py").read_text()))
        digest.update(f"{module}\0{ast.dump(tree)}\0".encode())
    return digest.hexdigest()[:16]
