"""Code changes rerun what they affect: each rule carries a fingerprint of its script and the modules it
runs, wherever in the package those modules live."""

import re
from modulefinder import ModuleFinder

import pytest

from cnnstudy.base import codeversion
from cnnstudy.base.codeversion import (
    FORMER_NAMES,
    RESULT_NEUTRAL,
    code_fingerprint,
    fingerprint_name,
    module_closure,
    module_path,
    tracked_modules,
)
from helpers import REPO

SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))
# What each rule script's fingerprint covers: the modules tracked before the package moved into wings
# (0.1.0), under their new names, and figures.style, the figures' shared palette and type sizes (new in
# 0.2). A change here is a change to what reruns: say so in CHANGELOG.md.
COMPARISON = ["analysis.tables", "base.rendering", "figures.comparison", "figures.per_model", "figures.style"]
INSIDE = [
    "analysis.mistakes",
    "analysis.saliency",
    "base.layout",
    "data.download",
    "data.tensors",
    "figures.inside",
    "figures.per_model",
    "figures.style",
    "train.inference",
    "train.models",
    "train.weights",
]
GOLDEN = {
    "check_claims": ["analysis.claims", "analysis.claims_tables", "analysis.stats", "analysis.tables",
                     "base.rendering", "figures.claims", "figures.per_model", "figures.style"],
    "describe_run": ["analysis.tables", "base.rendering", "figures.landing"],
    "download_dataset": ["data.download"],
    "download_weights": ["base.layout", "data.download", "train.weights"],
    "evaluate_checkpoint": ["analysis.evaluation", "analysis.scoring", "analysis.stats", "base.layout",
                            "data.tensors", "train.inference", "train.models"],
    "inspect_model": [*INSIDE],
    "make_demo_archive": ["data.classes", "data.demo_archive"],
    "make_per_class_table": ["analysis.tables", "base.rendering"],
    "make_sweep_table": ["analysis.tables", "base.rendering", "figures.per_model", "figures.style",
                         "figures.sweeps"],
    "make_table": ["analysis.tables", "base.rendering"],
    "plot_comparison_accuracy": [*COMPARISON],
    "plot_comparison_curves": [*COMPARISON],
    "plot_comparison_saliency": [*INSIDE],
    "plot_comparison_transfer": [*COMPARISON],
    "plot_confusion": ["figures.per_model", "figures.style"],
    "plot_curves": ["figures.per_model", "figures.style"],
    "plot_dead_units": [*COMPARISON],
    "plot_gradients": ["figures.gradients", "figures.per_model", "figures.style"],
    "prepare_dataset": ["data.classes", "data.prepare"],
    "train": ["base.layout", "data.download", "data.tensors", "train.inference", "train.loop",
              "train.measurements", "train.models", "train.resume", "train.run_outputs", "train.weights"],
    "verify_conv_stub": ["base.rendering", "conv.checks", "conv.stub"],
    "write_config": ["analysis.tables", "base.rendering", "figures.landing"],
}  # fmt: skip


def imported_by(script):
    """The package modules a script loads, found by the standard library's own import finder."""
    finder = ModuleFinder(path=[str(REPO / "workflow")])
    finder.run_script(str(script))
    names = (name.removeprefix("cnnstudy.") for name in finder.modules if name.startswith("cnnstudy."))
    return {name for name in names if module_path(name).is_file()}  # modules, not the wings themselves


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_every_module_a_script_runs_is_tracked_or_explained(script):
    loaded = imported_by(script)
    assert loaded == module_closure(script)
    untracked = loaded - set(tracked_modules(script))
    assert untracked <= set(RESULT_NEUTRAL), f"{script.name} runs {untracked - set(RESULT_NEUTRAL)} untracked"


def test_each_script_tracks_its_golden_list_of_modules():
    assert {script.stem: tracked_modules(script) for script in SCRIPTS} == GOLDEN


def test_fingerprint_names_are_unique_and_name_real_modules():
    modules = [
        ".".join(path.relative_to(codeversion.PACKAGE_DIR).with_suffix("").parts)
        for path in codeversion.PACKAGE_DIR.glob("*/*.py")
        if path.name != "__init__.py"
    ]
    names = [fingerprint_name(module) for module in modules]
    assert len(set(names)) == len(names), sorted(name for name in names if names.count(name) > 1)
    assert set(FORMER_NAMES) <= set(modules) and set(RESULT_NEUTRAL) <= set(modules)


def test_every_rule_is_a_script_rule_carrying_the_fingerprint_of_its_own_script():
    rules = "\n".join(path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk"))
    assert not re.search(r"^\s+(shell|run|notebook|wrapper):", rules, flags=re.M), (
        "only scripts are fingerprinted"
    )
    bodies = re.split(r"^(?:rule|use rule) ", rules, flags=re.M)[1:]
    scripts = 0
    for body in bodies:
        script = re.search(r'script:\s*"\.\./scripts/(\w+\.py)"', body)
        if script:
            scripts += 1
            assert f'code=code_version("{script.group(1)}")' in body, body.split(":")[0]
    assert scripts >= 15


def test_the_workflow_profile_leaves_the_script_date_trigger_to_the_fingerprint():
    profile = (REPO / "profiles" / "default" / "config.yaml").read_text()
    assert re.search(r"^rerun-triggers: \[mtime, params, input, software-env\]$", profile, flags=re.M)


@pytest.fixture()
def package(tmp_path, monkeypatch):
    """A tiny package in wings: a figure module, a result-neutral helper, and a script using both."""
    root = tmp_path / "cnnstudy"
    for wing in ("base", "figures", "analysis"):
        (root / wing).mkdir(parents=True)
    (root / "figures" / "plots.py").write_text('"""Figures."""\n\ndef draw(x):\n    return x + 1\n')
    (root / "base" / "files.py").write_text("def write(): pass\n")
    script = tmp_path / "plot.py"
    script.write_text("from cnnstudy.figures.plots import draw\nfrom cnnstudy.base.files import write\n")
    monkeypatch.setattr(codeversion, "PACKAGE_DIR", root)
    return root, script


def test_fingerprint_ignores_comments_docstrings_and_layout_but_not_code(package):
    root, script = package
    original = code_fingerprint(script)
    (root / "figures" / "plots.py").write_text(
        '"""Figures, redone."""\n# why\ndef draw( x ):\n    """Doc."""\n    return (x + 1)\n'
    )
    assert code_fingerprint(script) == original
    (root / "base" / "files.py").write_text("def write(): return 2\n")  # result-neutral
    assert code_fingerprint(script) == original
    (root / "figures" / "plots.py").write_text("def draw(x):\n    return x + 2\n")
    assert code_fingerprint(script) != original


def test_the_script_itself_counts_its_comments_do_not(package):
    _, script = package
    original = code_fingerprint(script)
    script.write_text("# plots\n" + script.read_text())
    assert code_fingerprint(script) == original
    script.write_text(script.read_text() + "draw(1)\n")
    assert code_fingerprint(script) != original


def test_a_leading_statement_that_is_not_a_docstring_counts(package):
    root, script = package
    (root / "figures" / "plots.py").write_text("setup(1)\n\ndef draw(x):\n    return x\n")
    before = code_fingerprint(script)
    (root / "figures" / "plots.py").write_text("setup(2)\n\ndef draw(x):\n    return x\n")
    assert code_fingerprint(script) != before


def test_moving_a_module_to_another_wing_keeps_the_fingerprint(package):
    root, script = package
    (root / "base" / "style.py").write_text("SIZE = 8\n")
    imports = ["from ..base.files import write", "from ..base.style import SIZE"]
    body = "\n\ndef draw(x):\n    return x\n"
    (root / "figures" / "plots.py").write_text("\n".join(imports) + body)
    before = code_fingerprint(script)
    (root / "figures" / "plots.py").unlink()
    (root / "base" / "plots.py").write_text("\n".join(reversed(imports)).replace("..base.", ".") + body)
    script.write_text(script.read_text().replace("figures.plots", "base.plots"))
    assert code_fingerprint(script) == before  # another wing, other import forms, another import order
    (root / "base" / "style.py").write_text("SIZE = 9\n")
    assert code_fingerprint(script) != before  # and still every module it runs counts


def test_renaming_a_module_keeps_the_fingerprint_once_listed(package, monkeypatch):
    root, script = package
    before = code_fingerprint(script)
    (root / "figures" / "plots.py").rename(root / "figures" / "drawing.py")
    script.write_text(script.read_text().replace("figures.plots", "figures.drawing"))
    assert code_fingerprint(script) != before  # a new name is a new module ...
    monkeypatch.setitem(FORMER_NAMES, "figures.drawing", "plots")
    assert code_fingerprint(script) == before  # ... unless it keeps its former one


def test_every_import_form_of_a_moved_module_keeps_the_fingerprint(package):
    """`import cnnstudy.x.y as z`, `from cnnstudy.x import y` and `from . import y` name a module by where
    it lives: each is hashed in a form that does not say where."""
    root, script = package
    script.write_text(
        "import cnnstudy.figures.plots as plots\nfrom cnnstudy.figures import plots as drawing\n"
        "from cnnstudy.base.files import write\n\nplots.draw(drawing.draw(1))\n"
    )
    (root / "figures" / "style.py").write_text(
        "from . import plots\nfrom .plots import draw\n\nSIZE = draw(1)\n"
    )
    (root / "figures" / "plots.py").write_text(
        "import cnnstudy.figures.style\n\ndef draw(x):\n    return x\n"
    )
    before = code_fingerprint(script)
    assert set(tracked_modules(script)) == {"figures.plots", "figures.style"}
    for name in ("plots", "style"):
        (root / "figures" / f"{name}.py").rename(root / "analysis" / f"{name}.py")
    (root / "analysis" / "plots.py").write_text(
        "import cnnstudy.analysis.style\n\ndef draw(x):\n    return x\n"
    )
    script.write_text(script.read_text().replace("figures", "analysis"))
    assert code_fingerprint(script) == before
    (root / "analysis" / "style.py").write_text(
        "from . import plots\nfrom .plots import draw\n\nSIZE = draw(2)\n"
    )
    assert code_fingerprint(script) != before


def test_the_first_statement_after_a_docstring_counts(package):
    root, script = package
    (root / "figures" / "plots.py").write_text('def draw(x):\n    """Doc."""\n    y = x\n    return y\n')
    before = code_fingerprint(script)
    (root / "figures" / "plots.py").write_text('def draw(x):\n    """Doc."""\n    y = x + 1\n    return y\n')
    assert code_fingerprint(script) != before


def test_fingerprints_are_stable_across_releases(package):
    """Every finished run of every user is keyed by these values: any change to how code is hashed (not
    only to what counts) reruns every study. A tiny package with each construct the hash treats specially
    (docstrings, a function that is only a docstring, relative and absolute package imports, import blocks
    in another order, a neutral module) must keep its fingerprint; change it only on purpose, with a
    CHANGELOG entry saying that everything reruns. (The hash covers ``ast.dump``, whose form is Python's:
    this value is Python 3.11's, the version the Makefile installs.)"""
    root, script = package
    (root / "figures" / "plots.py").write_text(
        '"""Figures."""\n\nimport math\nfrom ..base.files import write\nfrom .style import SIZE\n\n\n'
        'def draw(x):\n    """Draw."""\n    return math.floor(x) + SIZE\n\n\ndef later():\n    """Not yet."""\n'
    )
    (root / "figures" / "style.py").write_text("from . import plots\n\nSIZE = 8\n")
    script.write_text(
        "import cnnstudy.figures.style as style\nfrom cnnstudy.figures import plots\n"
        "from cnnstudy.base.files import write\n\nplots.draw(style.SIZE)\n"
    )
    assert code_fingerprint(script) == "0206c601a177d42a"


def test_a_renamed_module_imported_from_its_wing_keeps_the_fingerprint(package, monkeypatch):
    root, script = package
    script.write_text("from cnnstudy.figures import plots\nfrom cnnstudy.base.files import write\n")
    before = code_fingerprint(script)
    (root / "figures" / "plots.py").rename(root / "figures" / "drawing.py")
    script.write_text("from cnnstudy.figures import drawing\nfrom cnnstudy.base.files import write\n")
    assert code_fingerprint(script) != before  # a new name ...
    monkeypatch.setitem(FORMER_NAMES, "figures.drawing", "plots")  # ... unless it keeps its former one
    assert code_fingerprint(script) == before
