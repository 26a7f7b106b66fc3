"""Snakemake itself, run as a user runs it, on a copy of the workflow in a temporary folder."""

import base64
import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from conftest import run_snakemake
from PIL import Image
from torchvision.datasets.utils import calculate_md5

from cnnstudy.analysis.tables import percent
from helpers import MODELS, REPO, package_environment
from helpers.workflow import DEMO, copy_workflow, planned_jobs, with_overrides

DEMO_MODELS = [*MODELS[:5], "batchnorm_slow", *MODELS[5:]]  # the demo adds a sixth variant
SHORTER = {"training": {"epochs": 3, "gradient_epochs": [1, 3]}, "transfer": {"training": {"epochs": 2}}}
RESOURCES = ["--resources", "gpu=1"]
pytestmark = [pytest.mark.workflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


@pytest.mark.parametrize(
    "overlay", ["profiles/demo/demo-config.yaml", "profiles/smoke-full/smoke-config.yaml"]
)
def test_generated_archives_have_the_md5_their_profile_pins(tmp_path, overlay):
    from cnnstudy.data.demo_archive import write_demo_archive

    dataset = yaml.safe_load((REPO / overlay).read_text())["dataset"]
    archive = write_demo_archive(tmp_path / "demo.tgz", name=dataset["name"], **dataset["demo_archive"])
    assert calculate_md5(str(archive)) == dataset["md5"]


def test_full_study_plans_every_stage(workflow_copy):
    jobs = planned_jobs(run_snakemake("-n", "--cores", "4", *RESOURCES, cwd=workflow_copy).stdout)
    assert jobs["train_cnn"] == 5 and jobs["finetune_resnet18"] == 2 and jobs["evaluate"] == 7
    assert jobs["download_dataset"] == jobs["prepare_dataset"] == jobs["download_weights"] == 1
    assert jobs["plot_confusion"] == jobs["plot_curves"] == jobs["plot_gradients"] == 7
    assert jobs["make_table"] == jobs["verify_conv_stub"] == jobs["check_claims"] == 1
    assert "train_sweep_point" not in jobs  # sweeps are off in the study


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
    output = run_snakemake(target, "-n", "--cores", "4", *RESOURCES, cwd=workflow_copy).stdout
    data_stages = {"download_dataset": 1, "prepare_dataset": 1}
    assert planned_jobs(output) == {**data_stages, **expected}


def test_a_sixth_variant_and_one_grid_point_each_train_only_themselves(workflow_copy):
    extra = with_overrides(
        workflow_copy,
        {
            "cnn": {"variants": {"bn_lr1e4": {"batchnorm": True, "lr": 1.0e-4}}},
            "sweeps": {
                "lr_batch": {"model": "bn_lr1e4", "grid": {"lr": [1.0e-4, 1.0e-3], "batch_size": [64, 128]}}
            },
        },
    )
    variant = "results/figures/confusion/bn_lr1e4.png"
    jobs = planned_jobs(
        run_snakemake(variant, "-n", *extra, "--cores", "4", *RESOURCES, cwd=workflow_copy).stdout
    )
    assert jobs == {
        "download_dataset": 1,
        "prepare_dataset": 1,
        "train_cnn": 1,
        "evaluate": 1,
        "plot_confusion": 1,
    }
    point = "results/sweeps/lr_batch/lr~0.001/batch_size~64/seed0/confusion.png"
    jobs = planned_jobs(
        run_snakemake(point, "-n", *extra, "--cores", "4", *RESOURCES, cwd=workflow_copy).stdout
    )
    assert jobs == {
        "download_dataset": 1, "prepare_dataset": 1, "train_sweep_point": 1, "evaluate_sweep_point": 1,
        "plot_sweep_confusion": 1,
    }  # fmt: skip
    table = "results/tables/sweep_lr_batch.csv"
    output = run_snakemake(table, "-n", *extra, "--cores", "4", *RESOURCES, cwd=workflow_copy).stdout
    # the grid's four points, and the swept model as configured: the table's and figure's reference
    assert planned_jobs(output)["train_sweep_point"] == 4 and planned_jobs(output)["train_cnn"] == 1
    assert "results/models/bn_lr1e4/checkpoint.pt" in output
    for lr in ("0.0001", "0.001"):
        for batch in (64, 128):
            assert f"results/sweeps/lr_batch/lr~{lr}/batch_size~{batch}/seed0/checkpoint.pt" in output


def test_weights_placed_in_the_cache_by_hand_are_not_downloaded(tmp_path):
    workflow = copy_workflow(tmp_path)
    cache = workflow / "resources/torch/hub/checkpoints"
    cache.mkdir(parents=True)
    (cache / "resnet18-f37072fd.pth").write_bytes(b"placed by hand")  # verified by the job itself
    target = "results/models/resnet18_bn_frozen/checkpoint.pt"
    output = run_snakemake(target, "-n", "--cores", "4", *RESOURCES, cwd=workflow).stdout
    assert "download_weights" not in planned_jobs(output) and planned_jobs(output)["finetune_resnet18"] == 1


def test_target_after_resources_is_the_documented_pitfall(workflow_copy):
    """--resources takes several values: a target after it is read as a resource (why the README puts it first)."""
    result = run_snakemake(
        "-n", "--cores", "4", *RESOURCES, "results/models/combined/checkpoint.pt",
        cwd=workflow_copy, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "Building DAG" not in result.stdout  # refused before any planning
    assert "snakemake/resources.py" in result.stdout and "dictionary update sequence" in result.stdout


def test_a_target_written_after_forcerun_stops_before_any_job(workflow_copy):
    target = "results/demo/models/baseline/checkpoint.pt"
    result = run_snakemake(*DEMO, "--forcerun", "train_cnn", target, cwd=workflow_copy, check=False)
    assert result.returncode != 0 and f"--forcerun took {target} as files to force" in result.stdout
    assert f"--forcerun train_cnn -- {target}" in result.stdout  # the working form, spelled out
    assert not (workflow_copy / "results" / "demo" / "models").exists()  # nothing ran


def test_a_second_run_on_one_results_folder_stops_naming_the_first(workflow_copy):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from cnnstudy.base.locks import hold_results_folder; "
         "hold_results_folder('results/demo'); print('held', flush=True); time.sleep(120)"],
        cwd=workflow_copy, env=package_environment(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_snakemake(*DEMO, "results/demo/report/config.yaml", cwd=workflow_copy, check=False)
        assert result.returncode != 0
        assert f"another Snakemake run is using results/demo: PID {holder.pid} on" in result.stdout
        assert not (workflow_copy / "results/demo/report/config.yaml").exists()
    finally:
        holder.kill()
        holder.wait()
    run_snakemake(*DEMO, "results/demo/report/config.yaml", cwd=workflow_copy)  # released with its process


@pytest.mark.skipif(torch.cuda.is_available(), reason="the estimate is for machines without a GPU")
def test_full_size_training_on_the_cpu_stops_before_any_job_with_an_estimate(workflow_copy):
    result = run_snakemake(
        "results/models/baseline/checkpoint.pt", "--cores", "2", cwd=workflow_copy, check=False
    )
    assert result.returncode != 0 and "this plan trains 1 model(s) at 160 px on the CPU" in result.stdout
    hours = float(re.search(r"at least ([\d,]+) hours", result.stdout).group(1).replace(",", ""))
    assert hours > 5 and "`device: cpu`" in result.stdout  # the study's CNN: days, and how to go on
    assert not list(workflow_copy.glob("resources/**/imagenette2-160*"))  # nothing was downloaded


def test_a_demo_target_whose_overlay_dropped_the_demo_config_says_how_to_keep_it(workflow_copy):
    wide = {"cnn": {"variants": {"wide": {"channels": [32, 64, 128]}}}}
    target = "results/demo/tables/summary.md"
    dropped = with_overrides(workflow_copy, wide, name="mine.yaml")  # config.yaml mine.yaml: no demo overlay
    result = run_snakemake("-n", target, *DEMO, *dropped, cwd=workflow_copy, check=False)
    assert result.returncode != 0 and "profiles/demo/demo-config.yaml was dropped" in result.stdout
    kept = with_overrides(workflow_copy, wide, demo=True, name="mine.yaml")  # the form the message gives
    planned = planned_jobs(run_snakemake("-n", target, *DEMO, *kept, cwd=workflow_copy).stdout)
    assert planned.get("train_cnn", 0) >= 1


def test_seed_folders_depend_on_the_seed_value_not_its_position(workflow_copy):
    seeds = with_overrides(workflow_copy, {"seeds": [3, 0, 1]})
    output = run_snakemake("-n", "--cores", "4", *seeds, cwd=workflow_copy).stdout
    jobs = planned_jobs(output)
    assert jobs["train_cnn"] == 15 and jobs["finetune_resnet18"] == 6 and jobs["evaluate"] == 21
    assert "results/models/combined/checkpoint.pt" in output and "results/models/combined-seed3/" in output
    assert "combined-seed0" not in output and jobs["plot_confusion"] == 7  # one figure per model, all seeds


@pytest.mark.parametrize(
    "override, named",
    [
        ("training={'epochs': 'many'}", "many"),
        ("cnn={'variants': {'bad-name': {}}}", "bad-name"),
        ("typo_key=1", "typo_key"),
    ],
)
def test_bad_config_stops_before_any_job(workflow_copy, override, named):
    result = run_snakemake("-n", "--cores", "1", "--config", override, cwd=workflow_copy, check=False)
    assert result.returncode != 0 and "Error validating config" in result.stdout and named in result.stdout


def test_a_demo_profile_with_a_remote_archive_is_refused_with_a_reason(workflow_copy):
    remote = with_overrides(workflow_copy, {"dataset": {"url": "https://example.org/x.tgz"}}, demo=True)
    result = run_snakemake(*DEMO, *remote, "-n", cwd=workflow_copy, check=False)
    assert result.returncode != 0 and "the demo profiles generate a local archive" in result.stdout


def test_lint_is_clean(workflow_copy):
    assert "Congratulations" in run_snakemake("--lint", cwd=workflow_copy).stdout


@pytest.fixture(scope="module")
def demo_run(workflow_copy):
    """The offline demo end to end (fewer epochs), then the HTML report."""
    shorter = with_overrides(workflow_copy, SHORTER, demo=True)
    run = run_snakemake(*DEMO, *shorter, cwd=workflow_copy)
    run_snakemake(*DEMO, *shorter, "--report", "results/demo/report.html", cwd=workflow_copy)
    again = run_snakemake(*DEMO, *shorter, "-n", cwd=workflow_copy)
    return workflow_copy / "results" / "demo", run.stdout, again.stdout, shorter


def test_demo_runs_every_stage_offline_for_every_model(demo_run):
    results, _, _, _ = demo_run
    assert "downloading file://" in (results.parent.parent / "logs/demo/download_dataset.log").read_text()
    report = pd.read_csv(results / "conv_stub/report.csv")
    assert len(report) > 30 and report["passed"].all()
    for model in DEMO_MODELS:
        for name in ("checkpoint.pt", "history.csv", "gradients.csv", "summary.json"):
            assert (results / "models" / model / name).stat().st_size > 0
        metrics = json.loads((results / "eval" / model / "metrics.json").read_text())
        assert (metrics["model"], metrics["seed"]) == (model, 0)
        assert len(metrics["provenance"]["data_sha256"]["test"]) == 64
        for kind in ("confusion", "curves", "gradients"):
            with Image.open(results / "figures" / kind / f"{model}.png") as image:
                assert image.width >= 900 and image.height >= 500


def test_demo_tables_list_every_model(demo_run):
    results, _, _, _ = demo_run
    table = pd.read_csv(results / "tables/summary.csv")
    assert table["model"].tolist() == DEMO_MODELS and (table["seeds"] == 1).all()
    assert table["configuration"].str.contains("not pretrained").sum() == 2
    assert not table["comparable_with_study"].any()
    per_class = pd.read_csv(results / "tables/per_class.csv")
    assert set(per_class["model"]) == set(DEMO_MODELS) and (per_class["seeds"] == 1).all()
    comparisons = pd.read_csv(results / "tables/comparisons.csv")
    assert {"batchnorm_slow"} <= set(comparisons["model_a"]) | set(comparisons["model_b"])
    assert set(comparisons["seed"].astype(str)) == {"0"}
    claims = pd.read_csv(results / "tables/claims.csv")
    assert (claims["claim_verdict"] == "not applicable").all()  # synthetic data is not the study's
    for row in table.itertuples():  # the table's numbers are the predictions' numbers
        predictions = pd.read_csv(results / "eval" / row.model / "predictions.csv")
        assert len(predictions) == 300
        assert row.test_accuracy == pytest.approx((predictions["true"] == predictions["predicted"]).mean())
    for name in (
        "dead_units",
        "comparison_accuracy",
        "comparison_curves",
        "comparison_transfer",
        "comparison_effects",
    ):
        assert (results / "figures" / f"{name}.png").stat().st_size > 10_000


def test_demo_sweep_table_has_one_row_per_grid_point_matching_its_metrics(demo_run):
    results, _, _, _ = demo_run
    table = pd.read_csv(results / "tables/sweep_lr_demo.csv")
    assert table["lr"].tolist() == [3.0e-4, 3.0e-3] and (table["seeds"] == 1).all()
    for row in table.itertuples():
        metrics = results / "sweeps" / "lr_demo" / f"lr~{row.lr:g}" / "seed0" / "metrics.json"
        assert row.test_accuracy == json.loads(metrics.read_text())["accuracy"]
    assert (results / "figures" / "sweep_lr_demo.png").exists()


def report_entries(html):
    """(label text, data URI) of every result file embedded in Snakemake's report."""
    return re.findall(r'"data:([^;]+);charset=[^;]+;filename=([^;]+);base64,([A-Za-z0-9+/=]+)"', html)


def test_demo_report_shows_the_tables_inline_and_describes_this_run(demo_run):
    results, _, _, _ = demo_run
    html = (results / "report.html").read_text()
    entries = {filename: (mime, data) for mime, filename, data in report_entries(html)}
    mime, data = entries["summary.html"]
    assert mime == "text/html"
    table = base64.b64decode(data).decode()
    first = pd.read_csv(results / "tables/summary.csv").iloc[0]
    assert "<table" in table and percent(first["test_accuracy"]).replace(" ", "\u00a0") in table  # unbroken
    assert {"claims.html", "comparisons.html", "per_class.html", "report.html", "config.html"} <= set(entries)
    assert "imagenette-demo" in html and "not pretrained" in html and "Results of this run" in html


def test_every_report_entry_has_a_label_not_a_path(demo_run):
    results, _, _, _ = demo_run
    html = (results / "report.html").read_text()
    labels = re.findall(r'"labels":\s*(\{[^{}]*\})', html)
    assert len(labels) >= 25
    for label in labels:
        values = json.loads(label).values()
        assert values and not any(
            "/" in value or value.endswith((".png", ".md", ".html")) for value in values
        )


def test_finished_demo_has_nothing_left_to_do_and_no_resume_state(demo_run):
    results, _, dry_run, _ = demo_run
    assert "Nothing to be done" in dry_run
    left = [path for path in results.glob("**/resume/*") if path.name != "lock"]
    assert left == []  # epoch states go with the finished job; its hard links once the run succeeded


TRAINING_RULES = {"train_cnn", "finetune_resnet18", "train_sweep_point"}


def replanned_after(demo_run, module, edit="\nEDITED = 1\n", overrides=None):
    """Rules a dry run plans after appending ``edit`` to ``module`` of the finished demo (undone after)."""
    results, _, _, configs = demo_run
    workflow = results.parent.parent
    path = workflow / "workflow" / "cnnstudy" / module
    original = path.read_text()
    extra = with_overrides(workflow, overrides, demo=True, name="more.yaml")[-1:] if overrides else []
    try:
        path.write_text(original + edit)
        return set(planned_jobs(run_snakemake(*DEMO, *configs, *extra, "-n", cwd=workflow).stdout))
    finally:
        path.write_text(original)


def test_editing_the_figures_code_replans_only_the_figures(demo_run):
    planned = replanned_after(demo_run, "figures/per_model.py")
    assert {"plot_confusion", "plot_curves", "plot_gradients", "plot_dead_units"} <= planned
    assert all(
        rule.startswith("plot_") or rule in {"check_claims", "make_sweep_table", "inspect_model", "all"}
        for rule in planned
    )


def test_editing_the_convolution_replans_only_its_check(demo_run):
    assert replanned_after(demo_run, "conv/stub.py") == {"verify_conv_stub", "describe_run", "all"}


@pytest.mark.parametrize("module", ["train/loop.py", "train/models.py"])
def test_editing_the_training_code_replans_training_and_everything_after(demo_run, module):
    planned = replanned_after(demo_run, module)
    assert TRAINING_RULES | {"evaluate", "make_table", "plot_curves", "check_claims"} <= planned
    assert not {"prepare_dataset", "verify_conv_stub", "download_dataset"} & planned


@pytest.mark.parametrize("module", ["base/files.py", "base/jobs.py", "base/locks.py", "base/provenance.py"])
def test_editing_a_result_neutral_helper_replans_nothing(demo_run, module):
    assert replanned_after(demo_run, module) == set()


def test_comments_and_docstrings_replan_nothing(demo_run):
    assert replanned_after(demo_run, "train/loop.py", edit="\n# a comment about why\n") == set()


def test_touch_marks_a_finished_run_current_after_a_result_neutral_code_change(demo_run):
    """CHANGELOG's one-time command: after a change that moves code without changing any result,
    `--touch` makes a finished run current without running a job, and a later real change replans."""
    results, _, _, configs = demo_run
    workflow = results.parent.parent
    loop = workflow / "workflow" / "cnnstudy" / "train" / "loop.py"
    original = loop.read_text()
    dry_run = [*DEMO, *configs, "-n"]
    try:
        loop.write_text(original + "\nMOVED = 1\n")
        assert TRAINING_RULES <= set(planned_jobs(run_snakemake(*dry_run, cwd=workflow).stdout))
        run_snakemake(*DEMO, *configs, "--touch", cwd=workflow)
        assert planned_jobs(run_snakemake(*dry_run, cwd=workflow).stdout) == {}
    finally:
        loop.write_text(original)
    assert TRAINING_RULES <= set(planned_jobs(run_snakemake(*dry_run, cwd=workflow).stdout))
    run_snakemake(*DEMO, *configs, "--touch", cwd=workflow)  # the demo as the other tests expect it
    assert planned_jobs(run_snakemake(*dry_run, cwd=workflow).stdout) == {}


@pytest.mark.parametrize(
    "setting", [{"training": {"eval_batch_size": 7}}, {"training": {"compile": True}}, {"device": "auto"}]
)
def test_run_settings_retrain_nothing(demo_run, setting):
    planned = replanned_after(demo_run, "base/files.py", edit="", overrides=setting)
    assert planned <= {"write_config", "all"}


def test_an_unreachable_dataset_says_how_to_work_offline_on_the_console(tmp_path):
    workflow = copy_workflow(tmp_path)
    offline = with_overrides(workflow, {"dataset": {"url": "http://127.0.0.1:9/imagenette2-160.tgz"}})
    result = run_snakemake("results/data/train.pt", "--cores", "1", *offline, cwd=workflow, check=False)
    assert result.returncode != 0
    assert "ERROR: cannot download http://127.0.0.1:9/imagenette2-160.tgz" in result.stdout  # the log, shown
    assert "copy the archive (imagenette2-160.tgz, md5 e793b78cc4c9e9a4ccc0c1155377a412)" in result.stdout
    assert "Traceback" not in result.stdout


@pytest.fixture(scope="module")
def second_seed(demo_run, tmp_path_factory):
    """The finished demo (a copy: file times and Snakemake's records kept), with seed 2 added."""
    workflow = tmp_path_factory.mktemp("second-seed") / "workflow"
    shutil.copytree(demo_run[0].parent.parent, workflow, symlinks=True)
    two_seeds = with_overrides(workflow, {**SHORTER, "seeds": [0, 2]}, demo=True)
    targets = ["results/demo/figures/curves/baseline.png", "results/demo/figures/confusion/baseline.png"]
    plan = run_snakemake(*targets, *DEMO, *two_seeds, "-n", cwd=workflow).stdout
    run = run_snakemake(*targets, *DEMO, *two_seeds, cwd=workflow).stdout
    return workflow / "results" / "demo", plan, run


def test_adding_a_seed_trains_that_seed_alone_in_a_folder_named_by_its_value(second_seed):
    results, plan, _ = second_seed
    assert planned_jobs(plan) == {"train_cnn": 1, "evaluate": 1, "plot_curves": 1, "plot_confusion": 1}
    assert "results/demo/models/baseline-seed2/checkpoint.pt" in plan
    metrics = json.loads((results / "eval" / "baseline-seed2" / "metrics.json").read_text())
    assert (metrics["model"], metrics["seed"]) == ("baseline", 2)


def test_per_model_figures_pool_every_seed(second_seed):
    from cnnstudy.figures.per_model import draw_confusion, load_evaluations, pooled_confusion

    results, _, _ = second_seed
    runs = [results / "eval" / folder for folder in ("baseline", "baseline-seed2")]
    confusions, metrics = [run / "confusion.csv" for run in runs], [run / "metrics.json" for run in runs]
    pooled = pooled_confusion(load_evaluations(confusions, metrics)["baseline"])
    expected = sum(pd.read_csv(path, index_col=0) for path in confusions)
    assert (pooled.to_numpy() == expected.to_numpy()).all() and pooled.to_numpy().sum() == 2 * 300
    assert "pooled over 2 seeds" in draw_confusion(confusions, metrics).get_suptitle()
    drawn = (results / "figures" / "confusion" / "baseline.png").stat().st_mtime
    assert drawn > metrics[1].stat().st_mtime  # redrawn after the second seed was evaluated
