"""What a config edit reruns, on a finished demo: what defines a model retrains it, and nothing else does.

Snakemake compares each param by its repr, so the hyper-parameters must come out the same whatever the
order of the YAML's keys, its comments, or how a number is written (``0`` or ``0.0``, ``0.001`` or
``1.0e-3``).
"""

import re

import pytest
from conftest import run_snakemake

from helpers.workflow import DEMO, planned_jobs

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

RESULT_RULES = ("train_", "finetune_", "evaluate", "plot_")  # training, evaluation and figures


def replace_once(text, old, new):
    assert text.count(old) == 1, f"config.yaml no longer holds {old!r} exactly once"
    return text.replace(old, new)


def block(text, header):
    """The lines of the top-level block ``header`` (up to the next blank line), and where it starts."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return lines, start, end


def respelled(text):
    """config.yaml with the same values: `training`'s keys in reverse order, numbers written otherwise,
    comments changed."""
    lines, start, end = block(text, "training:")
    keys = lines[start + 1 : end]
    assert all(re.match(r"^  [a-z_]+: [^\n]+#", line) for line in keys), "one key a line, each commented"
    text = "".join([*lines[: start + 1], *reversed(keys), *lines[end:]])
    for old, new in [
        ("  lr: 1.0e-3 # Adam's learning rate", "  lr: 0.001 # Adam's step size (edited comment)"),
        ("  weight_decay: 0.0 #", "  weight_decay: 0 #"),
        ("  jitter: 0.2 #", "  jitter: 2.0e-1 #"),
        ("  betas: [0.9, 0.999] #", "  betas: [9.0e-1, 0.999] #"),
        ("  gradient_range: [1.0e-9, 1.0] #", "  gradient_range: [1.0e-9, 1] #"),
        ("  dropout_conv: 0.0 # dropout probability", "  dropout_conv: 0 # dropout probability"),
        ("\ntraining: #", "\n# A comment added above the training block.\ntraining: #"),
    ]:
        text = replace_once(text, old, new)
    return text


def planned_after(finished_demo, edit):
    """(job counts, runs by rule) a dry run plans with ``edit`` applied to config.yaml (undone after)."""
    workflow, configs = finished_demo
    path = workflow / "config.yaml"
    original = path.read_text()
    try:
        path.write_text(edit(original))
        output = run_snakemake(*DEMO, *configs, "-n", cwd=workflow).stdout
    finally:
        path.write_text(original)
    runs = {}
    for rule, details in re.findall(r"^rule (\w+):\n((?:    .*\n)+)", output, flags=re.M):
        wildcards = re.search(r"^    wildcards: (.*)$", details, flags=re.M)
        runs.setdefault(rule, set()).add(wildcards.group(1) if wildcards else "")
    return planned_jobs(output), runs


def test_reordering_reformatting_and_comments_retrain_nothing(finished_demo):
    jobs, _ = planned_after(finished_demo, respelled)
    assert not [rule for rule in jobs if rule.startswith(RESULT_RULES)], jobs
    assert set(jobs) <= {"write_config", "all"}  # the report's copy of the config shows the new order


@pytest.mark.parametrize(
    "old, new, trained",
    [
        (  # a variant's own key: that variant alone
            "      dropout_fc: 0.5 # after FC1\n      weight_decay",
            "      dropout_fc: 0.4 # after FC1\n      weight_decay",
            {"train_cnn": {"model=dropout, seed_suffix="}},
        ),
        (  # the CNN's default: every CNN model that does not set its own, the sweep's points included
            "  dropout_fc: 0.0 # dropout probability after FC1",
            "  dropout_fc: 0.1 # dropout probability after FC1",
            {
                "train_cnn": {
                    f"model={model}, seed_suffix="
                    for model in ("baseline", "batchnorm", "augmentation", "batchnorm_slow")
                },
                "train_sweep_point": {f"sweep=lr_demo, point=lr~{lr}, seed=0" for lr in ("0.0003", "0.003")},
            },
        ),
    ],
    ids=["variant-key", "cnn-default"],
)
def test_changing_a_value_retrains_exactly_the_models_it_defines(finished_demo, old, new, trained):
    jobs, runs = planned_after(finished_demo, lambda text: replace_once(text, old, new))
    assert {rule: runs[rule] for rule in runs if rule.startswith(("train_", "finetune_"))} == trained
    evaluated = {rule: runs.get(rule, set()) for rule in ("evaluate", "evaluate_sweep_point")}
    assert evaluated == {
        "evaluate": trained.get("train_cnn", set()),
        "evaluate_sweep_point": trained.get("train_sweep_point", set()),
    }
    assert "finetune_resnet18" not in jobs
