# Stage 5: every model on the test split (Imagenette's val folder), never used for model selection.
# The evaluation batch size and the device are read from the config by the job: they change no result.


rule evaluate:
    input:
        checkpoint=f"{RUN}/checkpoint.pt",
        test=f"{DATA}/test.pt",
    output:
        **outputs_in(EVALUATED, EVALUATION_OUTPUTS),
    log:
        f"{LOGS}/evaluate/{{model}}{{seed_suffix}}.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: 4
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=8000,
        runtime=20,
    params:
        code=code_version("evaluate_checkpoint.py"),
    script:
        "../scripts/evaluate_checkpoint.py"


use rule evaluate as evaluate_sweep_point with:
    input:
        checkpoint=f"{SWEEP_RUN}/checkpoint.pt",
        test=f"{DATA}/test.pt",
    output:
        **outputs_in(SWEEP_RUN, EVALUATION_OUTPUTS),
    log:
        f"{LOGS}/evaluate_sweep_point/{{sweep}}/{{point}}/seed{{seed}}.log",
