# What `snakemake --report` shows besides the figures and tables: the configuration the study ran with
# (Snakemake does not display config files), and a landing page that says which run produced the
# results, written from the run's own outputs rather than from the config `--report` is called with.


rule write_config:
    input:
        configfiles=config_files(),
    output:
        yaml=f"{RESULTS}/report/config.yaml",
        html=report(
            f"{RESULTS}/report/config.html",
            caption="../report/config.rst",
            category="9. Configuration",
            labels={"what": "configuration", "which": "this run"},
        ),
    log:
        f"{LOGS}/write_config.log",
    conda:
        "../../envs/report.yaml"
    params:
        merged=config_digest(),
        code=code_version("write_config.py"),
    script:
        "../scripts/write_config.py"


rule describe_run:
    input:
        metrics=runs(EVALUATED_RUNS["metrics"]),
        summaries=runs(TRAINED_RUNS["summaries"]),
        conv_stub=f"{RESULTS}/conv_stub/report.csv",
    output:
        f"{RESULTS}/report/landing.rst",
    log:
        f"{LOGS}/describe_run.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=MODELS,
        study=STUDY,
        code=code_version("describe_run.py"),
    script:
        "../scripts/describe_run.py"
