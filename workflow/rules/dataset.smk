# Stage 1: the dataset. Download and unpack (local rules: they run on a cluster's login node, which
# is the machine with internet access), then decode every image once into tensors.

if "demo_archive" in DATASET:

    rule make_demo_archive:
        output:
            local_path(DATASET["url"]),
        log:
            f"{LOGS}/make_demo_archive.log",
        localrule: True
        conda:
            "../../envs/pytorch.yaml"
        params:
            **DATASET["demo_archive"],
            name=DATASET["name"],
            code=code_version("make_demo_archive.py"),
        script:
            "../scripts/make_demo_archive.py"


rule download_dataset:
    input:
        dataset_archive_input,
    output:
        directory(dataset_dir()),
    log:
        f"{LOGS}/download_dataset.log",
    localrule: True
    conda:
        "../../envs/pytorch.yaml"
    params:
        url=DATASET["url"],
        md5=DATASET["md5"],
        name=DATASET["name"],
        archive_dir=f"{RESOURCES}/archives",
        code=code_version("download_dataset.py"),
    script:
        "../scripts/download_dataset.py"


rule prepare_dataset:
    input:
        dataset_dir(),
    output:
        train=f"{DATA}/train.pt",
        val=f"{DATA}/val.pt",
        test=f"{DATA}/test.pt",
        manifest=f"{DATA}/manifest.csv",
    log:
        f"{LOGS}/prepare_dataset.log",
    benchmark:
        f"{BENCHMARKS}/prepare_dataset.tsv"
    conda:
        "../../envs/pytorch.yaml"
    threads: 8
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        image_size=DATASET["image_size"],
        validation_fraction=DATASET["validation_fraction"],
        split_seed=DATASET["split_seed"],
        skip_corrupt=DATASET["skip_corrupt"],
        source={"name": DATASET["name"], "archive_md5": DATASET["md5"]},
        code=code_version("prepare_dataset.py"),
    script:
        "../scripts/prepare_dataset.py"
