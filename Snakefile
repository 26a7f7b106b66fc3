# Reproduce the CNN study on Imagenette end to end: `snakemake --cores 4 --resources gpu=1`.
# The rules live in workflow/rules/, one file per stage; the code they run lives in workflow/cnnstudy/.
# The oldest Snakemake this workflow has run with (the demo and its report, offline); every directive an
# older one could not parse lives in the included files, so that this line gets to say so.
from snakemake.utils import min_version

min_version("8.19.3")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/conv_stub.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/inspect.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/report.smk"


# The report's landing page describes the run that produced the results (rule describe_run);
# before the first run, a general description of the study.
report: landing_page()


# Before any job: a target read as a --forcerun value, another run on this results folder, or weeks of
# training on a CPU stop here.
onstart:
    refuse_paths_read_as_rules(workflow.dag_settings)
    hold_results_folder(RESULTS)
    refuse_weeks_on_the_cpu(workflow.dag)


onsuccess:
    forget_finished_runs()


# After a failure Snakemake lets the running jobs finish, and their output buries the failure: repeat
# each failed job, its log and the line that says why as the last thing on the console.
onerror:
    from cnnstudy.base.failures import repeat_failures

    repeat_failures(log)


rule all:
    default_target: True
    input:
        get_final_output(),
