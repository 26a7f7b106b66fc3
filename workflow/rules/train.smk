# Stages 3 and 4: the custom CNN's variants (and sweep points), and ResNet-18 fine-tuning. All run the
# same training script and loop, and write the same outputs, so evaluation treats every model alike.
# Their params are what defines a model (hyper-parameters, code); how a job runs (device, eval batch
# size, torch.compile) is read from the config by the job, so changing it retrains nothing.


rule train_cnn:
    input:
        train=f"{DATA}/train.pt",
        val=f"{DATA}/val.pt",
    output:
        **outputs_in(RUN, TRAINING_OUTPUTS),
    log:
        f"{LOGS}/train_cnn/{{model}}{{seed_suffix}}.log",
    benchmark:
        f"{BENCHMARKS}/train_cnn/{{model}}{{seed_suffix}}.tsv"
    wildcard_constraints:
        model=alternatives(CNN_MODELS),
    conda:
        "../../envs/pytorch.yaml"
    threads: 4
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=24000,
        runtime=180,
    params:
        hyperparameters=lambda wildcards: hyperparameters(
            config, wildcards.model, seed_of(wildcards)
        ),
        # Outside the declared outputs, so Snakemake keeps it when a job is killed.
        resume_dir=f"{RUN}/resume",
        code=code_version("train.py"),
    script:
        "../scripts/train.py"


use rule train_cnn as train_sweep_point with:
    output:
        **outputs_in(SWEEP_RUN, TRAINING_OUTPUTS),
    log:
        f"{LOGS}/train_sweep_point/{{sweep}}/{{point}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train_sweep_point/{{sweep}}/{{point}}/seed{{seed}}.tsv"
    wildcard_constraints:
        sweep=alternatives(SWEEPS),
    params:
        hyperparameters=point_hyperparameters,
        resume_dir=f"{SWEEP_RUN}/resume",
        code=code_version("train.py"),


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
        sha256=config["transfer"].get("weights_sha256"),
        code=code_version("download_weights.py"),
    script:
        "../scripts/download_weights.py"


rule finetune_resnet18:
    input:
        train=f"{DATA}/train.pt",
        val=f"{DATA}/val.pt",
        weights=pretrained_weights_input,
    output:
        **outputs_in(RUN, TRAINING_OUTPUTS),
    log:
        f"{LOGS}/finetune_resnet18/{{model}}{{seed_suffix}}.log",
    benchmark:
        f"{BENCHMARKS}/finetune_resnet18/{{model}}{{seed_suffix}}.tsv"
    wildcard_constraints:
        model=alternatives(TRANSFER_MODELS),
    conda:
        "../../envs/pytorch.yaml"
    threads: 4
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=16000,
        runtime=120,
    params:
        hyperparameters=lambda wildcards: hyperparameters(
            config, wildcards.model, seed_of(wildcards)
        ),
        resume_dir=f"{RUN}/resume",
        weights_sha256=config["transfer"].get("weights_sha256"),
        code=code_version("train.py"),
    script:
        "../scripts/train.py"
