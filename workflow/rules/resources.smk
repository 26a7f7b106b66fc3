# On a workstation `--resources gpu=N` caps concurrent GPU jobs; on a cluster the scheduler hands out
# GPUs, so Snakemake must not tally them across submissions. In an included file, not in the Snakefile:
# Snakemake before 7.15 cannot parse it, and the Snakefile's min_version must get to speak first.
resource_scopes:
    gpu="local",
