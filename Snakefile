# Reproduce the CNN study on Imagenette end to end: `snakemake --cores 4 --resources gpu=1`.
# The rules live in workflow/rules/, one file per stage; the code they run lives in workflow/cnnstudy/.


configfile: "config.yaml"


# On a workstation `--resources gpu=N` caps concurrent GPU jobs; on a cluster the scheduler hands out
# GPUs, so Snakemake must not tally them across submissions.
resource_scopes:
    gpu="local",


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/conv_stub.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/report.smk"


# The report's landing page describes the run that produced the results (rule describe_run);
# before the first run, a general description of the study.
report: landing_page()


onsuccess:
    forget_finished_runs()


rule all:
    default_target: True
    input:
        get_final_output(),
