"""Which of the study's modules a rule script runs, and a fingerprint of their code.

Each rule carries a ``code`` param: a hash of its script and of every package module the script imports,
directly or through other modules, found by reading the imports (so the list cannot drift from the code).
A param, not input files: Snakemake compares params by value, so a ``git checkout`` or a ``touch`` that
leaves the code as it was reruns nothing. The hash covers the code's syntax tree without docstrings, so a
comment, a docstring or reformatting reruns nothing either. Snakemake's own ``code`` trigger would rerun
a job whenever its script file is newer than the outputs (any pull, any comment), so the workflow's
profile (``profiles/default``) leaves that trigger out and this fingerprint stands in for it.

Where a module lives does not count either. Modules are named by their dotted path inside the package
(``train.loop``), but each is hashed under a *fingerprint name* that survives a move: its file name, or,
for a renamed module, the name it had before (``FORMER_NAMES``). Imports of the package's own modules are
hashed in that form too, so moving a module to another wing, or renaming it and adding it here, leaves
every fingerprint as it was and reruns nothing.

Modules that cannot change a result are left out, so editing them reruns nothing; each says why.
Imported without torch: the Snakefile computes the fingerprints when it is parsed.
"""

import ast
import hashlib
from pathlib import Path

PACKAGE = "cnnstudy"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
RESULT_NEUTRAL = {
    "base.jobs": "sets up a job's log and reads how it runs (device, batch sizes to check); computes nothing",
    "base.files": "writes files atomically; what is written comes from the caller",
    "base.devices": "picks the device and takes GPU locks; the device is a run setting",
    "base.locks": "keeps two processes off one run directory or one GPU",
    "base.memory": "sizes inference chunks to the memory available; predictions do not depend on the chunk",
    "base.provenance": "records where a result came from (commit, versions, data hashes), not what it is",
    "base.codeversion": "computes these fingerprints",
    "train.live_curves": "writes TensorBoard event files beside the run, a side output no rule declares",
}
# Renamed modules keep the name their finished runs were fingerprinted under (the flat package of 0.1.0).
# Rename a module: add `new dotted path: old fingerprint name` here, and nothing reruns.
FORMER_NAMES = {
    "data.tensors": "data",
    "data.demo_archive": "demo_data",
    "conv.stub": "conv_stub",
    "conv.checks": "conv_checks",
    "train.loop": "training",
    "analysis.claims_tables": "claims_report",
    "figures.per_model": "plots",
    "figures.comparison": "plots_compare",
    "figures.gradients": "plots_gradients",
    "figures.claims": "plots_claims",
    "figures.landing": "run_description",
}


def module_path(module):
    """The file of a dotted module name (``train.loop`` → ``…/cnnstudy/train/loop.py``)."""
    return PACKAGE_DIR.joinpath(*module.split(".")).with_suffix(".py")


def fingerprint_name(module):
    """The name ``module`` is hashed under: the same wherever it lives."""
    return FORMER_NAMES.get(module, module.rpartition(".")[2])


def _is_module(parts):
    return bool(parts) and module_path(".".join(parts)).is_file()


def _from_parts(node, package):
    """The package-relative parts of ``from X import …`` (None outside the package); ``package`` is the
    importing module's own package, as parts (``["train"]`` for ``train.loop``)."""
    if node.level:
        if node.level - 1 > len(package):
            return None
        return package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
    if node.module == PACKAGE or (node.module or "").startswith(f"{PACKAGE}."):
        return node.module.split(".")[1:]
    return None


def _imports(node, package):
    """The package modules an import statement refers to, as dotted names."""
    if isinstance(node, ast.Import):
        names = [alias.name.split(".")[1:] for alias in node.names if alias.name.startswith(f"{PACKAGE}.")]
        return [".".join(parts) for parts in names if _is_module(parts)]
    parts = _from_parts(node, package)
    if parts is None:
        return []
    if _is_module(parts):
        return [".".join(parts)]  # from cnnstudy.train.loop import train
    submodules = [[*parts, alias.name] for alias in node.names]  # from cnnstudy.train import loop
    return [".".join(names) for names in submodules if _is_module(names)]


def _package_of(path):
    path = Path(path).resolve()
    if PACKAGE_DIR not in path.parents:
        return []  # a rule script
    return list(path.relative_to(PACKAGE_DIR).parent.parts)


def imported_modules(path):
    """The package modules ``path`` imports anywhere in its code (function-level imports included)."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    package = _package_of(path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_imports(node, package))
    return found


def module_closure(script):
    """Every package module ``script`` runs: its imports, their imports, and so on."""
    pending, seen = list(imported_modules(script)), set()
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending.extend(imported_modules(module_path(module)))
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


def _with_placeless_imports(tree, package):
    """Rewrite the package's own imports as if every module lived at the top under its fingerprint name
    (``from ..base.files import x`` → ``from .files import x``), keeping relative imports relative."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if module := next(iter(_imports(ast.Import(names=[alias]), package)), None):
                    alias.name = f"{PACKAGE}.{fingerprint_name(module)}"
        elif isinstance(node, ast.ImportFrom) and (parts := _from_parts(node, package)) is not None:
            name = fingerprint_name(".".join(parts)) if _is_module(parts) else None
            for alias in node.names if name is None else []:  # from cnnstudy.train import loop
                if _is_module([*parts, alias.name]):
                    alias.name = fingerprint_name(".".join([*parts, alias.name]))
            if node.level:
                node.module, node.level = name, 1
            else:
                node.module = f"{PACKAGE}.{name}" if name else PACKAGE
    return tree


def _sorted_import_blocks(tree):
    """Each run of top-level imports in one order: moving a module reorders its imports (isort puts
    ``..base`` before ``.models``), which changes nothing."""
    body, block = [], []
    for node in [*tree.body, None]:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            block.append(node)
            continue
        body += sorted(block, key=ast.dump) + ([node] if node else [])
        block = []
    tree.body = body
    return tree


def _code(path):
    """What of a file's code counts: its syntax tree, without docstrings, with placeless imports."""
    tree = _without_docstrings(ast.parse(Path(path).read_text(), filename=str(path)))
    return ast.dump(_sorted_import_blocks(_with_placeless_imports(tree, _package_of(path))))


def code_fingerprint(script):
    """A short hash of the script's and its tracked modules' code: equal exactly when their syntax trees
    are."""
    digest = hashlib.sha256(f"script\0{_code(script)}\0".encode())
    modules = {fingerprint_name(module): module for module in tracked_modules(script)}
    for name in sorted(modules):
        digest.update(f"{name}\0{_code(module_path(modules[name]))}\0".encode())
    return digest.hexdigest()[:16]
