"""Code changes rerun what they affect: each rule carries a fingerprint of the modules its script runs."""

import re
from modulefinder import ModuleFinder

import pytest

from cnnstudy.codeversion import RESULT_NEUTRAL, code_fingerprint, module_closure, tracked_modules
from helpers import REPO

SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))


def imported_by(script):
    """The package modules a script loads, found by the standard library's own import finder."""
    finder = ModuleFinder(path=[str(REPO / "workflow")])
    finder.run_script(str(script))
    return {name.split(".")[1] for name in finder.modules if name.startswith("cnnstudy.")}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_every_module_a_script_runs_is_tracked_or_explained(script):
    loaded = imported_by(script)
    assert loaded == module_closure(script)
    untracked = loaded - set(tracked_modules(script))
    assert untracked <= set(RESULT_NEUTRAL), f"{script.name} runs {untracked - set(RESULT_NEUTRAL)} untracked"


def test_every_rule_script_carries_the_fingerprint_of_its_own_script():
    rules = "\n".join(path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk"))
    bodies = re.split(r"^(?:rule|use rule) ", rules, flags=re.M)[1:]
    scripts = 0
    for body in bodies:
        script = re.search(r'script:\s*"\.\./scripts/(\w+\.py)"', body)
        if script:
            scripts += 1
            assert f'code=code_version("{script.group(1)}")' in body, body.split(":")[0]
    assert scripts >= 15


def test_fingerprint_ignores_comments_docstrings_and_layout_but_not_code(tmp_path, monkeypatch):
    package = tmp_path / "cnnstudy"
    package.mkdir()
    (package / "plots.py").write_text('"""Figures."""\n\ndef draw(x):\n    return x + 1\n')
    (package / "files.py").write_text("def write(): pass\n")
    script = tmp_path / "plot.py"
    script.write_text("from cnnstudy.plots import draw\nfrom cnnstudy.files import write\n")
    monkeypatch.setattr("cnnstudy.codeversion.PACKAGE_DIR", package)
    original = code_fingerprint(script)
    (package / "plots.py").write_text(
        '"""Figures, redone."""\n# why\ndef draw( x ):\n    """Doc."""\n    return (x + 1)\n'
    )
    assert code_fingerprint(script) == original
    (package / "files.py").write_text("def write(): return 2\n")  # result-neutral
    assert code_fingerprint(script) == original
    (package / "plots.py").write_text("def draw(x):\n    return x + 2\n")
    assert code_fingerprint(script) != original
