# Stage 2 (the study's task 1): the from-scratch convolution, checked against PyTorch's own.


rule verify_conv_stub:
    output:
        markdown=report(
            f"{RESULTS}/conv_stub/report.md",
            caption="../report/conv_stub.rst",
            category="1. Convolution from scratch",
        ),
        csv=f"{RESULTS}/conv_stub/report.csv",
    log:
        f"{LOGS}/verify_conv_stub.log",
    params:
        **config["conv_stub"],
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/pytorch.yaml"
    script:
        "../scripts/verify_conv_stub.py"
