# Stage 5: every model on the test split (Imagenette's val folder), never used for model selection.


rule evaluate:
    input:
        checkpoint=f"{RESULTS}/models/{{model}}{{seed_suffix}}/checkpoint.pt",
        test=f"{DATA}/test.pt",
    output:
        metrics=f"{RESULTS}/eval/{{model}}{{seed_suffix}}/metrics.json",
        confusion=f"{RESULTS}/eval/{{model}}{{seed_suffix}}/confusion.csv",
        predictions=f"{RESULTS}/eval/{{model}}{{seed_suffix}}/predictions.csv",
    log:
        f"{LOGS}/evaluate/{{model}}{{seed_suffix}}.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=20,
    params:
        device=config["device"],
        batch_size=config["training"]["eval_batch_size"],
    script:
        "../scripts/evaluate.py"
