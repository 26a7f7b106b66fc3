# Stage 6: figures, the results table and what goes into `snakemake --report`. Each figure is its
# own rule, so asking for one builds only the models it shows. The first seed's runs are plotted;
# the table covers every seed.

FIGURES = f"{RESULTS}/figures"
TRAINED = f"{RESULTS}/models/{{model}}"
EVALUATED = f"{RESULTS}/eval/{{model}}"


rule plot_confusion:
    input:
        confusion=f"{EVALUATED}/confusion.csv",
        metrics=f"{EVALUATED}/metrics.json",
    output:
        report(
            f"{FIGURES}/confusion/{{model}}.png",
            caption="../report/confusion.rst",
            category="4. Evaluation",
            subcategory="Confusion matrices",
            labels={"model": "{model}", "figure": "confusion matrix"},
        ),
    log:
        f"{LOGS}/plot_confusion/{{model}}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/plot_confusion.py"


rule plot_curves:
    input:
        history=f"{TRAINED}/history.csv",
        summary=f"{TRAINED}/summary.json",
    output:
        report(
            f"{FIGURES}/curves/{{model}}.png",
            caption="../report/curves.rst",
            category="2. Training",
            subcategory="Learning curves",
            labels={"model": "{model}", "figure": "learning curves"},
        ),
    log:
        f"{LOGS}/plot_curves/{{model}}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/plot_curves.py"


rule plot_gradients:
    input:
        gradients=f"{TRAINED}/gradients.csv",
        summary=f"{TRAINED}/summary.json",
    output:
        report(
            f"{FIGURES}/gradients/{{model}}.png",
            caption="../report/gradients.rst",
            category="2. Training",
            subcategory="Gradient distributions",
            labels={"model": "{model}", "figure": "gradients"},
        ),
    log:
        f"{LOGS}/plot_gradients/{{model}}.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/plot_gradients.py"


rule plot_dead_units:
    input:
        histories=per_model(f"{TRAINED}/history.csv", cnn_models(config)),
    output:
        report(
            f"{FIGURES}/dead_units.png",
            caption="../report/dead_units.rst",
            category="2. Training",
            labels={"figure": "dead ReLU units"},
        ),
    log:
        f"{LOGS}/plot_dead_units.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=cnn_models(config),
    script:
        "../scripts/plot_dead_units.py"


rule plot_comparison_accuracy:
    input:
        metrics=per_model(f"{EVALUATED}/metrics.json", MODELS),
    output:
        report(
            f"{FIGURES}/comparison_accuracy.png",
            caption="../report/comparison_accuracy.rst",
            category="5. Comparison",
            labels={"figure": "test accuracy"},
        ),
    log:
        f"{LOGS}/plot_comparison_accuracy.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=MODELS,
        reported=config["study"]["reported"],
        target=config["study"]["target_accuracy"],
    script:
        "../scripts/plot_comparison_accuracy.py"


rule plot_comparison_curves:
    input:
        histories=per_model(f"{TRAINED}/history.csv", MODELS),
    output:
        report(
            f"{FIGURES}/comparison_curves.png",
            caption="../report/comparison_curves.rst",
            category="5. Comparison",
            labels={"figure": "validation curves"},
        ),
    log:
        f"{LOGS}/plot_comparison_curves.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=MODELS,
    script:
        "../scripts/plot_comparison_curves.py"


TRANSFER_COMPARED = ["combined"] + transfer_models(config)


rule plot_comparison_transfer:
    input:
        histories=per_model(f"{TRAINED}/history.csv", TRANSFER_COMPARED),
        confusions=per_model(f"{EVALUATED}/confusion.csv", TRANSFER_COMPARED),
        metrics=per_model(f"{EVALUATED}/metrics.json", TRANSFER_COMPARED),
    output:
        report(
            f"{FIGURES}/comparison_transfer.png",
            caption="../report/comparison_transfer.rst",
            category="3. Transfer learning",
            labels={"figure": "ResNet-18 against the combined CNN"},
        ),
    log:
        f"{LOGS}/plot_comparison_transfer.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=TRANSFER_COMPARED,
    script:
        "../scripts/plot_comparison_transfer.py"


rule make_table:
    input:
        metrics=all_runs(f"{RESULTS}/eval/{{model}}{{seed_suffix}}/metrics.json"),
        summaries=all_runs(f"{RESULTS}/models/{{model}}{{seed_suffix}}/summary.json"),
        histories=all_runs(f"{RESULTS}/models/{{model}}{{seed_suffix}}/history.csv"),
    output:
        csv=f"{RESULTS}/tables/summary.csv",
        markdown=report(
            f"{RESULTS}/tables/summary.md",
            caption="../report/summary.rst",
            category="5. Comparison",
            labels={"table": "results"},
        ),
    log:
        f"{LOGS}/make_table.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=MODELS,
        seeds=len(SEEDS),
        dataset=DATASET["name"],
        reported=config["study"]["reported"],
        target=config["study"]["target_accuracy"],
    script:
        "../scripts/make_table.py"
