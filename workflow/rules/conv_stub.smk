# Stage 2 (the study's task 1): the from-scratch convolution, checked against PyTorch's own.


rule verify_conv_stub:
    output:
        markdown=f"{RESULTS}/conv_stub/report.md",
        html=report(
            f"{RESULTS}/conv_stub/report.html",
            caption="../report/conv_stub.rst",
            category="1. Convolution from scratch",
            labels={
                "what": "check against F.conv2d",
                "which": "MyConvStub and MyFilterStub",
            },
        ),
        csv=f"{RESULTS}/conv_stub/report.csv",
    log:
        f"{LOGS}/verify_conv_stub.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        **config["conv_stub"],
        code=code_version("verify_conv_stub.py"),
    script:
        "../scripts/verify_conv_stub.py"
