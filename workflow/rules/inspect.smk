# Stage 6, continued: inside the models. For each model's lowest seed (as the gradient figures), one
# job draws its most confident mistakes, its first-layer filters before and after training, and
# Grad-CAM maps of a fixed, class-stratified set of test images; one more puts every model's maps side
# by side.


rule inspect_model:
    input:
        checkpoint=f"{RESULTS}/models/{{model}}{INSPECTED_SEED}/checkpoint.pt",
        predictions=f"{RESULTS}/eval/{{model}}{INSPECTED_SEED}/predictions.csv",
        test=f"{DATA}/test.pt",
        weights=initial_weights_input,
    output:
        mistakes=per_model_report(
            f"{FIGURES}/mistakes/{{model}}.png",
            "Most confident mistakes",
            "most confident mistakes",
            category=INSIDE,
        ),
        mistakes_table=f"{TABLES}/mistakes_{{model}}.csv",
        filters=per_model_report(
            f"{FIGURES}/filters/{{model}}.png",
            "First-layer filters",
            "first-layer filters",
            category=INSIDE,
        ),
        saliency=per_model_report(
            f"{FIGURES}/saliency/{{model}}.png",
            "Where it looks (Grad-CAM)",
            "Grad-CAM",
            category=INSIDE,
        ),
        saliency_maps=f"{RESULTS}/inspect/{{model}}/saliency.pt",
    log:
        f"{LOGS}/inspect_model/{{model}}.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: 1
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=8000,
        runtime=20,
    params:
        weights_sha256=config["transfer"].get("weights_sha256"),
        code=code_version("inspect_model.py"),
    script:
        "../scripts/inspect_model.py"


rule plot_comparison_saliency:
    input:
        maps=expand(f"{RESULTS}/inspect/{{model}}/saliency.pt", model=MODELS),
        test=f"{DATA}/test.pt",
    output:
        report(
            f"{FIGURES}/comparison_saliency.png",
            caption="../report/comparison_saliency.rst",
            category=INSIDE,
            subcategory="Every model, image by image",
            labels={"what": "Grad-CAM, image by image", "which": "every model"},
        ),
    log:
        f"{LOGS}/plot_comparison_saliency.log",
    conda:
        "../../envs/report.yaml"
    params:
        models=MODELS,
        code=code_version("plot_comparison_saliency.py"),
    script:
        "../scripts/plot_comparison_saliency.py"
