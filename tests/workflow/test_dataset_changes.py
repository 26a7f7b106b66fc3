"""Changing the dataset on a finished demo: a failed change leaves the prepared data alone, and split sizes
the prepared data cannot serve stop the workflow when it is parsed, before any output is deleted."""

import json
import re

import pytest
import yaml
from conftest import run_snakemake

from helpers import REPO
from helpers.workflow import DEMO, planned_jobs, with_overrides

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

DEMO_DATASET = yaml.safe_load((REPO / "profiles/demo/demo-config.yaml").read_text())["dataset"]
WRONG_MD5 = "0" * 32


def snapshot(folder):
    """Every file under ``folder``: its modification time and size."""
    return {
        path.relative_to(folder): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_the_demo_keeps_its_data_under_the_archives_md5(finished_demo):
    workflow, _ = finished_demo
    md5 = DEMO_DATASET["md5"]
    dataset = workflow / "resources/datasets/imagenette-demo" / md5
    assert len(list((dataset / "train").iterdir())) == 10 and (dataset / "val").is_dir()
    assert (workflow / "resources/archives" / md5 / "imagenette-demo.tgz").is_file()
    counts = json.loads((workflow / "results/demo/data/split_counts.json").read_text())
    assert counts["dataset"]["archive_md5"] == md5 and counts["dataset"]["name"] == "imagenette-demo"
    assert counts["images"] == {"train": 800, "val": 200, "test": 300}


def test_a_wrong_md5_fails_and_the_right_one_again_finds_everything_current(finished_demo):
    """The failing run asks for the data only: with the whole study as its target, a config-only job
    (write_config) could run beside the failing download and be planned again after the revert."""
    workflow, configs = finished_demo
    dataset = workflow / "resources/datasets/imagenette-demo"
    data, archives = workflow / "results/demo/data", workflow / "resources/archives"
    before = {folder: snapshot(folder) for folder in (dataset, data, archives)}
    wrong = with_overrides(workflow, {"dataset": {"md5": WRONG_MD5}}, demo=True, name="wrong-md5.yaml")
    target = "results/demo/data/manifest.csv"
    assert planned_jobs(run_snakemake(target, *DEMO, *configs, wrong[-1], "-n", cwd=workflow).stdout) == {
        "download_dataset": 1,
        "prepare_dataset": 1,
    }
    result = run_snakemake(target, *DEMO, *configs, wrong[-1], cwd=workflow, check=False)
    assert result.returncode != 0
    archive = "/resources/demo/imagenette-demo.tgz"
    assert re.search(rf"checksum mismatch for file://\S*{archive}: expected md5 {WRONG_MD5}", result.stdout)
    assert (
        f"got {DEMO_DATASET['md5']}" in result.stdout
        and "the data prepared from another md5 are kept" in result.stdout
    )
    assert "Traceback" not in result.stdout
    assert {folder: snapshot(folder) for folder in before} == before  # nothing added, changed or deleted
    assert not (dataset / WRONG_MD5).exists() and not (archives / WRONG_MD5).exists()
    again = run_snakemake(*DEMO, *configs, "-n", cwd=workflow).stdout
    assert "Nothing to be done" in again and planned_jobs(again) == {}


def test_a_batch_or_probe_larger_than_its_split_stops_before_any_job(finished_demo):
    workflow, configs = finished_demo
    run = workflow / "results/demo/models/batchnorm_slow"
    before = snapshot(run)
    too_large = with_overrides(
        workflow,
        {"cnn": {"variants": {"batchnorm_slow": {"probe_size": 500, "batch_size": 801}}}},
        demo=True,
        name="too-large.yaml",
    )
    result = run_snakemake(*DEMO, *configs, too_large[-1], cwd=workflow, check=False)
    assert result.returncode != 0
    assert "Error validating config against the prepared data (2 problems)" in result.stdout
    assert "cnn.variants.batchnorm_slow.batch_size: 801 exceeds the 800 training images" in result.stdout
    assert "cnn.variants.batchnorm_slow.probe_size: 500 exceeds the 200 validation images" in result.stdout
    assert snapshot(run) == before  # stopped when parsed: the finished model was not deleted
