"""Repository hygiene that CI must hold: pins agree, code is formatted, the README's commands exist."""

import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from helpers import REPO

BIN = REPO / ".venv" / "bin"


def pins(lines):
    return dict(re.findall(r"^\s*-?\s*([A-Za-z0-9_.-]+)==([^\s#]+)", lines, flags=re.M))


@pytest.mark.parametrize("env", ["pytorch.yaml", "report.yaml"])
def test_conda_envs_pin_what_requirements_pin(env):
    required = pins((REPO / "requirements.txt").read_text())
    pip_section = next(d["pip"] for d in yaml.safe_load((REPO / "envs" / env).read_text())["dependencies"]
                       if isinstance(d, dict))  # fmt: skip
    env_pins = pins("\n".join(pip_section))
    assert env_pins and all(required[name] == version for name, version in env_pins.items())


def test_torch_pins_are_the_ones_on_this_machines_disk():
    required = pins((REPO / "requirements.txt").read_text())
    assert required["torch"] == "2.14.1" and required["torchvision"] == "0.29.1"


def tool(name):
    path = BIN / name
    return (
        str(path)
        if path.exists()
        else pytest.skip(f"{name} is not installed in .venv (make test installs it)")
    )


def test_snakefiles_are_formatted():
    result = subprocess.run([tool("snakefmt"), "--check", "Snakefile", "workflow/rules"], cwd=REPO,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout


def test_python_is_formatted_and_lint_free():
    for command in (["format", "--check", "."], ["check", "."]):
        result = subprocess.run([tool("ruff"), *command], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_has_a_log():
    rules = "\n".join(path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk"))
    bodies = re.split(r"^\s*rule \w+:", rules, flags=re.M)[1:]
    assert len(bodies) > 10 and all("log:" in body for body in bodies)


def test_readme_commands_are_real_make_targets():
    makefile = (REPO / "Makefile").read_text()
    for target in set(re.findall(r"\bmake ([a-z-]+)", (REPO / "README.md").read_text())):
        assert re.search(rf"^{target}:", makefile, flags=re.M), (
            f"README mentions make {target}; no such target"
        )


def test_scripts_import_only_the_package_and_stay_thin():
    for script in (REPO / "workflow" / "scripts").glob("*.py"):
        lines = [line for line in script.read_text().splitlines() if line.strip()]
        assert len(lines) < 40, f"{script.name} is {len(lines)} lines: move the logic into cnnstudy"
        assert "start_job(snakemake)" in script.read_text() or "snakemake.log" in script.read_text()


BARE_PYTHON = (
    "import runpy, sys\n"
    "for name in ('snakemake', 'sklearn', 'scipy', 'yaml', 'tqdm', 'matplotlib'):\n"
    "    sys.modules[name] = None  # what a bare GPU image may lack\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def run_bare(*arguments, environment=None):
    script = str(REPO / "tests" / "bench" / "bench_gpu.py")
    return subprocess.run([sys.executable, "-c", BARE_PYTHON, script, *arguments], capture_output=True, text=True,
                          env=environment, cwd=REPO / "tests")  # fmt: skip


def test_gpu_benchmark_exits_cleanly_without_a_gpu_on_a_bare_python():
    import os

    result = run_bare(environment={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    assert "No CUDA device" in result.stdout


def test_gpu_benchmark_runs_every_measurement_on_a_bare_python(tmp_path):
    out = tmp_path / "gpu.csv"
    result = run_bare("--device", "cpu", "--steps", "1", "--warmup", "1", "--models", "baseline,resnet18_bn_frozen",
                      "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert frame["model"].tolist() == ["baseline"] * 2 + ["resnet18_bn_frozen"] * 2 + ["baseline"] * 2
    assert frame["images_per_second"].gt(0).all() and frame["compile"].tolist()[4] is True


def test_the_benchmarks_json_copy_of_the_config_is_in_sync():
    import json

    copy = json.loads((REPO / "tests" / "bench" / "study_config.json").read_text())
    assert copy == yaml.safe_load((REPO / "config.yaml").read_text()), "rerun: make study-config-json"


def test_the_snakefile_states_its_oldest_snakemake_first():
    """min_version must run before anything an older Snakemake cannot parse, so it is the first statement,
    and the directives newer than it live in the included files."""
    statements = [line for line in (REPO / "Snakefile").read_text().splitlines() if line and line[0] != "#"]
    assert statements[:2] == ["from snakemake.utils import min_version", 'min_version("8.19.3")']
    assert "resource_scopes" not in (REPO / "Snakefile").read_text()
    pinned = re.search(r"^snakemake\[reports\]==([\d.]+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert tuple(map(int, pinned.group(1).split("."))) >= (8, 19, 3)
