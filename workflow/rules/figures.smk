# Stage 6: figures. Each figure is its own rule, so asking for one builds only the models it shows.
# With several seeds a figure shows every seed: pooled counts, or the mean and its spread.


rule plot_confusion:
    input:
        **{key: model_runs(path) for key, path in EVALUATED_RUNS.items()},
    output:
        per_model_report(
            f"{FIGURES}/confusion/{{model}}.png",
            "Confusion matrices",
            "confusion matrix",
            category="4. Evaluation",
        ),
    log:
        f"{LOGS}/plot_confusion/{{model}}.log",
    conda:
        "../../envs/report.yaml"
    params:
        code=code_version("plot_confusion.py"),
    script:
        "../scripts/plot_confusion.py"


rule plot_curves:
    input:
        **{key: model_runs(path) for key, path in TRAINED_RUNS.items()},
    output:
        per_model_report(
            f"{FIGURES}/curves/{{model}}.png", "Learning curves", "learning curves"
        ),
    log:
        f"{LOGS}/plot_curves/{{model}}.log",
    conda:
        "../../envs/report.yaml"
    params:
        code=code_version("plot_curves.py"),
    script:
        "../scripts/plot_curves.py"


rule plot_gradients:
    input:  # one seed's gradients: the lowest configured seed
        gradients=f"{RESULTS}/models/{{model}}{seed_suffix(min(SEEDS))}/gradients.csv",
        summary=f"{RESULTS}/models/{{model}}{seed_suffix(min(SEEDS))}/summary.json",
    output:
        per_model_report(
            f"{FIGURES}/gradients/{{model}}.png",
            "Gradient distributions",
            "gradient distributions",
        ),
    log:
        f"{LOGS}/plot_gradients/{{model}}.log",
    conda:
        "../../envs/report.yaml"
    params:
        code=code_version("plot_gradients.py"),
    script:
        "../scripts/plot_gradients.py"


rule plot_dead_units:
    input:
        **{key: runs(path, CNN_MODELS) for key, path in TRAINED_RUNS.items()},
    output:
        report(
            f"{FIGURES}/dead_units.png",
            caption="../report/dead_units.rst",
            category="2. Training",
            subcategory="Dead ReLU units",
            labels={"what": "dead ReLU units", "which": "every CNN variant"},
        ),
    log:
        f"{LOGS}/plot_dead_units.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=CNN_MODELS,
        code=code_version("plot_dead_units.py"),
    script:
        "../scripts/plot_dead_units.py"


rule plot_comparison_accuracy:
    input:
        metrics=runs(EVALUATED_RUNS["metrics"]),
    output:
        report(
            f"{FIGURES}/comparison_accuracy.png",
            caption="../report/comparison_accuracy.rst",
            category="5. Comparison",
            labels={"what": "test accuracy", "which": "every model"},
        ),
    log:
        f"{LOGS}/plot_comparison_accuracy.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=MODELS,
        study=STUDY,
        code=code_version("plot_comparison_accuracy.py"),
    script:
        "../scripts/plot_comparison_accuracy.py"


rule plot_comparison_curves:
    input:
        **{key: runs(path) for key, path in TRAINED_RUNS.items()},
    output:
        report(
            f"{FIGURES}/comparison_curves.png",
            caption="../report/comparison_curves.rst",
            category="5. Comparison",
            labels={"what": "validation curves", "which": "every model"},
        ),
    log:
        f"{LOGS}/plot_comparison_curves.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=MODELS,
        code=code_version("plot_comparison_curves.py"),
    script:
        "../scripts/plot_comparison_curves.py"


TRANSFER_COMPARED = ["combined"] + TRANSFER_MODELS


rule plot_comparison_transfer:
    input:
        **{key: runs(path, TRANSFER_COMPARED) for key, path in TRAINED_RUNS.items()},
        **{key: runs(path, TRANSFER_COMPARED) for key, path in EVALUATED_RUNS.items()},
    output:
        report(
            f"{FIGURES}/comparison_transfer.png",
            caption="../report/comparison_transfer.rst",
            category="3. Transfer learning",
            labels={
                "what": "curves and confusion matrices",
                "which": "ResNet-18 modes and the combined CNN",
            },
        ),
    log:
        f"{LOGS}/plot_comparison_transfer.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=TRANSFER_COMPARED,
        code=code_version("plot_comparison_transfer.py"),
    script:
        "../scripts/plot_comparison_transfer.py"


rule plot_sweep_confusion:
    input:
        confusions=f"{SWEEP_RUN}/confusion.csv",
        metrics=f"{SWEEP_RUN}/metrics.json",
    output:
        f"{SWEEP_RUN}/confusion.png",
    log:
        f"{LOGS}/plot_sweep_confusion/{{sweep}}/{{point}}/seed{{seed}}.log",
    conda:
        "../../envs/report.yaml"
    params:
        code=code_version("plot_confusion.py"),
    script:
        "../scripts/plot_confusion.py"
