"""The package's wings, and imports that run one way between them, derived from the code itself."""

import ast
from graphlib import CycleError, TopologicalSorter

from cnnstudy.base.codeversion import PACKAGE_DIR, imported_modules

# Each wing and the wings it may import: from what presents results down to what every stage uses.
MAY_IMPORT = {
    "base": set(),
    "data": {"base"},
    "conv": {"base"},
    "train": {"data", "base"},
    "analysis": {"train", "data", "base"},
    "figures": {"analysis", "train", "data", "base"},
}


def modules():
    return {
        ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts): path
        for path in PACKAGE_DIR.glob("*/*.py")
        if path.name != "__init__.py"
    }


def test_the_package_holds_only_wings():
    assert sorted(path.name for path in PACKAGE_DIR.iterdir() if path.name != "__pycache__") == sorted(
        ["__init__.py", *MAY_IMPORT]
    )
    assert not list(PACKAGE_DIR.glob("*/*/*.py")), "one level of wings, no deeper"


def test_each_wing_says_what_lives_there_and_imports_nothing():
    for wing in MAY_IMPORT:
        tree = ast.parse((PACKAGE_DIR / wing / "__init__.py").read_text())
        assert ast.get_docstring(tree), f"{wing}/__init__.py needs a docstring"
        assert tree.body[1:] == [], f"{wing}/__init__.py holds code: the Snakefile imports it without torch"


def test_imports_between_wings_run_one_way():
    wrong = []
    for module, path in modules().items():
        wing = module.split(".")[0]
        for imported in imported_modules(path):
            target = imported.split(".")[0]
            if target != wing and target not in MAY_IMPORT[wing]:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_neither_wings_nor_modules_import_in_a_cycle():
    TopologicalSorter(MAY_IMPORT).static_order()  # the declared direction is itself acyclic
    graph = {module: imported_modules(path) for module, path in modules().items()}
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        raise AssertionError(f"import cycle: {cycle.args[1]}") from None


def test_the_import_graph_is_read_from_the_code():
    # a check that could not fail would prove nothing: the loop imports the models, and is seen to
    assert "train.models" in imported_modules(PACKAGE_DIR / "train" / "loop.py")
    assert "base.files" in imported_modules(PACKAGE_DIR / "analysis" / "tables.py")
