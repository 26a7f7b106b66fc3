"""`make mutate`'s report: the share of mutants killed in each module of the analysis core, then every
mutant that survived, as the line it changed.

Reads what `mutmut run` left in .mutate/mutants/ (one ``<module>.py.meta`` of exit codes per mutated
file). A mutant counts as killed when a test failed on it (or it hung past mutmut's timeout); it
survives when every test that runs its function passed, and has "no tests" when no selected test runs
its function at all. The share is killed / (killed + survived + no tests).
"""

import ast
import difflib
import json
import sys
from pathlib import Path

KILLED = {1, 3, -24, 24, 152, 255, -9, -11, 36}  # a failing test, pytest's internal error, a timeout
SURVIVED, NO_TESTS = {0}, {5, 33}


def functions(path):
    """Every top-level function and method of a file: name → (node, source segment)."""
    source = path.read_text()
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body:
        members = node.body if isinstance(node, ast.ClassDef) else [node]
        for member in members:
            if isinstance(member, ast.FunctionDef):
                found[member.name] = (member, lines[member.lineno - 1 : member.end_lineno])
    return found


def changed_line(original, mutants, name):
    """'line N: old → new' of mutant ``name`` (e.g. ``x_holm__mutmut_7``) against the original file."""
    function = name.partition("__mutmut_")[0].rpartition("ǁ")[2].removeprefix("x_")
    base = name.partition("__mutmut_")[0]
    if base + "__mutmut_orig" not in mutants or name not in mutants or function not in original:
        return "(not found in the mutated file)"
    before, after = mutants[base + "__mutmut_orig"][1][1:], mutants[name][1][1:]
    start = original[function][0].lineno
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
        if tag != "equal":
            old = " ".join(line.strip() for line in before[i1:i2]) or "(nothing)"
            new = " ".join(line.strip() for line in after[j1:j2]) or "(line removed)"
            return f"line {start + 1 + i1}: {old}  →  {new}"
    return "(no textual change)"


def main(workspace):
    workspace = Path(workspace)
    metas = sorted((workspace / "mutants" / "src").rglob("*.py.meta"))
    if not metas:
        sys.exit(f"no mutmut results under {workspace}/mutants: run `make mutate` first")
    rows, survivors, below = [], [], []
    for meta in metas:
        source = meta.with_suffix("")  # …/mutants/src/cnnstudy/x/y.py
        module = ".".join(
            source.relative_to(workspace / "mutants" / "src" / "cnnstudy").with_suffix("").parts
        )
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        killed = sum(code in KILLED for code in codes.values())
        alive = {key: code for key, code in codes.items() if code in SURVIVED | NO_TESTS}
        unknown = len(codes) - killed - len(alive)
        share = killed / (killed + len(alive)) if killed + len(alive) else 1.0
        rows.append((module, len(codes), killed, len(alive), unknown, share))
        if share < 0.85:
            below.append(module)
        original, mutated = (
            functions(workspace / "src" / source.relative_to(workspace / "mutants" / "src")),
            functions(source),
        )
        for key, code in sorted(alive.items(), key=lambda item: _order(item[0])):
            what = "survived" if code in SURVIVED else "no tests"
            survivors.append(
                f"{key.removeprefix('cnnstudy.')} [{what}] {changed_line(original, mutated, key.rpartition('.')[2])}"
            )
    width = max(len(row[0]) for row in rows)
    print(f"\n{'module':<{width}}  mutants  killed  alive  unchecked  killed share")
    for module, total, killed, alive, unknown, share in rows:
        print(f"{module:<{width}}  {total:7}  {killed:6}  {alive:5}  {unknown:9}  {share:11.1%}")
    total_killed, total_alive = sum(row[2] for row in rows), sum(row[3] for row in rows)
    print(
        f"{'all':<{width}}  {sum(row[1] for row in rows):7}  {total_killed:6}  {total_alive:5}  "
        f"{sum(row[4] for row in rows):9}  {total_killed / (total_killed + total_alive):11.1%}"
    )
    print(f"\nSurvivors ({len(survivors)}; `.venv/bin/mutmut show NAME` in .mutate/ shows one in full):")
    print("\n".join(f"  {line}" for line in survivors) or "  none")
    if below:
        print(f"\nBelow the 85 % goal: {', '.join(below)}")


def _order(key):
    function, _, number = key.rpartition("__mutmut_")
    return function, int(number) if number.isdigit() else 0


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".mutate")
