"""Snakemake itself, run as a user runs it, on a copy of the workflow in a temporary folder."""

import re
import shutil

import pandas as pd
import pytest
import yaml
from conftest import run_snakemake
from PIL import Image
from torchvision.datasets.utils import calculate_md5

from helpers import MODELS, REPO

WORKFLOW_FILES = ["Snakefile", "config.yaml", "workflow", "profiles", "envs"]
DEMO = ["--profile", "profiles/demo"]


def copy_workflow(destination):
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


def with_overrides(workflow_copy, overrides, demo=False):
    """--configfiles with an override file on top (--config passes nested values as strings)."""
    path = workflow_copy / "overrides.yaml"
    path.write_text(yaml.safe_dump(overrides))
    files = ["config.yaml", *(["profiles/demo/demo-config.yaml"] if demo else []), path.name]
    return ["--configfiles", *files]


def planned_jobs(output):
    """Job counts from a dry run's 'Job stats' table."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def test_demo_profile_pins_the_generators_md5(tmp_path):
    from cnnstudy.demo_data import write_demo_archive

    demo = yaml.safe_load((REPO / "profiles/demo/demo-config.yaml").read_text())["dataset"]
    archive = write_demo_archive(tmp_path / "demo.tgz", name=demo["name"], **demo["demo_archive"])
    assert calculate_md5(str(archive)) == demo["md5"]


def test_full_study_plans_every_stage(workflow_copy):
    jobs = planned_jobs(run_snakemake("-n", "--cores", "4", "--resources", "gpu=1", cwd=workflow_copy).stdout)
    assert jobs["train_cnn"] == 5 and jobs["finetune_resnet18"] == 2 and jobs["evaluate"] == 7
    assert jobs["download_dataset"] == jobs["prepare_dataset"] == jobs["download_weights"] == 1
    assert jobs["plot_confusion"] == jobs["plot_curves"] == jobs["plot_gradients"] == 7
    assert jobs["make_table"] == jobs["verify_conv_stub"] == 1


@pytest.mark.parametrize(
    "target, expected",
    [
        ("results/models/combined/checkpoint.pt", {"train_cnn": 1}),
        ("results/figures/confusion/combined.png", {"train_cnn": 1, "evaluate": 1, "plot_confusion": 1}),
        (
            "results/models/resnet18_bn_unfrozen/checkpoint.pt",
            {"finetune_resnet18": 1, "download_weights": 1},
        ),
    ],
)
def test_single_target_plans_only_its_chain(workflow_copy, target, expected):
    output = run_snakemake(target, "-n", "--cores", "4", "--resources", "gpu=1", cwd=workflow_copy).stdout
    data_stages = {"download_dataset": 1, "prepare_dataset": 1}
    assert planned_jobs(output) == {**data_stages, **expected}


def test_weights_placed_in_the_cache_by_hand_are_not_downloaded(tmp_path):
    workflow = copy_workflow(tmp_path)
    cache = workflow / "resources/torch/hub/checkpoints"
    cache.mkdir(parents=True)
    (cache / "resnet18-f37072fd.pth").write_bytes(b"placed by hand")
    target = "results/models/resnet18_bn_frozen/checkpoint.pt"
    output = run_snakemake(target, "-n", "--cores", "4", "--resources", "gpu=1", cwd=workflow).stdout
    assert "download_weights" not in planned_jobs(output) and planned_jobs(output)["finetune_resnet18"] == 1


def test_target_after_resources_is_the_documented_pitfall(workflow_copy):
    """--resources takes several values: a target after it is read as a resource (why the README puts it first)."""
    result = run_snakemake(
        "-n", "--cores", "4", "--resources", "gpu=1", "results/models/combined/checkpoint.pt",
        cwd=workflow_copy, check=False,
    )  # fmt: skip
    assert result.returncode != 0


def test_several_seeds_train_each_model_once_per_seed(workflow_copy):
    seeds = with_overrides(workflow_copy, {"seeds": [0, 1, 2]})
    output = run_snakemake("-n", "--cores", "4", *seeds, cwd=workflow_copy).stdout
    jobs = planned_jobs(output)
    assert jobs["train_cnn"] == 15 and jobs["finetune_resnet18"] == 6 and jobs["evaluate"] == 21
    assert "results/models/combined-seed2/checkpoint.pt" in output
    assert jobs["plot_confusion"] == 7  # figures show the first seed


@pytest.mark.parametrize(
    "override, named",
    [
        ("training={'epochs': 'many'}", "many"),
        ("cnn={'variants': {'vgg16': {}}}", "vgg16"),
        ("typo_key=1", "typo_key"),
    ],
)
def test_bad_config_stops_before_any_job(workflow_copy, override, named):
    result = run_snakemake("-n", "--cores", "1", "--config", override, cwd=workflow_copy, check=False)
    assert result.returncode != 0 and "Error validating config" in result.stdout and named in result.stdout


def test_lint_is_clean(workflow_copy):
    assert "Congratulations" in run_snakemake("--lint", cwd=workflow_copy).stdout


@pytest.fixture(scope="module")
def demo_run(workflow_copy):
    """The offline demo end to end (shortened epochs), then the HTML report."""
    shorter = with_overrides(
        workflow_copy, {"training": {"epochs": 4, "gradient_epochs": [1, 4]}, "transfer": {"training": {"epochs": 2}}},
        demo=True,
    )  # fmt: skip
    run = run_snakemake(*DEMO, *shorter, cwd=workflow_copy)
    run_snakemake(*DEMO, *shorter, "--report", "results/demo/report.html", cwd=workflow_copy)
    again = run_snakemake(*DEMO, *shorter, "-n", cwd=workflow_copy)
    return workflow_copy / "results" / "demo", run.stdout, again.stdout


def test_demo_runs_every_stage_offline(demo_run):
    results, output, _ = demo_run
    assert "downloading file://" in (results.parent.parent / "logs/demo/download_dataset.log").read_text()
    report = pd.read_csv(results / "conv_stub/report.csv")
    assert len(report) > 30 and report["passed"].all()
    for model in MODELS:
        for name in ("checkpoint.pt", "history.csv", "gradients.csv", "summary.json"):
            assert (results / "models" / model / name).stat().st_size > 0
        for name in ("metrics.json", "confusion.csv", "predictions.csv"):
            assert (results / "eval" / model / name).stat().st_size > 0
        for kind in ("confusion", "curves", "gradients"):
            with Image.open(results / "figures" / kind / f"{model}.png") as image:
                assert image.width >= 300 and image.height >= 300


def test_demo_table_and_figures(demo_run):
    results, _, _ = demo_run
    table = pd.read_csv(results / "tables/summary.csv")
    assert len(table) == len(MODELS)
    assert table["configuration"].str.contains("not pretrained").sum() == 2
    for name in ("dead_units", "comparison_accuracy", "comparison_curves", "comparison_transfer"):
        assert (results / "figures" / f"{name}.png").stat().st_size > 10_000
    assert "not pretrained" in (results / "tables/summary.md").read_text()


def test_demo_report_is_one_self_contained_page(demo_run):
    results, _, _ = demo_run
    html = (results / "report.html").read_text()
    assert len(html) > 100_000 and "summary.md" in html and "comparison_transfer.png" in html


def test_finished_demo_has_nothing_left_to_do(demo_run):
    _, _, dry_run = demo_run
    assert "Nothing to be done" in dry_run
