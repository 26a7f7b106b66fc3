"""A failed run ends with each failed job, its log and the line that says why, read back from Snakemake's
log and the jobs' own logs."""

import pytest

from cnnstudy.base.failures import cause, failed_jobs, failure_summary
from helpers.workflow import copy_workflow, with_overrides

STUDY_ERROR = (
    "ERROR: refused to load results/demo/models/baseline/checkpoint.pt: it holds objects other than "
    "tensors and plain values, and loading it could run code."
)
OUT_OF_MEMORY = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
PEAK = "2026-12-02 05:46:55,555 INFO cnnstudy.base.jobs: peak memory (ru_maxrss): 621 MB"

# The jobs' logs, as base.jobs writes them: a StudyError; a chained traceback; a job killed mid-epoch.
JOB_LOGS = {
    "logs/demo/evaluate/baseline.log": f"{STUDY_ERROR}\n{PEAK}\n",
    "logs/demo/train_cnn/dropout.log": f"""\
2026-12-02 05:40:01,000 INFO cnnstudy.train.loop: epoch 1/20: val_accuracy 0.21
Traceback (most recent call last):
  File "loop.py", line 10, in step
    raise RuntimeError("first error")
RuntimeError: first error

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "train.py", line 5, in <module>
    train()
{OUT_OF_MEMORY}
{PEAK}
""",
    "logs/demo/train_cnn/combined.log": "2026-12-02 05:40:01,000 INFO cnnstudy.train.loop: epoch 1/20\n",
}


def job_block(rule, jobid, log, wildcards):
    return f"""\
[Wed Dec  2 05:46:51 2026]
localrule {rule}:
    input: results/demo/models/{wildcards}/checkpoint.pt
    output: results/demo/eval/{wildcards}/metrics.json
    log: {log}
    jobid: {jobid}
    reason: Updated input files
    wildcards: model={wildcards}, seed_suffix=
    resources: tmpdir=/tmp
"""


def error_block(rule, jobid, log, ended="returned non-zero exit status 1."):
    """Snakemake's report of a failed job, with the job's log shown (show-failed-logs)."""
    return f"""\
RuleException:
CalledProcessError in file "/w/workflow/rules/x.smk", line 23:
Command 'set -euo pipefail;  python /w/.snakemake/scripts/tmp.x.py' {ended}
[Wed Dec  2 05:46:56 2026]
Error in rule {rule}:
    message: None
    jobid: {jobid}
    input: results/demo/models/x/checkpoint.pt
    output: results/demo/eval/x/metrics.json
    log: {log} (check log file(s) for error details)
Logfile {log}:
================================================================================
{JOB_LOGS.get(log, "")}================================================================================
"""


def snakemake_log(*blocks):
    return (
        "Building DAG of jobs...\n"
        + "".join(blocks)
        + (
            "Shutting down, this might take some time.\n"
            "Exiting because a job execution failed. Look above for error messages\n"
        )
    )


@pytest.fixture
def failed_run(tmp_path):
    """A working directory after a --keep-going run in which three jobs failed: (Snakemake's log, dir)."""
    for path, text in JOB_LOGS.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    evaluate, dropout, combined = JOB_LOGS
    text = snakemake_log(
        job_block("evaluate", 14, evaluate, "baseline"),
        job_block("train_cnn", 3, dropout, "dropout"),
        job_block("train_cnn", 5, combined, "combined"),
        error_block("evaluate", 14, evaluate),
        error_block("train_cnn", 3, dropout),
        "[Wed Dec  2 05:47:10 2026]\nFinished jobid: 7 (Rule: plot_curves)\n",
        error_block("train_cnn", 5, combined, ended="died with <Signals.SIGKILL: 9>."),
    )
    log = tmp_path / ".snakemake" / "log" / "2026-12-02T054647.snakemake.log"
    log.parent.mkdir(parents=True)
    log.write_text(text)
    return log, tmp_path


def test_each_failed_job_is_repeated_with_its_log_and_the_line_that_says_why(failed_run):
    log, workdir = failed_run

    summary = failure_summary([str(log)], workdir).splitlines()

    assert summary[0] == "The run stopped: 3 jobs failed (repeated here from above)."
    assert summary[1:7] == [
        "  rule evaluate (model=baseline, seed_suffix=), log: logs/demo/evaluate/baseline.log",
        f"    {STUDY_ERROR}",
        "  rule train_cnn (model=dropout, seed_suffix=), log: logs/demo/train_cnn/dropout.log",
        f"    {OUT_OF_MEMORY}",  # the exception that ended the job, not the one that caused it
        "  rule train_cnn (model=combined, seed_suffix=), log: logs/demo/train_cnn/combined.log",
        "    no error line in its log (the job's process died with <Signals.SIGKILL: 9>); "
        "the console above may show more",
    ]
    assert summary[-1].startswith("Fix the cause and run the same command again")


def test_snakemake_8_passes_one_path_and_9_a_list(failed_run):
    log, workdir = failed_run
    assert failure_summary(log, workdir) == failure_summary([log], workdir) != ""
    assert failure_summary([], workdir) == failure_summary(None, workdir) == ""


def test_a_run_without_a_failed_job_repeats_nothing(tmp_path):
    log = tmp_path / "snakemake.log"
    log.write_text(job_block("evaluate", 1, "logs/x.log", "baseline") + "Finished jobid: 1\n")
    assert failure_summary(log, tmp_path) == ""
    assert failure_summary(tmp_path / "missing.log", tmp_path) == ""


def test_a_retried_job_is_listed_once_with_its_last_failure():
    text = snakemake_log(
        job_block("evaluate", 14, "logs/a.log", "baseline"),
        error_block("evaluate", 14, "logs/a.log"),
        error_block("evaluate", 14, "logs/a.log", ended="died with <Signals.SIGKILL: 9>."),
    )
    (failure,) = failed_jobs(text)
    assert failure.logs == ["logs/a.log"] and failure.exit == "died with <Signals.SIGKILL: 9>"


def failure_summary_of(text, workdir):
    log = workdir / "snakemake.log"
    log.write_text(text)
    return failure_summary(log, workdir).splitlines()


def test_a_job_with_several_logs_and_one_without_a_log(tmp_path):
    (tmp_path / "b.log").write_text(f"{STUDY_ERROR}\n")
    text = snakemake_log(
        error_block("make_table", 2, "a.log, b.log"),
        error_block("all", 0, "").replace("    log:  (check log file(s) for error details)\n", ""),
    )
    summary = failure_summary_of(text, tmp_path)
    assert summary[1:5] == [
        "  rule make_table, log: a.log, b.log",
        f"    {STUDY_ERROR}",  # from the log that has one (a.log does not exist)
        "  rule all, log: none",
        "    the rule has no log: its error is on the console above",
    ]


def test_the_cause_is_the_last_error_line_of_any_kind(tmp_path):
    log = tmp_path / "job.log"
    logged = "2026-12-02 05:40:01,000 ERROR cnnstudy.base.devices: no GPU became free in 60 min"
    log.write_text(f"ERROR: an earlier problem\n{logged}\n{PEAK}\n")
    assert cause(log) == logged
    log.write_text("x" * 10 + "\nValueError: " + "v" * 2000 + "\n")
    assert cause(log).startswith("ValueError: vvv") and len(cause(log)) == 600
    log.write_text("  File 'a.py', line 3\n    raise ValueError(x)\n")  # code lines are not causes
    assert cause(log) is None
    assert cause(tmp_path / "missing.log") is None


@pytest.mark.workflow
@pytest.mark.slow
def test_a_failed_run_ends_with_its_cause_on_the_console(tmp_path):
    from conftest import run_snakemake

    workflow = copy_workflow(tmp_path)
    offline = with_overrides(workflow, {"dataset": {"url": "http://127.0.0.1:9/imagenette2-160.tgz"}})
    result = run_snakemake("results/data/train.pt", "--cores", "1", *offline, cwd=workflow, check=False)

    assert result.returncode != 0
    tail = result.stdout.split("Exiting because a job execution failed")[-1].splitlines()
    assert tail[1] == "The run stopped: 1 job failed (repeated here from above)."
    assert tail[2].startswith("  rule download_dataset") and "log: logs/download_dataset" in tail[2]
    assert tail[3].startswith("    ERROR: cannot download http://127.0.0.1:9/imagenette2-160.tgz")
