# Stage 1: the dataset. Download, verify and unpack (local rules: they run on a cluster's login node,
# which is the machine with internet access), then decode every image once into tensors.
# The archive and its unpacked folder live under paths holding the md5: a changed dataset.md5 adds new
# paths, so a failed change leaves the old ones untouched, and reverting it finds them current.

from cnnstudy.base.settings import validate_split_sizes

SPLIT_COUNTS = f"{DATA}/split_counts.json"
# With data already prepared for this archive and split, a batch or dead-unit probe larger than its split
# stops here, naming its key, before Snakemake deletes any finished model to retrain it.
validate_split_sizes(config, SPLIT_COUNTS)

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
        # not the url: the job reads it from the config, as the md5 names the content (a mirror reruns nothing)
        md5=DATASET["md5"],
        name=DATASET["name"],
        archive_dir=ARCHIVES,
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
        counts=SPLIT_COUNTS,
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
