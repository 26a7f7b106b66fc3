# Stage 7: the results table, the per-class table, the study's claims checked, and the sweeps.
# Every table is written as CSV (for tools), Markdown (for people) and HTML (shown in the report).


rule make_table:
    input:
        **{key: runs(path) for key, path in TRAINED_RUNS.items()},
        metrics=runs(EVALUATED_RUNS["metrics"]),
    output:
        **table_outputs(
            "summary", "results table", "every model", "summary", "5. Comparison"
        ),
    log:
        f"{LOGS}/make_table.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=MODELS,
        study=STUDY,
        code=code_version("make_table.py"),
    script:
        "../scripts/make_table.py"


rule make_per_class_table:
    input:
        metrics=runs(EVALUATED_RUNS["metrics"]),
    output:
        **table_outputs(
            "per_class",
            "precision and recall per class",
            "every model",
            "per_class",
            "4. Evaluation",
            subcategory="Precision and recall",
        ),
    log:
        f"{LOGS}/make_per_class_table.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=MODELS,
        study=STUDY,
        code=code_version("make_per_class_table.py"),
    script:
        "../scripts/make_per_class_table.py"


rule check_claims:
    input:
        metrics=runs(EVALUATED_RUNS["metrics"]),
        predictions=runs(f"{EVALUATED}/{EVALUATION_OUTPUTS['predictions']}"),
        histories=runs(TRAINED_RUNS["histories"]),
    output:
        **prefixed(
            "comparisons",
            table_outputs(
                "comparisons",
                "paired comparisons",
                "every pair of models",
                "comparisons",
                "7. Claims",
            ),
        ),
        **prefixed(
            "claims",
            table_outputs(
                "claims", "verdicts", "the study's claims", "claims", "7. Claims"
            ),
        ),
        figure=report(
            f"{FIGURES}/comparison_effects.png",
            caption="../report/comparison_effects.rst",
            category="7. Claims",
            labels={
                "what": "forest plot of the effects",
                "which": "the claims' pairs",
            },
        ),
    log:
        f"{LOGS}/check_claims.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=MODELS,
        study=STUDY,
        code=code_version("check_claims.py"),
    script:
        "../scripts/check_claims.py"


rule make_sweep_table:
    input:
        metrics=lambda wildcards: sweep_runs(
            f"{SWEEP_RUN}/metrics.json", wildcards.sweep
        ),
        summaries=lambda wildcards: sweep_runs(
            f"{SWEEP_RUN}/summary.json", wildcards.sweep
        ),
        # the swept model as configured, for reference
        base_metrics=lambda wildcards: runs(
            EVALUATED_RUNS["metrics"], [config["sweeps"][wildcards.sweep]["model"]]
        ),
        base_summaries=lambda wildcards: runs(
            TRAINED_RUNS["summaries"], [config["sweeps"][wildcards.sweep]["model"]]
        ),
        # Not read by the script: asking for the sweep's table builds its points' confusion figures too
        # (rule plot_sweep_confusion), as `snakemake` with no target does. Not ancient(), though a
        # redrawn figure then reruns the table: Snakemake 9 skips the table's own reasons (a changed
        # code fingerprint) whenever a job it depends on reruns through an ancient input only.
        confusion_figures=lambda wildcards: sweep_runs(
            f"{SWEEP_RUN}/confusion.png", wildcards.sweep
        ),
    output:
        csv=f"{TABLES}/sweep_{{sweep}}.csv",
        markdown=f"{TABLES}/sweep_{{sweep}}.md",
        html=report(
            f"{TABLES}/sweep_{{sweep}}.html",
            caption="../report/sweep_table.rst",
            category="8. Sweeps",
            labels={"what": "table", "which": "sweep {sweep}"},
        ),
        figure=report(
            f"{FIGURES}/sweep_{{sweep}}.png",
            caption="../report/sweep_figure.rst",
            category="8. Sweeps",
            labels={"what": "figure", "which": "sweep {sweep}"},
        ),
    log:
        f"{LOGS}/make_sweep_table/{{sweep}}.log",
    conda:
        "../../envs/report.yaml"
    params:
        grid=lambda wildcards: config["sweeps"][wildcards.sweep],
        code=code_version("make_sweep_table.py"),
    script:
        "../scripts/make_sweep_table.py"
