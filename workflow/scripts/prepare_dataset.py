from pathlib import Path

from cnnstudy.base.jobs import data_needs, start_job
from cnnstudy.data.prepare import prepare

start_job(snakemake)
prepare(
    snakemake.input[0],
    Path(snakemake.output.manifest).parent,
    image_size=snakemake.params.image_size,
    validation_fraction=snakemake.params.validation_fraction,
    seed=snakemake.params.split_seed,
    skip_corrupt=snakemake.params.skip_corrupt,
    threads=snakemake.threads,
    source=snakemake.params.source,
    needs=data_needs(snakemake.config),  # checks only, from the config: they must not rerun this job
)
