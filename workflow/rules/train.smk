# Stages 3 and 4: the custom CNN's five configurations, and ResNet-18 fine-tuning. Both run the same
# training script and loop, and write the same outputs, so evaluation treats every model alike.


rule train_cnn:
    input:
        train=f"{DATA}/train.pt",
        val=f"{DATA}/val.pt",
    output:
        **training_outputs("{variant}"),
    log:
        f"{LOGS}/train_cnn/{{variant}}{{seed_suffix}}.log",
    benchmark:
        f"{BENCHMARKS}/train_cnn/{{variant}}{{seed_suffix}}.tsv"
    conda:
        "../../envs/pytorch.yaml"
    threads: 4
    resources:
        gpu=1,
        mem_mb=24000,
        runtime=180,
    params:
        hyperparameters=model_hyperparameters,
        device=config["device"],
        # Outside the declared outputs, so Snakemake keeps it when a job is killed.
        resume_dir=f"{RESULTS}/models/{{variant}}{{seed_suffix}}/resume",
    script:
        "../scripts/train.py"


rule download_weights:
    output:
        weights_file(),
    log:
        f"{LOGS}/download_weights.log",
    localrule: True
    conda:
        "../../envs/pytorch.yaml"
    params:
        url=config["transfer"]["weights_url"],
    script:
        "../scripts/download_weights.py"


rule finetune_resnet18:
    input:
        train=f"{DATA}/train.pt",
        val=f"{DATA}/val.pt",
        weights=pretrained_weights_input,
    output:
        **training_outputs("resnet18_{mode}"),
    log:
        f"{LOGS}/finetune_resnet18/{{mode}}{{seed_suffix}}.log",
    benchmark:
        f"{BENCHMARKS}/finetune_resnet18/{{mode}}{{seed_suffix}}.tsv"
    conda:
        "../../envs/pytorch.yaml"
    threads: 4
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    params:
        hyperparameters=model_hyperparameters,
        device=config["device"],
        resume_dir=f"{RESULTS}/models/resnet18_{{mode}}{{seed_suffix}}/resume",
    script:
        "../scripts/train.py"
