# Stages 3 and 4: the custom CNN's five configurations, and ResNet-18 fine-tuning. Both run the same
# training script and loop, and write the same outputs, so evaluation treats every model alike.

TRAINING_OUTPUTS = {
    "checkpoint": "checkpoint.pt",
    "history": "history.csv",
    "gradients": "gradients.csv",
    "summary": "summary.json",
}


def training_outputs(model_dir):
    return {key: f"{RESULTS}/models/{model_dir}{{seed_dir}}/{name}" for key, name in TRAINING_OUTPUTS.items()}


rule train_cnn:
    input:
        train=f"{DATA}/train.pt",
        val=f"{DATA}/val.pt",
    output:
        **training_outputs("{variant}"),
    log:
        f"{LOGS}/train_cnn/{{variant}}{{seed_dir}}.log",
    benchmark:
        f"{BENCHMARKS}/train_cnn/{{variant}}{{seed_dir}}.tsv"
    params:
        hyperparameters=model_hyperparameters,
        device=config["device"],
        # Outside the declared outputs, so Snakemake keeps it when a job is killed.
        resume_dir=f"{RESULTS}/models/{{variant}}{{seed_dir}}/resume",
    threads: 4
    resources:
        gpu=1,
        mem_mb=24000,
        runtime=180,
    conda:
        "../../envs/pytorch.yaml"
    script:
        "../scripts/train.py"


rule download_weights:
    output:
        weights_file(),
    log:
        f"{LOGS}/download_weights.log",
    params:
        url=config["transfer"]["weights_url"],
    localrule: True
    conda:
        "../../envs/pytorch.yaml"
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
        f"{LOGS}/finetune_resnet18/{{mode}}{{seed_dir}}.log",
    benchmark:
        f"{BENCHMARKS}/finetune_resnet18/{{mode}}{{seed_dir}}.tsv"
    params:
        hyperparameters=model_hyperparameters,
        device=config["device"],
        resume_dir=f"{RESULTS}/models/resnet18_{{mode}}{{seed_dir}}/resume",
    threads: 4
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    conda:
        "../../envs/pytorch.yaml"
    script:
        "../scripts/train.py"
